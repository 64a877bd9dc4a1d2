"""The papers' baselines that timm implements (InceptionV3, Xception, Inception-ResNet-v2, Darknet-53,
CenterNet's DLA-34); one file for the library: one spec helper, one constructor."""
from __future__ import annotations

from typing import Any

from torch import nn

from ..builder import build
from ..registry import DEVIATION, INTERPRETATION, ModelSpec, WeightSource, register_model


def _timm(arch: str, num_classes: int, **kw: Any) -> nn.Module:
    import timm

    return timm.create_model(arch, pretrained=False, num_classes=num_classes, **kw)



def _spec(name, arch, tag, papers, size, ncls, norm, head, small=64, extra=(), desc="",
          min_size=32) -> ModelSpec:
    return ModelSpec(
        name=name, papers=papers, paper_input_size=size, default_num_classes=ncls, norm=norm,
        small_input_size=small, min_input_size=min_size, head=(head,),
        sources=(WeightSource("", "timm", tag, (name,) + ((arch,) if arch != name else ()), (head,)),),
        paper_pretrained=True, description=desc or f"timm {arch}", deviations=tuple(extra),
        extra_cfg={"timm_architecture": arch, "imagenet_tag": tag},
    )


_S_INCV3 = _spec(
    "inception_v3", "inception_v3", "inception_v3.tf_in1k", {"xincept_khan2024": 224}, 224, 4, "inception", "fc",
    small=75, min_size=75, extra=(INTERPRETATION + "timm inception_v3 with the TF/Keras ImageNet weights (tf_in1k), inputs in [-1, 1]; "
                          "224x224 as in XIncept's data (native 299); smallest side 75",),
)


@register_model(_S_INCV3)
def inception_v3(num_classes: int = 4, pretrained: bool | str = False, weights=None) -> nn.Module:
    """timm InceptionV3 (auxiliary logits off)."""
    return build(_S_INCV3, lambda: _timm("inception_v3", num_classes), num_classes, pretrained, weights)


_S_XCEPTION = _spec(
    "xception", "legacy_xception", "legacy_xception.tf_in1k", {"logmh_haque2024": 227, "xincept_khan2024": 224},
    227, 2, "inception", "fc",
    extra=(INTERPRETATION + "the original Xception (Chollet 2017; Keras' Xception) = timm legacy_xception, inputs in [-1, 1]; "
                "227x227 as LoGMH (XIncept: 224; native 299)",),
)


@register_model(_S_XCEPTION)
def xception(num_classes: int = 2, pretrained: bool | str = False, weights=None) -> nn.Module:
    """timm ``legacy_xception`` (the original Xception)."""
    return build(_S_XCEPTION, lambda: _timm("legacy_xception", num_classes), num_classes, pretrained, weights)


_S_IRV2 = _spec(
    "inception_resnet_v2", "inception_resnet_v2", "inception_resnet_v2.tf_in1k", {"logmh_haque2024": 227}, 227, 2,
    "inception", "classif", small=75, min_size=75,
    extra=(INTERPRETATION + "timm inception_resnet_v2 (TF weights, inputs in [-1, 1]); 227x227 as LoGMH (native 299); "
                "smallest side 75",),
)


@register_model(_S_IRV2)
def inception_resnet_v2(num_classes: int = 2, pretrained: bool | str = False, weights=None) -> nn.Module:
    """timm Inception-ResNet-v2."""
    return build(_S_IRV2, lambda: _timm("inception_resnet_v2", num_classes), num_classes, pretrained, weights)


_S_DARKNET = _spec(
    "darknet53", "darknet53", "darknet53.c2ns_in1k", {"dscnet_vijayalakshmi": 224}, 224, 4, "imagenet", "head.fc",
    extra=(INTERPRETATION + "YOLO-V3 (a detector) compared as a classifier: its Darknet-53 backbone with a global-pool + "
                "linear head (timm darknet53); 224x224 as Vijayalakshmi's input",),
)


@register_model(_S_DARKNET)
def darknet53(num_classes: int = 4, pretrained: bool | str = False, weights=None) -> nn.Module:
    """timm Darknet-53 classifier (YOLO-V3's backbone)."""
    return build(_S_DARKNET, lambda: _timm("darknet53", num_classes), num_classes, pretrained, weights)


_S_CENTERNET = _spec(
    "centernet_cls", "dla34", "dla34.in1k", {"logmh_haque2024": 224}, 224, 2, "imagenet", "fc",
    desc="CenterNet's DLA-34 backbone as a classifier (timm dla34)",
    extra=(INTERPRETATION + "CenterNet (a detector) as a classifier: its published DLA-34 backbone (timm dla34) with a "
                "global-pool + linear (1x1 conv) head; IDA up-sampling and heat-map heads dropped",
           DEVIATION + "224x224, not LoGMH's 227: DLA-34's residual trees need sides divisible by 32 "
                "(CenterNet itself pads its inputs to a multiple of 32)"),
)


@register_model(_S_CENTERNET)
def centernet_cls(num_classes: int = 2, pretrained: bool | str = False, weights=None) -> nn.Module:
    """CenterNet's backbone (DLA-34) + classification head."""
    return build(_S_CENTERNET, lambda: _timm("dla34", num_classes), num_classes, pretrained, weights)

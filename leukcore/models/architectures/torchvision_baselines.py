"""The papers' baselines that torchvision implements (AlexNet, VGG-16, ResNet-50, GoogLeNet), each
with a ``forward_features``; one file for the library: one spec helper, one lazy class loader."""
from __future__ import annotations

import torch
from torch import nn

from ..builder import build
from ..registry import INTERPRETATION, ModelSpec, WeightSource, register_model


def _classes():
    """torchvision classifiers with a ``forward_features`` (defined lazily)."""
    import torchvision.models as tvm

    class AlexNet(tvm.AlexNet):
        """torchvision AlexNet; ``forward_features`` = conv1..pool5 flattened (9216 at 224/227)."""

        def forward_features(self, x: torch.Tensor) -> torch.Tensor:
            return torch.flatten(self.features(x), 1)

    class VGG(tvm.VGG):
        """torchvision VGG; ``forward_features`` = the last conv block's pooled map."""

        def forward_features(self, x: torch.Tensor) -> torch.Tensor:
            return self.features(x)

    class ResNet(tvm.ResNet):
        """torchvision ResNet; ``forward_features`` = the ``layer4`` map."""

        def forward_features(self, x: torch.Tensor) -> torch.Tensor:
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    class GoogLeNet(tvm.GoogLeNet):
        """torchvision GoogLeNet without auxiliary heads; ``forward_features`` = inception5b map."""

        def forward_features(self, x: torch.Tensor) -> torch.Tensor:
            x = self._transform_input(x)
            x = self.maxpool1(self.conv1(x))
            x = self.maxpool2(self.conv3(self.conv2(x)))
            x = self.maxpool3(self.inception3b(self.inception3a(x)))
            x = self.inception4a(x)
            x = self.inception4e(self.inception4d(self.inception4c(self.inception4b(x))))
            x = self.maxpool4(x)
            return self.inception5b(self.inception5a(x))

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # plain tensor out, never a namedtuple
            x = torch.flatten(self.avgpool(self.forward_features(x)), 1)
            return self.fc(self.dropout(x))

        def _leukcore_after_imagenet_load(self) -> None:
            # torchvision's ImageNet GoogLeNet expects ImageNet-normalised input converted
            # to its own 0.5-scaling inside the model (what torchvision's weights=... sets);
            # called whenever pretrained=True loads weights, not for weights=PATH.
            self.transform_input = True

    return AlexNet, VGG, ResNet, GoogLeNet



def _spec(name, papers, size, ncls, head, ref, params=None, note="", extra=(), small=64,
          min_size=32) -> ModelSpec:
    return ModelSpec(
        name=name, papers=papers, paper_input_size=size, default_num_classes=ncls, norm="imagenet",
        small_input_size=small, min_input_size=min_size, head=(head,),
        sources=(WeightSource("", "torchvision", ref, (name,), (head,)),),
        paper_pretrained=True, paper_params=params, paper_params_note=note,
        description=f"torchvision {name}", deviations=tuple(extra),
    )


_ALNET_T8 = "ALNet Table 8 (1000-class ImageNet count)"




_S_ALEXNET = _spec(
    "alexnet", {"logmh_haque2024": 227, "alnet_jawahar2022": 227, "dscnet_kaur2023": 227}, 227, 2,
    "classifier.6", "AlexNet_Weights.IMAGENET1K_V1", 62_378_344, _ALNET_T8, min_size=64,
    extra=(INTERPRETATION + "torchvision AlexNet (one-tower 'OWT' variant, no LRN); 227x227 as LoGMH resizes to 227 "
           "and MATLAB's AlexNet takes 227",),
)


@register_model(_S_ALEXNET)
def alexnet(num_classes: int = 2, pretrained: bool | str = False, weights=None, dropout: float = 0.5) -> nn.Module:
    """torchvision AlexNet; ``forward_features`` = conv1..pool5 flattened (LoGMH's features)."""
    AlexNet = _classes()[0]
    return build(_S_ALEXNET, lambda: AlexNet(num_classes=num_classes, dropout=dropout),
                  num_classes, pretrained, weights)


_S_VGG16 = _spec(
    "vgg16", {"dscnet_kaur2023": 224, "dscnet_vijayalakshmi": 224, "alnet_jawahar2022": 224,
              "xincept_khan2024": 224}, 224, 4, "classifier.6", "VGG16_Weights.IMAGENET1K_V1",
    138_423_208, _ALNET_T8,
)


@register_model(_S_VGG16)
def vgg16(num_classes: int = 4, pretrained: bool | str = False, weights=None, dropout: float = 0.5) -> nn.Module:
    """torchvision VGG-16 (configuration D, no BatchNorm)."""
    from torchvision.models.vgg import cfgs, make_layers

    VGG = _classes()[1]
    return build(_S_VGG16, lambda: VGG(make_layers(cfgs["D"], batch_norm=False), num_classes=num_classes,
                                        init_weights=True, dropout=dropout), num_classes, pretrained, weights)


_S_RESNET50 = _spec(
    "resnet50", {"dscnet_kaur2023": 224, "alnet_jawahar2022": 224, "xincept_khan2024": 224}, 224, 4,
    "fc", "ResNet50_Weights.IMAGENET1K_V1", 25_636_712, _ALNET_T8,
    extra=(INTERPRETATION + "ImageNet weights: torchvision IMAGENET1K_V1 (the original recipe, closest to MATLAB/Keras)",),
)


@register_model(_S_RESNET50)
def resnet50(num_classes: int = 4, pretrained: bool | str = False, weights=None) -> nn.Module:
    """torchvision ResNet-50."""
    from torchvision.models.resnet import Bottleneck

    ResNet = _classes()[2]
    return build(_S_RESNET50, lambda: ResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes),
                  num_classes, pretrained, weights)


_S_GOOGLENET = _spec(
    "googlenet", {"alnet_jawahar2022": 224, "xincept_khan2024": 224}, 224, 2, "fc",
    "GoogLeNet_Weights.IMAGENET1K_V1", 6_414_360, _ALNET_T8,
    extra=(INTERPRETATION + "torchvision GoogLeNet (BatchNorm variant) without the two auxiliary classifiers",),
)


@register_model(_S_GOOGLENET)
def googlenet(num_classes: int = 2, pretrained: bool | str = False, weights=None, dropout: float = 0.2) -> nn.Module:
    """torchvision GoogLeNet, auxiliary logits off (``transform_input`` set when ImageNet weights load)."""
    GoogLeNet = _classes()[3]
    return build(_S_GOOGLENET, lambda: GoogLeNet(num_classes=num_classes, aux_logits=False, transform_input=False,
                                                  init_weights=True, dropout=dropout),
                  num_classes, pretrained, weights)

"""XIncept-ALL (Khan 2024, Algorithm 1): frozen InceptionV3 + Xception, dense fusion head."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .layers import glorot_init
from ..builder import build
from ..registry import DEVIATION, INTERPRETATION, ModelSpec, WeightSource, register_model


class XIncept(nn.Module):
    """XIncept-ALL, Khan 2024 Algorithm 1: frozen ImageNet InceptionV3 + Xception fusion.

    ::

        fx = Xception(x)      -> GAP 2048      (timm legacy_xception: the original Xception)
        fi = InceptionV3(x)   -> GAP 2048      (timm inception_v3, TF/Keras weights)
        ox = Dense(branch_units, linear, L2)(Dense(64, relu)(fx))     steps 4-5
        oi = Dense(branch_units, linear, L2)(Dense(64, relu)(fi))
        fused = concat([ox, oi])                                      step 8
        h = Dense(64, relu)(Dense(128, relu)(fused))                  step 9
        logits = Dense(num_classes, linear, L2)(h)                    step 10

    Backbones are frozen (step 7, ``requires_grad=False``) and, as Keras does for frozen
    layers, kept in inference mode: their BatchNorm uses the ImageNet statistics even in
    ``model.train()``. The fusion uses global average pooling (chapter 4: "facilitated by
    global average pooling and concatenation"). ``l2_params()`` returns the kernels of the
    three linear layers that carry ``kernel_regularizer=l2(0.01)``; the trainer adds
    ``l2_lambda * sum(w ** 2)`` (Keras' convention: no 1/2). Heads use ``glorot_uniform``.

    ``branch_units`` defaults to ``num_classes``: Algorithm 1 prints ``units=2`` for the two
    branch outputs and the final layer of a 4-class task; each branch output is the logit
    layer of its own single-backbone model (step 6), so we give all three ``num_classes``
    units (pass ``branch_units=2`` for the literal thesis).

    ``forward_features(x, level)`` exposes the fused representation for the boosted-tree
    route: ``"fused"`` (default) the concatenation of step 8 (``2 * branch_units``),
    ``"refined"`` the 64-unit output of step 9 (Algorithm 1 still calls it ``Ffusion``),
    ``"backbone"`` the two pooled backbone vectors (4096).
    """

    def __init__(
        self,
        num_classes: int = 4,
        branch_units: int | None = None,
        hidden: int = 64,
        fusion_units: Sequence[int] = (128, 64),
        l2_lambda: float = 0.01,
        freeze: bool = True,
    ):
        super().__init__()
        import timm

        b = int(branch_units or num_classes)
        self.xception = timm.create_model("legacy_xception", pretrained=False, num_classes=0)
        self.inception = timm.create_model("inception_v3", pretrained=False, num_classes=0)
        nx, ni = self.xception.num_features, self.inception.num_features
        self.xception_dense = nn.Linear(nx, hidden)
        self.xception_out = nn.Linear(hidden, b)
        self.inception_dense = nn.Linear(ni, hidden)
        self.inception_out = nn.Linear(hidden, b)
        f1, f2 = (int(u) for u in fusion_units)
        self.fusion1 = nn.Linear(2 * b, f1)
        self.fusion2 = nn.Linear(f1, f2)
        self.classifier = nn.Linear(f2, num_classes)
        self.l2_lambda = float(l2_lambda)
        self.frozen = bool(freeze)
        for m in (self.xception_dense, self.xception_out, self.inception_dense, self.inception_out,
                  self.fusion1, self.fusion2, self.classifier):
            glorot_init(m)
        if self.frozen:
            for p in list(self.xception.parameters()) + list(self.inception.parameters()):
                p.requires_grad_(False)
            self.xception.eval()
            self.inception.eval()

    def train(self, mode: bool = True) -> XIncept:
        """``nn.Module.train``, except that frozen backbones stay in eval mode (Keras semantics)."""
        super().train(mode)
        if self.frozen:
            self.xception.eval()
            self.inception.eval()
        return self

    def l2_params(self) -> list[nn.Parameter]:
        """Kernels regularised by ``l2(0.01)`` in Algorithm 1: both branch outputs and the final layer."""
        return [self.xception_out.weight, self.inception_out.weight, self.classifier.weight]

    def forward_features(self, x: torch.Tensor, level: str = "fused") -> torch.Tensor:
        """``"fused"`` ``(N, 2*branch_units)`` | ``"refined"`` ``(N, 64)`` | ``"backbone"`` ``(N, 4096)``."""
        if level not in ("fused", "refined", "backbone"):
            raise ValueError(f"unknown level {level!r}; valid: fused, refined, backbone")
        fx, fi = self.xception(x), self.inception(x)
        if level == "backbone":
            return torch.cat([fx, fi], dim=1)
        ox = self.xception_out(F.relu(self.xception_dense(fx)))
        oi = self.inception_out(F.relu(self.inception_dense(fi)))
        fused = torch.cat([ox, oi], dim=1)
        if level == "fused":
            return fused
        return F.relu(self.fusion2(F.relu(self.fusion1(fused))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)``."""
        return self.classifier(self.forward_features(x, "refined"))


XINCEPT_SPEC = ModelSpec(
    name="xincept",
    papers={"xincept_khan2024": 224},
    paper_input_size=224,
    default_num_classes=4,
    norm="inception",
    small_input_size=75,
    min_input_size=75,  # the Inception stem's valid convolutions
    head=("xception_out", "inception_out", "fusion1", "classifier"),
    sources=(
        WeightSource("inception", "timm", "inception_v3.tf_in1k", ("inception_v3",), ("fc",)),
        WeightSource("xception", "timm", "legacy_xception.tf_in1k", ("xception", "legacy_xception"), ("fc",)),
    ),
    paper_pretrained=True,
    description="Khan 2024 Algorithm 1: frozen InceptionV3 + Xception, dense fusion head.",
    deviations=(
        INTERPRETATION + "input 224x224: Algorithm 1 builds both backbones with Input(shape=(224,224,3)) "
        "(the thesis also says images were resized to 700x600; the backbones' native size is 299)",
        INTERPRETATION + "global average pooling of each backbone before its Dense 64 (chapter 4)",
        INTERPRETATION + "frozen backbones run in inference mode (ImageNet BatchNorm statistics), as Keras does",
        DEVIATION + "branch outputs and final layer have num_classes units; Algorithm 1 prints 2 for a 4-class task",
        INTERPRETATION + "L2 0.01 on the kernels of the two branch output layers and the final layer (l2_params())",
        INTERPRETATION + "timm ports of the Keras weights: inception_v3.tf_in1k, legacy_xception.tf_in1k; inputs in [-1, 1]",
    ),
)


@register_model(XINCEPT_SPEC)
def xincept(num_classes: int = 4, pretrained: bool | str = False, weights=None, **kw) -> nn.Module:
    """XIncept-ALL fusion (Khan 2024 Algorithm 1); options of :class:`XIncept`."""
    return build(XINCEPT_SPEC, lambda: XIncept(num_classes, **kw), num_classes, pretrained, weights)

"""Every network the five reproduced papers use, behind one timm-style registry.

``create_model(name, num_classes, pretrained=False, weights=None, **kw)`` builds a model;
``list_models()`` names them; ``model_info(name)`` describes one without building it;
``model_summary`` / ``param_table`` count parameters (the book's model table).
Registered constructors are thin (``@register_model``) and all go through one builder,
:func:`~leukcore.models.builder.build`, which attaches the same attributes to every model:

* ``paper_input_size`` (int): the square input side the model's paper used;
  ``paper_input_sizes`` maps paper id -> size where several papers use the model.
* ``default_cfg`` (dict): ``mean`` / ``std`` (applied to images scaled to ``[0, 1]``:
  ``x = (u8 / 255 - mean) / std``), ``input_size`` ``(3, S, S)``, ``interpolation``,
  ``num_classes``, ``classifier`` (the head's module name), ``norm`` (which convention).
  ImageNet-style backbones use the mean/std of the weights they would load (torchvision and
  DLA/Darknet: ImageNet ``(0.485, 0.456, 0.406) / (0.229, 0.224, 0.225)``; the TensorFlow /
  Keras ports of InceptionV3, Xception and Inception-ResNet-v2: ``0.5 / 0.5``, i.e. ``[-1, 1]``,
  which is also Keras' ``preprocess_input`` for those nets). The papers' own from-scratch
  nets (ALNet, DSCNet, CNN+LSTM) use **unit scaling**, ``mean 0, std 1`` (``x = u8 / 255``),
  the Keras ``rescale=1/255`` convention; no paper states its normalisation.
* ``leukcore_deviations`` (list of str): every interpretation (where the paper is silent)
  and deviation (where we differ from it), prefixed ``interpretation:`` / ``deviation:``;
  the run records and the book copy this list.
* ``leukcore_weights`` (dict or None): where loaded weights came from and which keys were
  dropped / missing / unexpected.
* ``forward_features(x)``: the representation before the classification head (timm models:
  their unpooled feature map; AlexNet: conv1..pool5 flattened, LoGMH's feature route;
  XIncept: the fused vector, see :class:`XIncept`; our own nets: the flattened vector fed
  to the first dense layer). Pool / flatten a 4-D result for the feature classifiers.

Outputs are always **logits** (the loss applies sigmoid / softmax).

Parameter counts: :func:`param_table` (the book's model table); ``tests/models/test_models.py``
pins each model's count.

``alnet`` -- Jawahar et al. 2022, Table 2, layer for layer (see :class:`ALNet`).
``dscnet`` -- Kaur et al. 2023 Algorithm 1 (also Vijayalakshmi & Deepa): see
    :class:`DSCNet` for every width / kernel / pooling choice (the paper gives none).
``xincept`` -- Khan 2024 Algorithm 1: frozen InceptionV3 + Xception fusion, see
    :class:`XIncept`.
Baselines by the papers' names: ``alexnet``, ``vgg16``, ``resnet50``, ``googlenet``
    (torchvision architectures; GoogLeNet without its auxiliary classifiers),
    ``inception_v3`` (timm, TF/Keras-ported weights ``inception_v3.tf_in1k``), ``xception``
    (timm ``legacy_xception``: the original Chollet 2017 Xception, the Keras one),
    ``inception_resnet_v2`` (timm), ``darknet53`` (timm ``darknet53``: YOLO-V3's backbone as an
    ImageNet-style classifier), ``retinanet_cls`` (:class:`RetinaNetClassifier`: RetinaNet's
    published ResNet-50 + FPN P3-P7 backbone, each level average-pooled, concatenated, one
    linear layer), ``centernet_cls`` (timm ``dla34``: CenterNet's best published backbone,
    DLA-34, with its ImageNet classification head; CenterNet's up-sampling (IDA-up) and
    heat-map heads are dropped because a classifier only needs the deepest pooled features),
    ``cnn_lstm`` (:class:`CNNLSTM`, XIncept's CNN+LSTM baseline, our design).
``audit_cnn`` -- the audits' own small CNN (:class:`AuditCNN`, no paper's), see :mod:`leukcore.audits`.

Pretrained weights: :mod:`.weights` (a local file, ``$LEUKCORE_WEIGHTS``, then the library's
ImageNet weights each :class:`ModelSpec` declares; nothing touches the network at import time).

Layout: :mod:`.registry` (``ModelSpec``, ``register_model``, ``list_models``, ``model_info``,
``min_input_size``), :mod:`.builder` (``create_model``, the shared ``build``), :mod:`.weights`,
:mod:`.summary` (parameter counts), and :mod:`.architectures`: one module per network of the
papers (``alnet``, ``dscnet``, ``xincept``, ``cnn_lstm``, ``retinanet``) and one per library for
the baselines (``torchvision_baselines``, ``timm_baselines``: a spec helper plus thin constructors).
"""
from __future__ import annotations

# importing the architecture modules registers their constructors
from .architectures.alnet import ALNet, alnet
from .architectures.audit_cnn import AuditCNN, audit_cnn
from .architectures.cnn_lstm import CNNLSTM, cnn_lstm
from .architectures.dscnet import DSCNet, dscnet
from .architectures.retinanet import RetinaNetClassifier, retinanet_cls
from .architectures.timm_baselines import centernet_cls, darknet53, inception_resnet_v2, inception_v3, xception
from .architectures.torchvision_baselines import alexnet, googlenet, resnet50, vgg16
from .architectures.xincept import XIncept, xincept
from .builder import create_model
from .registry import (IMAGENET_MEAN, IMAGENET_STD, INCEPTION_MEAN, INCEPTION_STD, UNIT_MEAN, UNIT_STD, ModelSpec,
                       WeightSource, list_models, min_input_size, model_info, register_model)
from .summary import count_params, l2_params, model_summary, param_table
from .weights import FROM_SCRATCH_DEVIATION, WeightsUnavailableError

__all__ = [
    "WeightsUnavailableError", "FROM_SCRATCH_DEVIATION", "ModelSpec", "WeightSource", "register_model", "create_model",
    "list_models", "min_input_size", "model_info", "model_summary", "param_table", "count_params", "l2_params",
    "ALNet", "AuditCNN", "DSCNet", "XIncept", "CNNLSTM", "RetinaNetClassifier",
    "IMAGENET_MEAN", "IMAGENET_STD", "INCEPTION_MEAN", "INCEPTION_STD", "UNIT_MEAN", "UNIT_STD",
    # the registered constructors, by model name
    "alexnet", "alnet", "audit_cnn", "centernet_cls", "cnn_lstm", "darknet53", "dscnet", "googlenet", "inception_resnet_v2",
    "inception_v3", "resnet50", "retinanet_cls", "vgg16", "xception", "xincept",
]

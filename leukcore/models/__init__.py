"""Every network the five reproduced papers use, behind one timm-style registry.

``create_model(name, num_classes, pretrained=False, weights=None, **kw)`` builds a model;
``list_models()`` names them; ``model_info(name)`` describes one without building it;
``model_summary`` / ``param_table`` count parameters (``tests/models/test_models.py`` pins each
count). Every model goes through one builder (:mod:`.builder`, whose docstring lists the
attributes it attaches: input size, normalisation, deviations, weights, ``forward_features``)
and returns logits. The papers' networks (``alnet``, ``dscnet``, ``xincept``) and the baselines by
the papers' names are listed, with what each one is, in :mod:`.architectures`.

Layout: :mod:`.registry` (``ModelSpec``, ``register_model``, ``list_models``, ``model_info``,
``min_input_size``), :mod:`.builder` (``create_model``, the shared ``build``), :mod:`.weights`
(a local file, ``$LEUKCORE_WEIGHTS``, then the library's ImageNet weights each spec declares;
nothing touches the network at import time), :mod:`.summary` (parameter counts), and
:mod:`.architectures` (one module per network of the papers, one per library for the baselines).
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

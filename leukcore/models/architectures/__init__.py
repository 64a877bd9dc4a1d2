"""The networks of the papers, one module each, and the baselines, one module per library (each a
spec helper plus thin constructors). Importing a module registers its constructors.

The models, by registry name:

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
"""

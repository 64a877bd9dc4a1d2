"""Tests for leukcore.models: every registered model, the paper tables, weight loading.

Network: an autouse fixture sets ``HF_HUB_OFFLINE=1``, points the torch / Hugging Face
caches at empty temporary folders and makes every socket connection or DNS lookup fail
(and be recorded), so no test can download or hang; tests assert nothing was attempted.
"""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest
import torch
from torch import nn

from leukcore import models as M

#: Parameter counts at each model's default (paper) number of classes, computed once with
#: torch 2.14 / torchvision 0.29 / timm 1.0 and written in: (trainable, total).
EXPECTED_PARAMS = {
    "alexnet": (57_012_034, 57_012_034),
    "alnet": (535_010, 535_010),
    "audit_cnn": (98_196, 98_196),
    "centernet_cls": (15_230_130, 15_230_130),
    "cnn_lstm": (767_364, 767_364),
    "darknet53": (40_589_028, 40_589_028),
    "dscnet": (1_193_604, 1_193_604),
    "googlenet": (5_601_954, 5_601_954),
    "inception_resnet_v2": (54_309_538, 54_309_538),
    "inception_v3": (21_793_764, 21_793_764),
    "resnet50": (23_516_228, 23_516_228),
    "retinanet_cls": (31_508_034, 31_508_034),
    "vgg16": (134_276_932, 134_276_932),
    "xception": (20_811_050, 20_811_050),
    "xincept": (272_460, 42_864_980),
}

EXPECTED_DEFAULT_CLASSES = {
    "alnet": 2, "dscnet": 4, "xincept": 4, "alexnet": 2, "vgg16": 4, "resnet50": 4, "googlenet": 2,
    "inception_v3": 4, "xception": 2, "inception_resnet_v2": 2, "darknet53": 4, "retinanet_cls": 2,
    "centernet_cls": 2, "cnn_lstm": 4, "audit_cnn": 4,
}

# Paper input sides (see each ModelSpec for the reason).
EXPECTED_INPUT = {
    "alnet": 224, "dscnet": 224, "xincept": 224, "alexnet": 227, "vgg16": 224, "resnet50": 224,
    "googlenet": 224, "inception_v3": 224, "xception": 227, "inception_resnet_v2": 227,
    "darknet53": 224, "retinanet_cls": 227, "centernet_cls": 224, "cnn_lstm": 224,
    "audit_cnn": 64,  # not a paper's: the audits' own input size (leukcore.audits)
}

#: Models whose paper-size forward is heavy on 2 CPU cores: batch 1 there (batch 2 at the
#: small size); everything else uses batch 2 at both sizes.
HEAVY = {"inception_resnet_v2", "inception_v3", "xception", "xincept", "vgg16", "darknet53", "resnet50"}


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path_factory):
    """Offline environment: any connection / DNS lookup raises and is recorded."""
    attempts: list[str] = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args[:2]))
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = tmp_path_factory.mktemp("caches")
    monkeypatch.setenv("TORCH_HOME", str(cache / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache / "hf"))
    monkeypatch.delenv("LEUKCORE_WEIGHTS", raising=False)
    return attempts


@pytest.fixture(scope="module")
def xincept_model():
    """One XIncept build (43 M parameters, ~4 CPU-s) shared by the tests that need it."""
    return M.create_model("xincept", 4)


def _forward(model: nn.Module, side: int, batch: int) -> torch.Tensor:
    torch.manual_seed(0)
    with torch.no_grad():
        return model(torch.rand(batch, 3, side, side))


# ----------------------------------------------------------------- every model
def test_registry_is_complete():
    assert M.list_models() == sorted(EXPECTED_PARAMS)
    assert M.list_models("*net*") == ["alexnet", "alnet", "centernet_cls", "darknet53", "dscnet",
                                      "googlenet", "inception_resnet_v2", "resnet50", "retinanet_cls"]


@pytest.mark.parametrize("name", M.list_models())
def test_model_builds_counts_and_runs(name, no_network, request):
    """Paper input size and the smallest tested size: shapes, counts, attributes."""
    info = M.model_info(name)
    ncls = info["default_num_classes"]
    assert ncls == EXPECTED_DEFAULT_CLASSES[name]
    model = request.getfixturevalue("xincept_model") if name == "xincept" else M.create_model(name)
    model.eval()
    assert M.count_params(model) == EXPECTED_PARAMS[name]
    assert model.paper_input_size == EXPECTED_INPUT[name] == info["paper_input_size"]
    if info["papers"]:  # audit_cnn is no paper's model (the audits' own)
        assert model.paper_input_sizes[next(iter(info["papers"]))] > 0
    else:
        assert name == "audit_cnn" and model.paper_input_sizes == {}
    cfg = model.default_cfg
    assert cfg["input_size"] == (3, model.paper_input_size, model.paper_input_size)
    assert cfg["num_classes"] == ncls
    assert len(cfg["mean"]) == len(cfg["std"]) == 3 and min(cfg["std"]) > 0
    assert isinstance(model.leukcore_deviations, list)
    assert all(isinstance(d, str) for d in model.leukcore_deviations)
    assert callable(getattr(model, "forward_features", None))

    side = model.paper_input_size
    batch = 1 if name in HEAVY else 2
    out = _forward(model, side, batch)
    assert out.shape == (batch, ncls)
    assert torch.isfinite(out).all()

    small = info["small_input_size"]
    if name == "alnet":  # the flatten width depends on the input side: build again
        model = M.create_model(name, input_size=small).eval()
    out = _forward(model, small, 2)
    assert out.shape == (2, ncls)
    assert no_network == []


def test_normalisation_conventions():
    assert M.model_info("alnet")["mean"] == (0.0, 0.0, 0.0)
    assert M.model_info("alnet")["std"] == (1.0, 1.0, 1.0)
    assert M.model_info("resnet50")["mean"] == (0.485, 0.456, 0.406)
    assert M.model_info("resnet50")["std"] == (0.229, 0.224, 0.225)
    for name in ("xincept", "inception_v3", "xception", "inception_resnet_v2"):
        assert M.model_info(name)["mean"] == (0.5, 0.5, 0.5) == M.model_info(name)["std"]


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="valid names: alexnet, alnet"):
        M.create_model("resnet51", 2)
    with pytest.raises(ValueError, match="pretrained"):
        M.create_model("alnet", 2, pretrained="yes")


# ------------------------------------------------------------------------ ALNet
# Jawahar et al. 2022, Table 2: (layer, output H=W, channels, Param).
ALNET_TABLE2 = [
    ("conv1", 220, 32, 2432),
    ("conv2", 216, 32, 25632),
    ("pool1", 108, 32, 0),
    ("pool2", 54, 32, 0),
    ("bn1", 54, 32, 128),
    ("conv3", 50, 64, 51264),
    ("conv4", 46, 64, 102464),
    ("pool3", 23, 64, 0),
    ("pool4", 11, 64, 0),
    ("bn2", 11, 64, 256),
    ("conv5", 7, 128, 204928),
    ("pool5", 3, 128, 0),
    ("bn3", 3, 128, 512),
]


def test_alnet_is_table2_exactly():
    model = M.create_model("alnet", 2).eval()
    trainable, total = M.count_params(model)
    assert trainable == 535_010  # the paper's number (sec. 4.4, Table 8)
    assert total == 535_010
    shapes = {}
    hooks = [getattr(model, n).register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape)))
             for n, *_ in ALNET_TABLE2]
    feats = model.forward_features(torch.rand(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    assert feats.shape == (1, 1152)
    for layer, side, ch, keras_params in ALNET_TABLE2:
        assert shapes[layer] == (1, ch, side, side), layer
        mod = getattr(model, layer)
        n = sum(p.numel() for p in mod.parameters()) + sum(
            b.numel() for k, b in mod.named_buffers() if k in ("running_mean", "running_var"))
        assert n == keras_params, layer  # Keras counts BN moving mean/var as (non-trainable) params
    assert model.fc1.weight.shape == (128, 1152) and model.fc2.weight.shape == (2, 128)
    assert sum(p.numel() for p in model.fc1.parameters()) == 147584
    assert sum(p.numel() for p in model.fc2.parameters()) == 258
    # Table 2's Param column sums to 535,458 = 535,010 trainable + 448 BN moving statistics
    bn_stats = sum(getattr(model, b).running_mean.numel() * 2 for b in ("bn1", "bn2", "bn3"))
    assert trainable + bn_stats == 535_458
    assert model.bn1.eps == 1e-3 and model.bn1.momentum == pytest.approx(0.01)


def test_alnet_dropout_and_size_checks():
    assert M.create_model("alnet", 2).dropout.p == 0.2
    assert M.create_model("alnet", 2, dropout=0.3).dropout.p == 0.3
    with pytest.raises(ValueError, match="input_size"):
        M.create_model("alnet", 2)(torch.zeros(1, 3, 200, 200))
    with pytest.raises(ValueError, match=">= 136"):
        M.create_model("alnet", 2, input_size=128)
    assert M.ALNet.flatten_side(224) == 3 and M.ALNet.flatten_side(136) == 1


# ----------------------------------------------------------------------- DSCNet
def test_dscnet_topology():
    from leukcore.filters import SharpenLayer

    model = M.create_model("dscnet", 4).eval()
    assert isinstance(model.filter, SharpenLayer)
    assert [c[0].in_channels for c in model.convs] == [3, 35, 67, 131, 195, 323]
    assert [c[0].out_channels for c in model.convs] == [32, 32, 64, 64, 128, 256]
    assert [d.p for d in model.drops] == [0.3, 0.2]
    assert [fc.out_features for fc in model.fcs] == [256, 128]
    # parameter count by hand: 3x3 convs with bias, three linear layers
    convs = sum(ci * co * 9 + co for ci, co in zip([3, 35, 67, 131, 195, 323], [32, 32, 64, 64, 128, 256]))
    dense = (256 * 256 + 256) + (256 * 128 + 128) + (128 * 4 + 4)
    assert M.count_params(model)[0] == convs + dense == 1_193_604
    # the filter is fixed: no parameters, and it equals the numpy reference
    assert list(model.filter.parameters()) == []
    x = torch.rand(1, 3, 224, 224)
    assert model.forward_features(x).shape == (1, 256)
    # dense block: the conv output and its input are both present after concatenation
    z = model.filter(x)
    out = model.act(model.convs[0](z))
    cat = model.act(torch.cat([out, z], 1))
    assert torch.equal(cat[:, 32:], torch.relu(z))


def test_dscnet_options():
    model = M.create_model("dscnet", 4, activation="leaky_relu", dropout=(0.1, 0.1))
    assert isinstance(model.act, nn.LeakyReLU) and model.act.negative_slope == 0.3
    assert [d.p for d in model.drops] == [0.1, 0.1]
    assert any("LeakyReLU" in d for d in model.leukcore_deviations)
    with pytest.raises(ValueError, match="activation"):
        M.create_model("dscnet", 4, activation="gelu")


# ---------------------------------------------------------------------- XIncept
def test_xincept_frozen_fusion_and_l2(xincept_model):
    model = xincept_model
    assert all(not p.requires_grad for p in model.xception.parameters())
    assert all(not p.requires_grad for p in model.inception.parameters())
    model.train()
    assert model.training and not model.xception.training and not model.inception.training
    x = torch.rand(2, 3, 75, 75)
    with torch.no_grad():
        assert model.forward_features(x).shape == (2, 8)  # concat of two 4-unit linear outputs
    loss = model(x).sum() + model.l2_lambda * sum(w.pow(2).sum() for w in model.l2_params())
    loss.backward()
    assert all(p.grad is None for p in model.inception.parameters())
    assert model.classifier.weight.grad is not None
    shapes = [tuple(w.shape) for w in M.l2_params(model)]
    assert shapes == [(4, 64), (4, 64), (4, 64)] and model.l2_lambda == 0.01
    assert any("Algorithm 1 prints 2" in d for d in model.leukcore_deviations)


def test_xincept_literal_branch_units(monkeypatch):
    """``branch_units=2`` is Algorithm 1 verbatim; stub backbones keep this test cheap."""
    import timm

    class Stub(nn.Module):
        num_features = 3

        def forward(self, x):
            return x.mean(dim=(2, 3))

    monkeypatch.setattr(timm, "create_model", lambda *a, **k: Stub())
    literal = M.create_model("xincept", 4, branch_units=2)
    assert literal.xception_out.out_features == literal.inception_out.out_features == 2
    assert literal.fusion1.in_features == 4 and literal.classifier.out_features == 4
    x = torch.rand(2, 3, 8, 8)
    assert literal.forward_features(x).shape == (2, 4) and literal(x).shape == (2, 4)
    assert literal.forward_features(x, "refined").shape == (2, 64)
    assert literal.forward_features(x, "backbone").shape == (2, 6)  # both pooled backbones
    with pytest.raises(ValueError, match="level"):
        literal.forward_features(x, "pooled")
    # the fused vector is [Xception branch, Inception branch] (Algorithm 1, step 8)
    ox = literal.xception_out(torch.relu(literal.xception_dense(x.mean(dim=(2, 3)))))
    assert torch.allclose(literal.forward_features(x)[:, :2], ox)


def test_forward_features_shapes():
    alex = M.create_model("alexnet", 2).eval()
    with torch.no_grad():
        assert alex.forward_features(torch.rand(1, 3, 227, 227)).shape == (1, 9216)  # pool5, 6x6x256
        retina = M.create_model("retinanet_cls", 2).eval()
        assert retina.forward_features(torch.rand(1, 3, 128, 128)).shape == (1, 1280)
        assert M.create_model("cnn_lstm", 4).eval().forward_features(torch.rand(1, 3, 64, 64)).shape == (1, 128)
    generic = M.l2_params(M.create_model("cnn_lstm", 4))
    assert all(w.dim() in (2, 4) for w in generic)  # kernels only


def test_model_summary_and_param_table(monkeypatch):
    s = M.model_summary("alnet", 2)
    assert s == {"name": "alnet", "num_classes": 2, "params_trainable": 535_010, "params_total": 535_010,
                 "input_size": 224, "output_shape": (1, 2)}
    assert M.model_summary("cnn_lstm", 3, input_size=64)["output_shape"] == (1, 3)
    monkeypatch.setattr(M.registry, "list_models", lambda pattern=None: ["alnet", "dscnet"])
    table = M.param_table({"dscnet": 5})
    assert list(table["model"]) == ["alnet", "dscnet"]
    assert list(table["num_classes"]) == [2, 5]
    assert table.loc[0, "params_trainable"] == table.loc[0, "paper_params"] == 535_010
    assert table.loc[1, "params_trainable"] == 1_193_604 + 129  # one more output: 128 weights + 1 bias
    with pytest.raises(ValueError, match="unknown model"):
        M.param_table({"nope": 2})


@pytest.mark.slow
def test_param_table_all_models():
    table = M.param_table()
    assert dict(zip(table["model"], zip(table["params_trainable"], table["params_total"]))) == EXPECTED_PARAMS


# ---------------------------------------------------------------------- weights
def test_weights_path_round_trip_replaces_head(tmp_path, no_network):
    src = M.create_model("alnet", 2)
    path = tmp_path / "alnet_fold0.pth"
    torch.save({"state_dict": src.state_dict(), "epoch": 3}, path)  # a trainer-style checkpoint
    model = M.create_model("alnet", 3, weights=path)
    rep = model.leukcore_weights
    assert rep["dropped_head_keys"] == ["fc2.bias", "fc2.weight"]
    assert rep["source"] == f"file:{path}"
    assert model.fc2.weight.shape == (3, 128)
    src_sd, new_sd = src.state_dict(), model.state_dict()
    for k, v in src_sd.items():
        if not k.startswith("fc2."):
            assert torch.equal(v, new_sd[k]), k
    assert not torch.equal(src.fc2.weight[:2], model.fc2.weight[:2])
    assert no_network == []  # no download attempted


def test_weights_path_wrong_architecture(tmp_path):
    path = tmp_path / "alnet.pth"
    torch.save(M.create_model("alnet", 2).state_dict(), path)
    with pytest.raises(ValueError, match="no key matches"):
        M.create_model("dscnet", 4, weights=path)
    with pytest.raises(ValueError, match="shape mismatches outside the head"):
        M.create_model("alnet", 2, weights=path, input_size=160)  # fc1 differs: not the head
    with pytest.raises(FileNotFoundError):
        M.create_model("alnet", 2, weights=tmp_path / "missing.pth")


def test_leukcore_weights_dir_backbone_file(tmp_path, monkeypatch, no_network):
    """$LEUKCORE_WEIGHTS/resnet50.safetensors initialises retinanet_cls's ResNet-50 body."""
    from safetensors.torch import save_file

    resnet = M.create_model("resnet50", 1000)
    save_file(resnet.state_dict(), str(tmp_path / "resnet50.safetensors"))
    monkeypatch.setenv("LEUKCORE_WEIGHTS", str(tmp_path))
    model = M.create_model("retinanet_cls", 2, pretrained=True)
    rep = model.leukcore_weights
    assert rep["target"] == "backbone.body"
    assert rep["unexpected_keys"] == ["fc.bias", "fc.weight"]
    assert torch.equal(model.backbone.body.conv1.weight, resnet.conv1.weight)
    assert torch.equal(model.backbone.body.layer4[2].bn3.running_var, resnet.layer4[2].bn3.running_var)
    assert not any("from scratch" in d or "without pretrained" in d for d in model.leukcore_deviations)
    assert no_network == []


def test_xincept_backbones_from_weights_dir(tmp_path, monkeypatch, no_network):
    """xincept with pretrained=True loads inception_v3.pth and xception.pth into its two branches."""
    import timm

    inc = timm.create_model("inception_v3", aux_logits=True)  # with the auxiliary head, as published
    xc = timm.create_model("legacy_xception")
    torch.save(inc.state_dict(), tmp_path / "inception_v3.pth")
    torch.save(xc.state_dict(), tmp_path / "xception.pth")
    monkeypatch.setenv("LEUKCORE_WEIGHTS", str(tmp_path))
    model = M.create_model("xincept", 4, pretrained=True)
    parts = {p["target"]: p for p in model.leukcore_weights["parts"]}
    assert set(parts) == {"inception", "xception"}
    assert parts["xception"]["unexpected_keys"] == ["fc.bias", "fc.weight"]
    assert all(k.startswith(("AuxLogits.", "fc.")) for k in parts["inception"]["unexpected_keys"])
    assert parts["inception"]["missing_keys"] == parts["xception"]["missing_keys"] == []
    assert torch.equal(model.inception.Conv2d_1a_3x3.conv.weight, inc.Conv2d_1a_3x3.conv.weight)
    assert torch.equal(model.xception.conv1.weight, xc.conv1.weight)
    assert M.count_params(model)[0] == EXPECTED_PARAMS["xincept"][0]  # still frozen
    assert no_network == []


def test_torchvision_cache_is_used(tmp_path, monkeypatch, no_network):
    """A state dict in torch.hub's cache (named as torchvision's URL) loads with no network."""
    import os

    from torchvision.models import GoogLeNet_Weights

    src = M.create_model("googlenet", 1000)
    ckpt = tmp_path / "torch" / "hub" / "checkpoints" / os.path.basename(GoogLeNet_Weights.IMAGENET1K_V1.url)
    ckpt.parent.mkdir(parents=True)
    torch.save(src.state_dict(), ckpt)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    model = M.create_model("googlenet", 2, pretrained=True)
    assert "cache" in model.leukcore_weights["source"]
    assert model.leukcore_weights["dropped_head_keys"] == ["fc.bias", "fc.weight"]
    assert model.transform_input is True  # what torchvision's ImageNet GoogLeNet expects
    assert torch.equal(model.conv1.conv.weight, src.conv1.conv.weight)
    assert no_network == []


def test_hf_cache_is_used(tmp_path, monkeypatch, no_network):
    """timm weights found in the Hugging Face cache layout load offline, head replaced."""
    from safetensors.torch import save_file

    src = M.create_model("centernet_cls", 1000)
    repo = tmp_path / "hf" / "models--timm--dla34.in1k"
    rev = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(rev)
    snap = repo / "snapshots" / rev
    snap.mkdir(parents=True)
    save_file(src.state_dict(), str(snap / "model.safetensors"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    model = M.create_model("centernet_cls", 2, pretrained=True)
    assert model.leukcore_weights["dropped_head_keys"] == ["fc.bias", "fc.weight"]
    assert torch.equal(model.base_layer[0].weight, src.base_layer[0].weight)
    assert no_network == []


def test_pretrained_offline_raises_clear_error(no_network):
    with pytest.raises(M.WeightsUnavailableError) as err:
        M.create_model("alexnet", 2, pretrained=True)
    msg = str(err.value)
    for part in ("LEUKCORE_WEIGHTS", "alexnet.pth", "alexnet-owt-7be5be79.pth", "if-available", "HF_HUB_OFFLINE"):
        assert part in msg, part
    with pytest.raises(M.WeightsUnavailableError, match="inception_v3.pth") as err:
        M.create_model("xincept", 4, pretrained=True)
    assert "xception.pth or legacy_xception.pth" in str(err.value)
    with pytest.raises(M.WeightsUnavailableError, match="trained it from scratch"):
        M.create_model("alnet", 2, pretrained=True)
    assert no_network == []


def test_pretrained_if_available_records_deviation(no_network):
    model = M.create_model("resnet50", 4, pretrained="if-available")
    assert M.FROM_SCRATCH_DEVIATION in model.leukcore_deviations
    assert model.leukcore_weights is None
    assert _forward(model.eval(), 64, 2).shape == (2, 4)
    scratch = M.create_model("alnet", 2, pretrained="if-available")  # its paper had no ImageNet weights
    assert M.FROM_SCRATCH_DEVIATION not in scratch.leukcore_deviations
    assert any("pretrained=False" in d for d in M.create_model("resnet50", 4).leukcore_deviations)
    assert no_network == []


def test_import_is_cheap_and_offline():
    code = (
        "import socket, sys\n"
        "def boom(*a, **k): raise SystemExit('network touched at import')\n"
        "socket.socket.connect = boom; socket.create_connection = boom; socket.getaddrinfo = boom\n"
        "import leukcore, leukcore.models as m\n"
        "assert 'timm' not in sys.modules and 'torchvision' not in sys.modules, 'heavy import'\n"
        "assert len(m.list_models()) == 15\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr + res.stdout


@pytest.mark.parametrize("name", ["alexnet", "alnet", "inception_v3"])
def test_min_input_size_is_the_smallest_that_works(name):
    import torch

    from leukcore.models import create_model, min_input_size

    s = min_input_size(name)
    kw = {"input_size": s} if name == "alnet" else {}
    m = create_model(name, num_classes=2, **kw).eval()
    with torch.no_grad():
        assert m(torch.zeros(1, 3, s, s)).shape == (1, 2)
        with pytest.raises((RuntimeError, ValueError)):
            create_model(name, num_classes=2, **({"input_size": s - 8} if name == "alnet" else {})).eval()(
                torch.zeros(1, 3, s - 8, s - 8))

"""Tests of leukcore.engine (config, batching, loop, evaluation, checkpoint): the training loop, checkpoint / resume, determinism."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from torch import nn

from leukcore.engine import FitResult, TrainConfig, fit, load_checkpoint, model_norm_stats, predict_proba


class Interrupted(Exception):
    """Simulates a run killed right after an epoch's checkpoint."""


def _data(n=24, size=12, ncls=2, seed=0):
    """Separable synthetic set: class c adds 150 to channel c % 3 (uint8 NHWC, int labels)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % ncls
    rng.shuffle(y)
    x = rng.integers(0, 60, (n, size, size, 3)).astype(np.uint8)
    for c in range(ncls):
        x[y == c, :, :, c % 3] += 150
    return x, y


def _tiny(seed=0, ncls=2):
    """Small CNN with BatchNorm and dropout (both touch state / RNG)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, ncls),
    )


def _cfg(**kw):
    base = dict(epochs=2, batch_size=8, lr=1e-2, progress=False, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _strip_time(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


# ------------------------------------------------------------------ config
def test_config_is_keyword_only_and_validates_names():
    with pytest.raises(TypeError):
        TrainConfig("adam")  # noqa
    with pytest.raises(ValueError) as e:
        TrainConfig(optimizer="adagrad")
    for name in ("adam", "rmsprop", "sgd"):
        assert name in str(e.value)
    with pytest.raises(ValueError, match="sparse_ce"):
        TrainConfig(loss="hinge")
    with pytest.raises(ValueError, match="dscnet"):
        TrainConfig(augment="heavy")
    with pytest.raises(ValueError):
        TrainConfig(augment="alnet", augment_kwargs={"spin": 3})
    with pytest.raises(ValueError):
        TrainConfig(amp="fp16")
    with pytest.raises(ValueError):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError):
        TrainConfig(device="tpu")


def test_config_to_dict_is_plain():
    d = TrainConfig(class_weights=(1, 2), augment_kwargs={"translate": (0.1, 0.0)}).to_dict()
    assert d["class_weights"] == [1.0, 2.0] and d["augment_kwargs"]["translate"] == [0.1, 0.0]
    assert d["amp"] == "auto" and d["compile"] is False and d["deterministic"] is True


# ------------------------------------------------------------------ fit basics
def test_fit_result_fields_and_test_predictions():
    x, y = _data()
    ids = [f"img{i}" for i in range(len(y))]
    m = _tiny()
    r = fit(m, (x, y), (x, y), (x, y, ids), config=_cfg(epochs=3))
    assert isinstance(r, FitResult)
    assert [h["epoch"] for h in r.history] == [1, 2, 3]
    for h in r.history:
        assert set(h) >= {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"}
        assert 0.0 <= h["train_accuracy"] <= 1.0 and h["seconds"] > 0
    assert r.test_prob.shape == (len(y), 2)
    np.testing.assert_allclose(r.test_prob.sum(1), 1.0, atol=1e-6)
    assert r.test_ids == ids and np.array_equal(r.test_y, y)
    assert r.device == "cpu" and r.images_per_s > 0 and r.wall_time_s > 0
    assert r.best_epoch == 1 + int(np.argmin([h["val_loss"] for h in r.history]))
    assert r.config["epochs"] == 3 and r.resumed_from_epoch == 0
    # test probabilities are the model's eval-mode softmax, as predict_proba computes them
    np.testing.assert_allclose(r.test_prob, predict_proba(m, x, batch_size=5, device="cpu"), atol=1e-6)
    # val accuracy agrees with the test predictions on the same images
    assert math.isclose(r.history[-1]["val_accuracy"], float((r.test_prob.argmax(1) == y).mean()))


def test_training_lowers_the_loss_tiny_model():
    x, y = _data(n=32)
    r = fit(_tiny(), (x, y), config=_cfg(epochs=6, lr=5e-2))
    assert r.history[-1]["train_loss"] < r.history[0]["train_loss"]
    assert r.history[0]["val_loss"] is None and r.best_epoch == 6


def test_numpy_nhwc_and_torch_nchw_inputs_agree():
    x, y = _data()
    r1 = fit(_tiny(), (x, y), config=_cfg())
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    r2 = fit(_tiny(), (xt, torch.from_numpy(y)), config=_cfg())
    assert _strip_time(r1.history) == _strip_time(r2.history)


def test_bad_inputs_raise_clear_errors():
    x, y = _data()
    with pytest.raises(ValueError, match="uint8"):
        fit(_tiny(), (x.astype(np.float32), y), config=_cfg())
    with pytest.raises(ValueError, match="labels"):
        fit(_tiny(), (x, y[:-1]), config=_cfg())
    with pytest.raises(ValueError, match="ids"):
        fit(_tiny(), (x, y), test=(x, y, ["a"]), config=_cfg())
    with pytest.raises(ValueError, match="checkpoint_dir"):
        fit(_tiny(), (x, y), config=_cfg(), resume=True)
    with pytest.raises(ValueError, match="TrainConfig"):
        fit(_tiny(), (x, y), config={"epochs": 1})


def test_deterministic_setting_restored_after_fit():
    before = torch.are_deterministic_algorithms_enabled()
    threads = torch.get_num_threads()
    x, y = _data(n=8)
    fit(_tiny(), (x, y), config=_cfg(epochs=1, num_threads=1))
    assert torch.are_deterministic_algorithms_enabled() == before
    assert torch.get_num_threads() == threads


# ------------------------------------------------------------------ determinism
def test_same_seed_gives_identical_runs():
    x, y = _data()
    cfg = _cfg(augment="dscnet", epochs=2)
    m1, m2 = _tiny(), _tiny()
    r1 = fit(m1, (x, y), (x, y), config=cfg)
    r2 = fit(m2, (x, y), (x, y), config=cfg)
    assert _same_state(m1, m2)
    assert _strip_time(r1.history) == _strip_time(r2.history)
    m3 = _tiny()
    fit(m3, (x, y), config=_cfg(augment="dscnet", epochs=2, seed=1))
    assert not _same_state(m1, m3)


# ------------------------------------------------------------------ checkpoint / resume
@pytest.mark.parametrize(
    "opts",
    [
        dict(augment="dscnet", optimizer="adam"),
        dict(augment="xincept", optimizer="sgd", optimizer_kwargs={"momentum": 0.9}, scheduler="cosine", l2=1e-3),
        dict(augment="alnet", optimizer="rmsprop", restore_best=True),
    ],
    ids=["adam-dscnet", "sgd-cosine-l2", "rmsprop-best"],
)
def test_resume_after_interruption_is_bit_identical(tmp_path, opts):
    x, y = _data()
    xv, yv = _data(n=8, seed=1)
    cfg = _cfg(epochs=3, **opts)
    full = _tiny()
    r_full = fit(full, (x, y), (xv, yv), (xv, yv), config=cfg, checkpoint_dir=tmp_path / "full")

    def kill_after_first(epoch, record, model):
        if epoch == 1:
            raise Interrupted

    part = _tiny()
    with pytest.raises(Interrupted):
        fit(part, (x, y), (xv, yv), (xv, yv), config=cfg, checkpoint_dir=tmp_path / "cut", callbacks=[kill_after_first])
    ck = load_checkpoint(tmp_path / "cut" / "last.pt")
    assert ck["epoch"] == 1
    # a fresh process: new model object with other weights, RNGs disturbed
    torch.manual_seed(12345)
    np.random.seed(5)
    resumed = _tiny(seed=99)
    r_res = fit(resumed, (x, y), (xv, yv), (xv, yv), config=cfg, checkpoint_dir=tmp_path / "cut", resume=True)
    assert r_res.resumed_from_epoch == 1
    assert _same_state(full, resumed)
    assert _strip_time(r_full.history) == _strip_time(r_res.history)
    np.testing.assert_array_equal(r_full.test_prob, r_res.test_prob)
    assert r_full.best_epoch == r_res.best_epoch


def test_one_epoch_then_resume_with_more_epochs_matches_two_epochs(tmp_path):
    x, y = _data()
    two = _tiny()
    fit(two, (x, y), config=_cfg(epochs=2, augment="logmh"))
    one = _tiny()
    fit(one, (x, y), config=_cfg(epochs=1, augment="logmh"), checkpoint_dir=tmp_path)
    again = _tiny(seed=3)
    r = fit(again, (x, y), config=_cfg(epochs=2, augment="logmh"), checkpoint_dir=tmp_path, resume=True)
    assert _same_state(two, again) and len(r.history) == 2


def test_checkpoint_contents_weights_only_and_atomic(tmp_path):
    x, y = _data(n=8)
    fit(_tiny(), (x, y), config=_cfg(epochs=2, scheduler="cosine"), checkpoint_dir=tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["last.pt"]  # no temporary file left behind
    ck = torch.load(tmp_path / "last.pt", map_location="cpu", weights_only=True)
    assert ck["epoch"] == 2 and len(ck["history"]) == 2
    for key in ("model", "optimizer", "scheduler", "config", "rng"):
        assert ck[key] is not None, key
    assert set(ck["rng"]) >= {"python", "numpy", "torch", "shuffle", "augment"}
    assert isinstance(ck["rng"]["torch"], torch.Tensor)


def test_resume_refuses_a_different_config(tmp_path):
    x, y = _data(n=8)
    fit(_tiny(), (x, y), config=_cfg(epochs=1), checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="lr"):
        fit(_tiny(), (x, y), config=_cfg(epochs=2, lr=0.5), checkpoint_dir=tmp_path, resume=True)


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    x, y = _data(n=8)
    a, b = _tiny(), _tiny()
    fit(a, (x, y), config=_cfg(epochs=1))
    r = fit(b, (x, y), config=_cfg(epochs=1), checkpoint_dir=tmp_path / "new", resume=True)
    assert r.resumed_from_epoch == 0 and _same_state(a, b)


def test_resume_of_a_finished_run_only_predicts(tmp_path):
    x, y = _data(n=8)
    a = _tiny()
    r1 = fit(a, (x, y), test=(x, y), config=_cfg(epochs=1), checkpoint_dir=tmp_path)
    b = _tiny(seed=5)
    r2 = fit(b, (x, y), test=(x, y), config=_cfg(epochs=1), checkpoint_dir=tmp_path, resume=True)
    assert _same_state(a, b) and r2.images_per_s is None
    np.testing.assert_array_equal(r1.test_prob, r2.test_prob)


# ------------------------------------------------------------------ options
def test_class_weights_are_used_by_the_loss():
    x, y = _data()
    r0 = fit(_tiny(), (x, y), config=_cfg(epochs=1))
    r1 = fit(_tiny(), (x, y), config=_cfg(epochs=1, class_weights=[1.0, 4.0]))
    assert r1.config["class_weights"] == [1.0, 4.0]
    assert r0.history[0]["train_loss"] != r1.history[0]["train_loss"]
    with pytest.raises(ValueError, match="class weights"):
        fit(_tiny(), (x, y), config=_cfg(epochs=1, loss="bce", class_weights=[1.0, 2.0]))


@pytest.mark.parametrize("loss", ["mce", "kl", "focal", "bce"])
def test_other_losses_train(loss):
    x, y = _data()
    r = fit(_tiny(), (x, y), test=(x, y), config=_cfg(epochs=2, loss=loss))
    assert all(math.isfinite(h["train_loss"]) for h in r.history)
    np.testing.assert_allclose(r.test_prob.sum(1), 1.0, atol=1e-6)


def test_l2_term_uses_model_l2_params_when_defined():
    from leukcore.engine import l2_term

    m = _tiny()
    only = m[6].weight
    m.l2_params = lambda: [only]
    torch.testing.assert_close(l2_term(m, 0.01), 0.01 * only.pow(2).sum())
    plain = _tiny()
    expected = 0.01 * (plain[0].weight.pow(2).sum() + plain[6].weight.pow(2).sum())
    torch.testing.assert_close(l2_term(plain, 0.01), expected)
    assert l2_term(plain, 0.0) is None


def test_l2_reported_and_changes_training():
    x, y = _data()
    a, b = _tiny(), _tiny()
    ra = fit(a, (x, y), config=_cfg(epochs=1))
    rb = fit(b, (x, y), config=_cfg(epochs=1, l2=0.1))
    assert "train_l2" not in ra.history[0] and rb.history[0]["train_l2"] > 0
    assert not _same_state(a, b)


def test_val_every_and_callback_stop():
    x, y = _data(n=8)
    r = fit(_tiny(), (x, y), (x, y), config=_cfg(epochs=3, val_every=2))
    assert [h["val_loss"] is None for h in r.history] == [True, False, False]  # and the last epoch
    r = fit(_tiny(), (x, y), config=_cfg(epochs=5), callbacks=[lambda e, rec, m: e >= 2])
    assert len(r.history) == 2


@pytest.mark.parametrize("channels_last", [True, False])
def test_memory_format_of_batches(channels_last):
    seen = []

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _tiny()

        def forward(self, x):
            seen.append(x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())
            return self.net(x)

    x, y = _data(n=8)
    r = fit(Probe(), (x, y), (x, y), config=_cfg(epochs=1, channels_last=channels_last, augment="alnet"))
    assert seen and all(s == channels_last for s in seen)
    assert math.isfinite(r.history[0]["val_loss"])


def test_batch_of_one_is_dropped_and_all_others_used():
    from leukcore.engine import batch_bounds

    assert batch_bounds(17, 8) == [(0, 8), (8, 16)]
    assert batch_bounds(18, 8) == [(0, 8), (8, 16), (16, 18)]
    assert batch_bounds(1, 8) == [(0, 1)]


def test_predict_proba_bce_one_logit_and_norm_stats():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 1))
    x = np.random.default_rng(0).integers(0, 255, (5, 4, 4, 3)).astype(np.uint8)
    p = predict_proba(m, x, batch_size=2, device="cpu", loss="bce")
    assert p.shape == (5, 2)
    np.testing.assert_allclose(p.sum(1), 1.0)
    assert model_norm_stats(m) == ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    m.default_cfg = {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}
    assert model_norm_stats(m) == ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    # normalisation is applied: logits equal the model on (x/255 - 0.5)/0.25
    p = predict_proba(m, x, batch_size=2, device="cpu", loss="bce")
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        z = m((xt / 255 - 0.5) / 0.25)[:, 0]
    np.testing.assert_allclose(p[:, 1], torch.sigmoid(z).double().numpy(), atol=1e-6)


# ------------------------------------------------------------------ paper models
def _paper_model(name):
    models = pytest.importorskip("leukcore.models")
    torch.manual_seed(0)
    if name == "alnet":
        return models.create_model("alnet", num_classes=2, input_size=136), 136
    return models.create_model("dscnet", num_classes=2), 64


@pytest.mark.parametrize(
    "name,opt,lr,loss", [("alnet", "rmsprop", 1e-3, "bce"), ("dscnet", "adam", 1e-3, "kl")]
)
def test_paper_models_training_lowers_the_loss(name, opt, lr, loss):
    model, size = _paper_model(name)
    x, y = _data(n=8, size=size)
    r = fit(model, (x, y), config=_cfg(optimizer=opt, lr=lr, loss=loss, epochs=3, batch_size=4))
    losses = [h["train_loss"] for h in r.history]
    assert losses[-1] < losses[0], losses


def test_dscnet_resume_is_bit_identical(tmp_path):
    x, y = _data(n=8, size=64)
    cfg = _cfg(epochs=2, batch_size=4, augment="dscnet", l2=0.01, lr=1e-3)
    full, _ = _paper_model("dscnet")
    fit(full, (x, y), config=cfg)

    def kill(epoch, record, model):
        raise Interrupted

    part, _ = _paper_model("dscnet")
    with pytest.raises(Interrupted):
        fit(part, (x, y), config=cfg, checkpoint_dir=tmp_path, callbacks=[kill])
    resumed, _ = _paper_model("dscnet")
    fit(resumed, (x, y), config=cfg, checkpoint_dir=tmp_path, resume=True)
    assert _same_state(full, resumed)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_channels_last_trains():
    x, y = _data(n=32)
    m = _tiny()
    r = fit(m, (x, y), test=(x, y), config=_cfg(epochs=3, device="cuda", augment="dscnet"))
    assert r.device.startswith("cuda") and r.test_prob.shape == (32, 2)
    assert next(m.parameters()).device.type == "cuda"


_KILL_SCRIPT = r'''
import os, signal, sys
import numpy as np, torch
from torch import nn
from leukcore.engine import TrainConfig, fit

rng = np.random.default_rng(0)
y = np.arange(24) % 2
x = rng.integers(0, 60, (24, 12, 12, 3)).astype(np.uint8)
x[y == 1, :, :, 1] += 150
torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.3),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
kill_at = int(os.environ.get("KILL_AT", "0"))
calls = [0]
def hook(module, inputs):
    calls[0] += module.training
    if kill_at and calls[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
model.register_forward_pre_hook(hook)
cfg = TrainConfig(epochs=3, batch_size=8, lr=1e-2, progress=False, device="cpu", augment="dscnet", num_threads=1)
fit(model, (x, y), (x, y), config=cfg, checkpoint_dir=sys.argv[1], resume=True)
torch.save(model.state_dict(), sys.argv[2])
'''


@pytest.mark.slow
def test_sigkill_mid_epoch_then_restart_matches_uninterrupted(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "run.py"
    script.write_text(_KILL_SCRIPT)
    env = {**os.environ, "KILL_AT": "0"}

    def run(ckdir, out, kill_at=0):
        return subprocess.run(
            [sys.executable, str(script), str(tmp_path / ckdir), str(tmp_path / out)],
            env={**env, "KILL_AT": str(kill_at)}, capture_output=True, text=True, timeout=300,
        )

    ref = run("ref", "ref.pt")
    assert ref.returncode == 0, ref.stderr
    killed = run("cut", "never.pt", kill_at=5)  # 3 steps per epoch: dies in epoch 2's 2nd step
    assert killed.returncode == -9
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 1
    again = run("cut", "resumed.pt")
    assert again.returncode == 0, again.stderr
    a = torch.load(tmp_path / "ref.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------ speed settings (performance issue)
def test_adam_is_the_fused_update_on_cpu_and_numerically_adam():
    from leukcore.engine import make_optimizer

    cfg = TrainConfig(lr=1e-2)
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(50, 40))
    ref = nn.Parameter(w.detach().clone())
    fused = make_optimizer(cfg, [w], torch.device("cpu"))
    plain = torch.optim.Adam([ref], lr=1e-2, betas=(0.9, 0.999), eps=1e-7, foreach=False)
    assert fused.defaults["fused"] is True
    for step in range(5):
        g = torch.randn(50, 40, generator=torch.Generator().manual_seed(step))
        w.grad, ref.grad = g.clone(), g.clone()
        fused.step()
        plain.step()
    torch.testing.assert_close(w.detach(), ref.detach(), rtol=1e-5, atol=1e-6)
    assert make_optimizer(cfg, [nn.Parameter(torch.zeros(2))]).defaults.get("fused") in (None, False)
    sgd = make_optimizer(TrainConfig(optimizer="rmsprop"), [nn.Parameter(torch.zeros(2))], torch.device("cpu"))
    assert sgd.defaults.get("fused") in (None, False)


def test_compile_modes_are_validated():
    assert TrainConfig(compile="reduce-overhead").compile == "reduce-overhead"
    assert TrainConfig(compile=True).compile is True
    with pytest.raises(ValueError, match="unknown compile mode"):
        TrainConfig(compile="fastest")


def test_intra_op_threads_sets_and_restores_torch_and_opencv():
    import cv2

    from leukcore.engine import intra_op_threads

    before = torch.get_num_threads(), cv2.getNumThreads()
    with intra_op_threads(1):
        assert torch.get_num_threads() == 1 and cv2.getNumThreads() == 1
    assert (torch.get_num_threads(), cv2.getNumThreads()) == before
    with intra_op_threads(None):
        assert (torch.get_num_threads(), cv2.getNumThreads()) == before
    with pytest.raises(RuntimeError):
        with intra_op_threads(1):
            raise RuntimeError("boom")
    assert (torch.get_num_threads(), cv2.getNumThreads()) == before


def test_protocol_train_block_is_the_training_configuration(tmp_path, monkeypatch):
    """One configuration path: every key of a protocol's train block reaches TrainConfig; a misspelt key
    is an error naming it and the valid ones."""
    from leukcore.engine import TrainConfig
    from leukcore.runs import protocols as X
    from leukcore.runs.routes.training import train_config

    cfg = TrainConfig.from_protocol({"optimizer": "rmsprop", "lr": "1e-4", "epochs": 140, "weight_decay": 0.05,
                                     "scheduler": "cosine", "augment": None}, seed=3, device="cpu", progress=False)
    assert (cfg.optimizer, cfg.lr, cfg.epochs, cfg.weight_decay, cfg.scheduler, cfg.augment, cfg.seed) == \
        ("rmsprop", 1e-4, 140, 0.05, "cosine", "none", 3)
    assert cfg.batch_size == TrainConfig().batch_size  # unset keys take TrainConfig's own defaults
    with pytest.raises(ValueError, match=r"'wieght_decay'.*valid: optimizer, lr, epochs"):
        TrainConfig.from_protocol({"wieght_decay": 0.1})
    with pytest.raises(ValueError, match="'seed'"):  # a runtime field is not a protocol setting
        TrainConfig.from_protocol({"seed": 1})
    # through the experiments layer: an override key reaches the config, a misspelt one is refused
    exp = X.get_experiment("dscnet_vijayalakshmi", "dscnet")
    prof = __import__("leukcore.runs.profiles", fromlist=["get_profile"]).get_profile("smoke")
    s = X.experiment_settings("dscnet_vijayalakshmi", exp, prof, {"train": {"weight_decay": 0.01}})
    assert train_config(s, seed=0, device="cpu", progress=False).weight_decay == 0.01
    with pytest.raises(ValueError, match="'weight_dacay'"):
        X.experiment_settings("dscnet_vijayalakshmi", exp, prof, {"train": {"weight_dacay": 0.01}})
    # a protocol file with a misspelt key fails when it is read, naming the key and the file
    proto = (X.PROTOCOL_DIR / "dscnet_vijayalakshmi.yaml").read_text().replace("batch_size: 20", "batchsize: 20")
    (tmp_path / "dscnet_vijayalakshmi.yaml").write_text(proto)
    monkeypatch.setattr(X, "PROTOCOL_DIR", tmp_path)
    X.read_protocol.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"'batchsize'.*dscnet_vijayalakshmi.yaml"):
            X.load_protocol("dscnet_vijayalakshmi")
    finally:
        X.read_protocol.cache_clear()

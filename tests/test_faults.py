"""The fault matrix: what leukcore does with bad input, interrupted runs, seeds and unsafe files.

Each row is one fault, the behaviour the program guarantees, and the test that checks it
(``book/guarantees.md`` states the same in plain words).

===  ==========================================  ===========================================================  ==========================================
 #   fault                                       guaranteed behaviour                                         test
===  ==========================================  ===========================================================  ==========================================
1a   data root missing                           DataError: the path, the expected layout, how to get it       test_missing_data_root
1b   root with the wrong layout                  DataError: expected layout and the folders found              test_wrong_layout
1c   empty class folder                          DataError naming the folder; re-download                      test_empty_class_folder
1d   truncated JPEG / PNG / BMP                  BadImageError "truncated image" naming the file               test_bad_file[truncated-*]
1e   empty file                                  BadImageError "empty file (0 bytes)"                          test_bad_file[empty]
1f   non-image with an image extension           BadImageError "not an image"                                  test_bad_file[not-an-image]
1g   image too large (header 100000x100000)      refused from the header, before decoding (fast, no memory)    test_bad_file[huge-*], test_huge_image_...
1h   grey, palette, RGBA, 16-bit PNG             converted to RGB uint8; a warning naming the file says how    test_converted_inputs_are_announced
1i   file name not valid UTF-8                   DataError showing the name (escaped); rename it               test_non_utf8_file_name
1j   unknown dataset / model / loss / profile /  ValueError listing every valid name                           test_unknown_names
     augmentation / optimizer / classifier /
     paper / experiment / on_bad
1k   on_bad policy                               "raise" (default) stops at the first bad file, naming it;     test_bad_file[*], test_on_bad_skip_...,
                                                 "skip" leaves it out and lists it in the record's "skipped";  test_on_bad_raise_...
                                                 a skip record is never reused by a "raise" call
2a   training killed (SIGKILL) mid-epoch         resume=True continues from the last checkpoint; identical     test_sigkill_mid_epoch_then_resume_...
                                                 weights, history and test probabilities (CPU)
2b   crash between write and rename              old record and its predictions intact, no temporary files     test_record_write_is_atomic
2c   incomplete run / checkpoint without record  load_records() skips it; claims_table says "not run"     test_incomplete_run_is_never_complete
     / half-written record                       (records passed by hand are filtered too)           test_incomplete_record_passed_explicitly_...
3    same seed twice (smoke, CPU)                identical metrics, intervals, history and predictions         test_same_seed_same_smoke_results
4a   torch.load anywhere in the package          always weights_only=True (np.load: allow_pickle=False)        test_every_torch_load_is_weights_only
4b   checkpoint / weights holding a pickle that  refused; the code never runs                                  test_pickle_bomb_is_refused
     would run code
4c   network at import                           none: importing every submodule opens no socket               test_no_network_at_import
4d   Kaggle credentials                          never printed, logged or written (fetch failure, smoke run)   test_kaggle_credentials_never_leak
4e   absolute machine paths in notebooks         none in committed notebooks, run pages or run records;       test_no_absolute_paths_in_notebooks_...,
                                                 executed pages are scrubbed                                   test_no_absolute_paths_in_run_pages,
                                                                                                               test_scrub_paths_removes_this_machines_paths
===  ==========================================  ===========================================================  ==========================================
"""
from __future__ import annotations

import ast
import importlib.util
import io
import json
import os
import queue
import re
import resource
import signal
import struct
import subprocess
import sys
import threading
import time
import types
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from leukcore import data as D
from leukcore.data import BadImageError, DataError, ImageCache

PROJECT = Path(__file__).resolve().parents[1]
PAPER, EXPERIMENT = "dscnet_vijayalakshmi", "dscnet"
FAKE_USER, FAKE_KEY = "leukcore-fake-user-5d1e", "fa6e0c0ffee5ecre7k3y0123456789ab"


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A private cache and results folder for the whole module (nothing lands under results/)."""
    base = tmp_path_factory.mktemp("faults")
    mp = pytest.MonkeyPatch()
    mp.setenv("LEUKCORE_CACHE", str(base / "cache"))
    mp.setenv("LEUKCORE_RESULTS", str(base / "results-default"))
    mp.delenv("LEUKCORE_DATA", raising=False)
    yield base
    mp.undo()


@pytest.fixture(autouse=True)
def _cache(env, monkeypatch, tmp_path):
    monkeypatch.setenv("LEUKCORE_CACHE", str(tmp_path / "cache"))


def _tree(root: Path, n: int = 1, size: int = 16) -> Path:
    """A synthetic Taleqani tree at ``root/taleqani-all``; returns the dataset folder."""
    return D.write_synthetic(root / "taleqani-all", "taleqani", n_per_class=n, size=size, seed=0)


def _table(*paths: Path) -> pd.DataFrame:
    """The minimal table load_images needs for these files."""
    return pd.DataFrame({"id": [p.name for p in paths], "path": [str(p) for p in paths],
                         "sha256": [D.sha256_file(p) for p in paths]})


def _png_header(w: int, h: int) -> bytes:
    """A valid PNG whose header claims ``w x h`` RGB pixels but that holds almost no data."""
    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def _good_jpeg(path: Path, size: int = 16) -> Path:
    Image.fromarray(np.full((size, size, 3), (200, 120, 90), np.uint8)).save(path, quality=90)
    return path


# ---------------------------------------------------------------------------------------------- 1. bad input


def test_missing_data_root(tmp_path):
    missing = tmp_path / "no-such-root"
    with pytest.raises(DataError) as e:
        D.load_dataset("taleqani-all", missing, verbose=False)
    msg = str(e.value)
    assert str(missing) in msg and "does not exist" in msg
    assert "Original" in msg  # the expected layout
    assert "leukcore data fetch taleqani-all" in msg and "LEUKCORE_DATA" in msg  # the fix


def test_wrong_layout(tmp_path):
    root = tmp_path / "root"
    for d in ("images", "labels"):
        (root / d).mkdir(parents=True)
    with pytest.raises(DataError) as e:
        D.load_dataset("taleqani-all", root, verbose=False)
    msg = str(e.value)
    assert str(root) in msg and "Expected layout" in msg and "{Original,Segmented}" in msg
    assert "['images', 'labels']" in msg  # the folders found
    with pytest.raises(DataError, match=r"no known dataset layout.*Folders found: \['images', 'labels'\]"):
        D.detect_dataset(root)


def test_empty_class_folder(tmp_path):
    ds = _tree(tmp_path)
    for f in (ds / "Original" / "Pre").iterdir():
        f.unlink()
    with pytest.raises(DataError) as e:
        D.load_dataset("taleqani-all", tmp_path, verbose=False)
    msg = str(e.value)
    assert str(ds / "Original" / "Pre") in msg and "empty class folder" in msg and "Re-download" in msg


def _make_bad(kind: str, folder: Path) -> tuple[Path, str]:
    """One bad file of ``kind`` and the reason the program must give."""
    if kind.startswith("truncated"):
        ext = kind.split("-")[1]
        p = folder / f"cell.{ext}"
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(p)
        b = p.read_bytes()
        p.write_bytes(b[: len(b) // 2])
        return p, "truncated image"
    if kind == "empty":
        p = folder / "cell.jpg"
        p.write_bytes(b"")
        return p, "empty file (0 bytes)"
    if kind == "not-an-image":
        p = folder / "cell.png"
        p.write_text("id,label\n1,ALL\n")
        return p, "not an image"
    if kind.startswith("huge"):
        side = {"huge-pil": 100_000, "huge-ours": 8_000}[kind]
        p = folder / "cell.png"
        p.write_bytes(_png_header(side, side))
        return p, "refused before decoding"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated-jpg", "truncated-png", "truncated-bmp", "empty", "not-an-image",
                                  "huge-pil", "huge-ours"])
def test_bad_file(kind, tmp_path):
    """Each bad file: on_bad='raise' names it, the reason and the fix; on_bad='skip' lists it."""
    bad, reason = _make_bad(kind, tmp_path)
    good = _good_jpeg(tmp_path / "good.jpg")
    table = _table(good, bad)
    with pytest.raises(BadImageError) as e:
        D.load_images(table, 16, cache=ImageCache(tmp_path / "c"))  # default policy: raise
    msg = str(e.value)
    assert str(bad) in msg and reason in msg
    assert "fix or remove the file" in msg and "on_bad='skip'" in msg
    x, kept = D.load_images(table, 16, cache=ImageCache(tmp_path / "c"), on_bad="skip")
    assert x.shape == (1, 16, 16, 3) and list(kept["id"]) == ["good.jpg"]
    assert kept.attrs["skipped"] == [{"id": bad.name, "reason": e.value.reason.split("; fix")[0]}]
    assert reason in kept.attrs["skipped"][0]["reason"]


def test_huge_image_is_refused_before_decoding(tmp_path):
    """A header claiming 100000x100000 (30 GB decoded) is refused at once, without allocating it."""
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_header(100_000, 100_000))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning either: our message is the one shown
        with pytest.raises(BadImageError, match=r"bomb\.png: header claims more pixels than the limit of 50,000,000"):
            D.read_image(p)
    assert time.perf_counter() - t0 < 2.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # < 200 MB, not 30 GB
    # between our limit and PIL's: our own check, with the size and the setting to change
    p2 = tmp_path / "big.png"
    p2.write_bytes(_png_header(11_000, 10_000))
    with pytest.raises(BadImageError, match=r"11000x10000 pixels exceeds the limit .*raise max_pixels"):
        D.read_image(p2)


def test_converted_inputs_are_announced(tmp_path):
    """Grey, palette, RGBA, 16-bit grey and 16-bit RGB PNGs become RGB uint8 with a warning naming the file."""
    import cv2

    files = {}
    Image.fromarray(np.full((8, 8), 77, np.uint8)).save(files.setdefault("grey", tmp_path / "grey.png"))
    Image.fromarray(np.full((8, 8), 3, np.uint8)).convert("P").save(files.setdefault("palette", tmp_path / "pal.png"))
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = (10, 20, 30), 0
    Image.fromarray(rgba).save(files.setdefault("rgba", tmp_path / "rgba.png"))
    cv2.imwrite(str(files.setdefault("grey16", tmp_path / "grey16.png")), np.full((8, 8), 200 * 257, np.uint16))
    bgr16 = np.empty((8, 8, 3), np.uint16)
    bgr16[:] = (30 * 257, 20 * 257, 10 * 257)  # cv2 writes BGR: RGB = (10, 20, 30)
    cv2.imwrite(str(files.setdefault("rgb16", tmp_path / "rgb16.png")), bgr16)
    expect = {"grey": ((77, 77, 77), "L converted to RGB"), "palette": (None, "P converted to RGB"),
              "rgba": ((10, 20, 30), "RGBA converted to RGB (alpha discarded)"),
              "grey16": ((200, 200, 200), "16-bit I;16 converted to 8-bit grey (/257)"),
              "rgb16": ((10, 20, 30), "16-bit per channel RGB converted to 8 bits")}
    for kind, path in files.items():
        value, note = expect[kind]
        with pytest.warns(UserWarning) as w:
            x, _ = D.load_images(_table(path), None, cache=ImageCache(tmp_path / f"c-{kind}", disk=False))
        msgs = [str(m.message) for m in w]
        assert any(str(path) in m and note in m for m in msgs), (kind, msgs)
        assert x.dtype == np.uint8 and x.shape == (1, 8, 8, 3)
        if value is not None:
            assert tuple(x[0, 0, 0]) == value, kind
    # a plain 8-bit RGB file is not announced
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        D.load_images(_table(_good_jpeg(tmp_path / "plain.jpg")), None, cache=ImageCache(tmp_path / "c", disk=False))


def test_non_utf8_file_name(tmp_path):
    ds = _tree(tmp_path)
    folder = os.fsencode(ds / "Original" / "Benign")
    bad = os.path.join(folder, b"WBC-Benign-\xe9t\xe9.jpg")  # latin-1 bytes: not valid UTF-8
    with open(bad, "wb") as f:
        f.write((ds / "Original" / "Benign" / "WBC-Benign-001.jpg").read_bytes())
    with pytest.raises(DataError) as e:
        D.load_dataset("taleqani-all", tmp_path, verbose=False)
    msg = str(e.value)
    msg.encode("utf-8")  # the message itself is printable
    assert "WBC-Benign-\\udce9t\\udce9.jpg" in msg or "WBC-Benign-\\xe9t\\xe9.jpg" in msg
    assert "not valid UTF-8" in msg and "rename it" in msg


def _unknown_name_cases():
    from leukcore.transforms import list_presets, make_augment
    from leukcore.runs.protocols import get_experiment, list_experiments, list_papers
    from leukcore.engine import list_classifiers, make_classifier
    from leukcore.losses import list_losses, make_loss
    from leukcore.models import create_model, list_models
    from leukcore.runs.profiles import get_profile, list_profiles
    from leukcore.engine import OPTIMIZERS, TrainConfig

    return {
        "dataset": (lambda: D.load_dataset("no-such-dataset"), D.list_datasets()),
        "model": (lambda: create_model("no-such-model"), list_models()),
        "loss": (lambda: make_loss("no-such-loss"), list_losses()),
        "profile": (lambda: get_profile("no-such-profile"), list_profiles()),
        "augmentation": (lambda: make_augment("no-such-preset"), list_presets()),
        "optimizer": (lambda: TrainConfig(optimizer="no-such-optimizer"), list(OPTIMIZERS)),
        "classifier": (lambda: make_classifier("no-such-classifier"), [str(c) for c in list_classifiers()]),
        "paper": (lambda: list_experiments("no-such-paper"), list_papers()),
        "experiment": (lambda: get_experiment(PAPER, "no-such-experiment"),
                       [e.id for e in list_experiments(PAPER)]),
        "on_bad": (lambda: D.load_images(pd.DataFrame(columns=["id", "path", "sha256"]), 8, on_bad="ignore"),
                   ["raise", "skip"]),
    }


@pytest.mark.parametrize("what", ["dataset", "model", "loss", "profile", "augmentation", "optimizer", "classifier",
                                  "paper", "experiment", "on_bad"])
def test_unknown_names(what):
    call, valid = _unknown_name_cases()[what]
    assert valid
    with pytest.raises(ValueError) as e:
        call()
    msg = str(e.value)
    assert "unknown" in msg and ("no-such" in msg or "'ignore'" in msg)  # names the bad setting
    missing = [v for v in valid if v not in msg]
    assert not missing, f"{what}: message {msg!r} does not list {missing}"


# ---------------------------------------------------------------------------------------------- smoke runs


def _smoke(data_root, results, **kw) -> dict:
    from leukcore.runs.experiments import run_experiment

    return run_experiment(PAPER, EXPERIMENT, "smoke", data_root=str(data_root), device="cpu", seed=0,
                          results_dir=str(results), **kw)


@pytest.fixture(scope="module")
def smoke_pair(env):
    """The same smoke experiment run twice (same seed) into two results folders."""
    data = env / "data"
    _tree(data, n=6, size=32)
    a = _smoke(data, env / "results-a")
    b = _smoke(data, env / "results-b")
    return data, a, b


def test_same_seed_same_smoke_results(smoke_pair):
    from leukcore.runs.records import read_predictions

    _, a, b = smoke_pair
    assert a["status"] == b["status"] == "complete" and a["_path"] != b["_path"]
    for k in ("metrics", "intervals", "settings_hash", "split", "dataset", "skipped", "params_trainable"):
        assert a[k] == b[k], k
    strip = lambda h: [[{k: v for k, v in e.items() if k != "seconds"} for e in fold] for fold in h]  # noqa: E731
    assert strip(a["history"]) == strip(b["history"])
    pa, pb = read_predictions(a), read_predictions(b)
    assert len(pa) == a["dataset"]["n_images"] // 2 and list(pa.columns[:2]) == ["id", "y_true"]
    pd.testing.assert_frame_equal(pa, pb, check_exact=True)
    assert a["predictions"] == b["predictions"]  # named by their hash: byte-identical files


@pytest.fixture(scope="module")
def skip_run(env, smoke_pair):
    """A smoke run on a tree with a truncated and an empty file, on_bad='skip', fake Kaggle credentials set."""
    data = env / "data-bad"
    ds = _tree(data, n=6, size=32)
    trunc = ds / "Original" / "Benign" / "WBC-Benign-002.jpg"
    trunc.write_bytes(trunc.read_bytes()[:200])
    (ds / "Original" / "Pro" / "WBC-Malignant-Pro-003.jpg").write_bytes(b"")
    mp = pytest.MonkeyPatch()
    mp.setenv("KAGGLE_USERNAME", FAKE_USER)
    mp.setenv("KAGGLE_KEY", FAKE_KEY)
    out, err = sys.stdout, sys.stderr
    cap_out, cap_err = io.StringIO(), io.StringIO()
    sys.stdout, sys.stderr = cap_out, cap_err
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            rec = _smoke(data, env / "results-skip", on_bad="skip", progress=True)
    finally:
        sys.stdout, sys.stderr = out, err
        mp.undo()
    logs = cap_out.getvalue() + cap_err.getvalue() + "\n".join(str(m.message) for m in w)
    return data, rec, logs


def test_on_bad_skip_lists_every_skipped_file_in_the_record(skip_run):
    from leukcore.runs.records import load_records

    _, rec, _ = skip_run
    want = {"Original/Benign/WBC-Benign-002.jpg": "truncated image",
            "Original/Pro/WBC-Malignant-Pro-003.jpg": "empty file (0 bytes)"}
    assert {s["id"]: s["reason"] for s in rec["skipped"]} == want
    on_disk = load_records(PAPER, "smoke", root=Path(rec["_path"]).parents[2])
    assert [r["skipped"] for r in on_disk] == [rec["skipped"]]
    from leukcore.runs.records import read_predictions

    assert not set(want) & set(read_predictions(rec)["id"])  # and they were really left out


def test_on_bad_raise_is_the_default_and_never_reuses_a_skip_record(skip_run):
    from leukcore.runs.experiments import get_or_run

    data, rec, _ = skip_run
    results = Path(rec["_path"]).parents[2]
    with pytest.raises(BadImageError) as e:  # default policy, even though a complete skip record exists
        get_or_run(PAPER, EXPERIMENT, "smoke", data_root=str(data), device="cpu", seed=0, results_dir=str(results))
    msg = str(e.value)
    assert "WBC-Benign-002.jpg" in msg and "truncated image" in msg and "on_bad='skip'" in msg
    again = get_or_run(PAPER, EXPERIMENT, "smoke", data_root=str(data), device="cpu", seed=0,
                       results_dir=str(results), on_bad="skip")
    assert again["written_at"] == rec["written_at"]  # reused, not rerun


# ---------------------------------------------------------------------------------------------- 2. interrupted runs

_KILL_SCRIPT = r'''
"""Tiny fit for the SIGKILL test: importable (setup) and runnable (train until told to stop)."""
import sys, time
import numpy as np
import torch

N_TRAIN, BATCH = 48, 8

def setup():
    from leukcore.models import create_model
    from leukcore.engine import TrainConfig
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 4, 64)
    torch.manual_seed(0)
    model = create_model("dscnet", num_classes=4, widths=(4, 4, 8, 8, 8, 8), fc_units=(16, 8), batch_norm=True)
    cfg = TrainConfig(epochs=4, batch_size=BATCH, lr=1e-3, augment="alnet", loss="mce", seed=0, device="cpu",
                      num_threads=1, progress=False)
    return model, (x[:48], y[:48]), (x[48:56], y[48:56]), (x[56:], y[56:], [f"t{i}" for i in range(8)]), cfg

if __name__ == "__main__":
    from leukcore.engine import fit
    ckpt, stop_epoch, stop_batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    model, tr, va, te, cfg = setup()
    steps = {"n": 0}
    def hook(module, inputs):
        if module.training:
            epoch, batch = divmod(steps["n"], N_TRAIN // BATCH)
            steps["n"] += 1
            if (epoch, batch) == (stop_epoch, stop_batch):
                print(f"MID-EPOCH {epoch} {batch}", flush=True)
                time.sleep(600)
    model.register_forward_pre_hook(hook)
    fit(model, tr, va, te, config=cfg, checkpoint_dir=ckpt, resume=True)
    print("FINISHED", flush=True)
'''


def _load_script(path: Path):
    spec = importlib.util.spec_from_file_location("leukcore_kill_script", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    import torch

    from leukcore.engine import CHECKPOINT_NAME, fit, load_checkpoint

    script = tmp_path / "kill_fit.py"
    script.write_text(_KILL_SCRIPT)
    ckpt = tmp_path / "ckpt"
    envv = {**os.environ, "LEUKCORE_CACHE": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    # block in the forward pass of epoch 3 (0-based 2), batch 4: two epochs checkpointed, the third half done
    proc = subprocess.Popen([sys.executable, str(script), str(ckpt), "2", "3"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=envv)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout], daemon=True).start()
    seen = []
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            except queue.Empty:
                pytest.fail(f"training subprocess never reached mid-epoch; output: {''.join(seen)[-2000:]}")
            seen.append(line)
            if line.startswith("MID-EPOCH"):
                break
            assert proc.poll() is None, f"training subprocess exited early: {''.join(seen)[-2000:]}"
        ck = load_checkpoint(ckpt / CHECKPOINT_NAME)
        assert ck["epoch"] == 2 and len(ck["history"]) == 2  # the first checkpoints appeared, the third did not
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "FINISHED" not in "".join(seen)
    assert [p.name for p in ckpt.iterdir()] == [CHECKPOINT_NAME]  # no half-written temporary file was kept

    mod = _load_script(script)
    model, tr, va, te, cfg = mod.setup()
    resumed = fit(model, tr, va, te, config=cfg, checkpoint_dir=ckpt, resume=True)
    assert resumed.resumed_from_epoch == 2
    ref_model, tr, va, te, cfg = mod.setup()
    ref = fit(ref_model, tr, va, te, config=cfg)
    assert ref.resumed_from_epoch == 0
    keys = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr")
    assert [{k: h[k] for k in keys} for h in resumed.history] == [{k: h[k] for k in keys} for h in ref.history]
    np.testing.assert_array_equal(resumed.test_prob, ref.test_prob)
    sd, ref_sd = model.state_dict(), ref_model.state_dict()
    assert sd.keys() == ref_sd.keys() and all(torch.equal(sd[k], ref_sd[k]) for k in sd)


def _record(status: str = "complete", accuracy: float = 0.5) -> dict:
    return {"status": status, "paper": PAPER, "experiment": EXPERIMENT, "profile": "smoke", "seed": 0,
            "settings_hash": "0" * 12, "dataset": {"id": "taleqani-all", "is_papers": True, "fingerprint": "f" * 16},
            "class_names": ["Benign", "Early", "Pre", "Pro"], "metrics": {"accuracy": accuracy}, "intervals": {},
            "skipped": []}


def test_record_write_is_atomic(tmp_path, monkeypatch):
    from leukcore.runs.records import read_predictions, read_record, write_record

    old_preds = pd.DataFrame({"id": ["a", "b"], "y_true": [0, 1], "p_0": [0.9, 0.2], "p_1": [0.1, 0.8]})
    path = write_record(_record(accuracy=0.5), predictions=old_preds, root=tmp_path)
    before = {p.name: p.read_bytes() for p in path.parent.iterdir()}
    new_preds = old_preds.assign(p_0=[0.4, 0.4], p_1=[0.6, 0.6])
    real_replace = os.replace

    def crash_on(pattern):
        def replace(src, dst):
            if re.search(pattern, str(dst)):
                raise OSError("simulated crash between write and rename")
            return real_replace(src, dst)
        return replace

    for pattern, what in ((r".", "every rename"), (r"\.json$", "the record's rename, after the predictions'")):
        monkeypatch.setattr(os, "replace", crash_on(pattern))
        with pytest.raises(OSError, match="simulated crash"):
            write_record(_record(accuracy=0.99), predictions=new_preds, root=tmp_path)
        monkeypatch.setattr(os, "replace", real_replace)
        rec = read_record(path)
        assert rec["metrics"]["accuracy"] == 0.5, what  # the old record, intact
        pd.testing.assert_frame_equal(read_predictions(rec), old_preds)  # with its own predictions
        assert not [p.name for p in path.parent.iterdir() if ".tmp" in p.name], what  # no temporary left over
        for p in path.parent.iterdir():  # nothing the old record uses was touched
            if p.name in before:
                assert p.read_bytes() == before[p.name]
    # a crash while writing the bytes (before any rename) leaves it intact too
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        write_record(_record(accuracy=0.99), predictions=new_preds, root=tmp_path)
    monkeypatch.undo()
    assert read_record(path)["metrics"]["accuracy"] == 0.5
    # a successful write replaces both and leaves one predictions file
    write_record(_record(accuracy=0.99), predictions=new_preds, root=tmp_path)
    rec = read_record(path)
    assert rec["metrics"]["accuracy"] == 0.99
    pd.testing.assert_frame_equal(read_predictions(rec), new_preds)
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, rec["predictions"]])
    # rewriting a record read back (status change, no new predictions) keeps its predictions and
    # does not store where it was read from
    write_record({**rec, "note": "rewritten"}, root=tmp_path)
    again = read_record(path)
    assert "_path" not in json.loads(path.read_text()) and again["note"] == "rewritten"
    pd.testing.assert_frame_equal(read_predictions(again), new_preds)
    # predictions edited or swapped by hand are refused, naming the file
    Path(path.parent / rec["predictions"]).write_text(old_preds.to_csv(index=False))
    with pytest.raises(ValueError, match=r"predictions do not match their record .*rerun"):
        read_predictions(rec)


def test_incomplete_run_is_never_complete(tmp_path, monkeypatch, smoke_pair):
    from leukcore.runs.records import RecordError, load_records, read_predictions, write_record
    from leukcore.evaluation.verdicts import claims_table

    monkeypatch.setenv("LEUKCORE_RESULTS", str(tmp_path))
    real = {k: v for k, v in smoke_pair[1].items() if k != "_path"}  # a real smoke record (complete)
    preds = read_predictions(smoke_pair[1])
    mine = lambda df: df[df["experiment"] == EXPERIMENT]  # noqa: E731
    assert len(mine(claims_table(PAPER))) >= 1
    # a checkpoint without a record, a record still running (told apart by its status)
    ck = tmp_path / PAPER / "smoke" / "checkpoints" / EXPERIMENT / "fold0" / "last.pt"
    ck.parent.mkdir(parents=True)
    ck.write_bytes(b"checkpoint of an interrupted run")
    write_record({**real, "status": "running"}, predictions=preds, root=tmp_path)
    assert load_records(PAPER) == []
    assert [r["status"] for r in load_records(PAPER, complete_only=False)] == ["running"]
    assert set(mine(claims_table(PAPER))["verdict"]) == {"not run"}
    assert set(claims_table(PAPER).query("experiment == 'vgg16'")["verdict"]) == {"not run"}
    # a damaged record (writes are atomic: never a half-written one) is not taken for a missing run
    bad = tmp_path / PAPER / "smoke" / "vgg16.json"
    bad.write_text('{"status": "complete", "paper": "dscnet_vij')
    with pytest.raises(RecordError, match=r"vgg16\.json: not a valid run record .*delete it and rerun"):
        claims_table(PAPER)
    bad.unlink()
    # control: the same record, complete, is rendered (with its provenance)
    write_record(real, predictions=preds, root=tmp_path)
    df = mine(claims_table(PAPER))
    rendered = df[(df["verdict"] != "not run") & df["metric"].isin(["accuracy", "sensitivity", "precision", "f1"])]
    assert len(rendered) and set(rendered["profile"]) == {"smoke"} and rendered["measured"].notna().all()


def test_incomplete_record_passed_explicitly_is_not_rendered(tmp_path, smoke_pair):
    from leukcore.runs.records import load_records, read_predictions, write_record
    from leukcore.evaluation.verdicts import claims_table

    real = {k: v for k, v in smoke_pair[1].items() if k != "_path"}
    write_record({**real, "status": "running"}, predictions=read_predictions(smoke_pair[1]), root=tmp_path)
    recs = load_records(PAPER, root=tmp_path, complete_only=False)
    df = claims_table(PAPER, records=recs)
    assert set(df[df["experiment"] == EXPERIMENT]["verdict"]) == {"not run"}


# ---------------------------------------------------------------------------------------------- 4. safe loading


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def test_every_torch_load_is_weights_only():
    files = sorted((PROJECT / "leukcore").rglob("*.py"))
    torch_loads, bad = [], []
    for f in files:
        tree = ast.parse(f.read_text(), str(f))
        for call in _calls(tree):
            name = _dotted(call.func)
            kw = {k.arg: k.value for k in call.keywords}
            where = f"{f.relative_to(PROJECT)}:{call.lineno} {name}"
            if name in ("torch.load", "torch.hub.load_state_dict_from_url"):
                torch_loads.append(where)
                v = kw.get("weights_only")
                if not (isinstance(v, ast.Constant) and v.value is True):
                    bad.append(f"{where}: pass weights_only=True")
            elif name in ("np.load", "numpy.load"):
                v = kw.get("allow_pickle")
                if v is not None and not (isinstance(v, ast.Constant) and v.value is False):
                    bad.append(f"{where}: allow_pickle must stay False")
            elif name in ("pickle.load", "pickle.loads", "joblib.load", "dill.load", "yaml.unsafe_load",
                          "cloudpickle.load"):
                bad.append(f"{where}: unpickles arbitrary objects")
    assert torch_loads, "no torch.load found: the scan is broken"
    assert not bad, "\n".join(bad)


class _Evil:
    """Unpickling this object would create a marker file (a stand-in for running any code)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_bomb_is_refused(tmp_path):
    import torch

    from leukcore.models import create_model
    from leukcore.engine import CHECKPOINT_NAME, TrainConfig, fit, load_checkpoint

    marker = tmp_path / "pwned"
    evil = tmp_path / "ckpt" / CHECKPOINT_NAME
    evil.parent.mkdir()
    torch.save({"format": "leukcore.train/1", "epoch": 1, "model": _Evil(marker)}, evil)
    weights = tmp_path / "weights.pt"
    torch.save({"conv.weight": torch.zeros(1), "payload": _Evil(marker)}, weights)

    refused = r"refused: it holds pickled Python objects that could run code when loaded \(.*Unsupported global"
    with pytest.raises(ValueError, match=re.escape(str(evil)) + ": " + refused + r".*delete it and train again"):
        load_checkpoint(evil)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8), np.array([0, 1, 0, 1])
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16 * 16 * 3, 2))
    with pytest.raises(ValueError, match=refused):  # resuming from a poisoned checkpoint
        fit(model, (x, y), config=TrainConfig(epochs=1, device="cpu", progress=False), checkpoint_dir=evil.parent,
            resume=True)
    with pytest.raises(ValueError, match=re.escape(str(weights)) + ": " + refused + r".*plain state dict"):
        create_model("dscnet", num_classes=4, weights=str(weights))
    assert not marker.exists(), "unpickling ran code"
    # the control: the same object loaded without weights_only does run code (so the test is real)
    torch.load(weights, weights_only=False)
    assert marker.exists()


_NO_NETWORK = r'''
import importlib, json, pkgutil, socket, sys
attempts = []
def deny(name):
    def f(*a, **k):
        attempts.append([name, repr(a)[:200]])
        raise OSError(f"network disabled by the test ({name})")
    return f
class NoSocket(socket.socket):
    def __init__(self, *a, **k):
        attempts.append(["socket.socket", repr(a)[:200]])
        raise OSError("network disabled by the test (socket.socket)")
socket.socket = NoSocket
for name in ("create_connection", "getaddrinfo", "gethostbyname", "socketpair"):
    setattr(socket, name, deny(name))
import leukcore
mods = ["leukcore"] + sorted(f"leukcore.{m.name}" for m in pkgutil.iter_modules(leukcore.__path__))
failed = {}
for m in mods:
    try:
        importlib.import_module(m)
    except Exception as e:
        failed[m] = f"{type(e).__name__}: {e}"
print("RESULT " + json.dumps({"attempts": attempts, "modules": mods, "failed": failed}))
'''


def test_no_network_at_import(tmp_path):
    envv = {**os.environ, "LEUKCORE_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", _NO_NETWORK], capture_output=True, text=True, timeout=300,
                         env=envv, cwd=tmp_path)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    assert line, out.stdout[-2000:] + out.stderr[-2000:]
    res = json.loads(line[-1][len("RESULT "):])
    expected = {f"leukcore.{p.stem}" for p in (PROJECT / "leukcore").glob("*.py") if p.stem != "__init__"}
    assert expected <= set(res["modules"])
    assert not res["failed"], res["failed"]
    assert res["attempts"] == [], f"network access at import: {res['attempts']}"


def _grep_tree(root: Path, needles: tuple[str, ...]) -> list[str]:
    hits = []
    for p in root.rglob("*"):
        if p.is_file():
            b = p.read_bytes()
            hits += [f"{p}: {n[:6]}..." for n in needles if n.encode() in b]
    return hits


def test_kaggle_credentials_never_leak(tmp_path, monkeypatch, capfd, skip_run, env):
    real_key = os.environ.get("KAGGLE_KEY")
    monkeypatch.setenv("KAGGLE_USERNAME", FAKE_USER)
    monkeypatch.setenv("KAGGLE_KEY", FAKE_KEY)
    needles = (FAKE_USER, FAKE_KEY)

    # a downloader (the real kagglehub path, faked offline) that fails and echoes the credentials
    def failing_download(handle, *a, **k):
        raise RuntimeError(f"401 Unauthorized for {handle}: user={FAKE_USER} key={FAKE_KEY}")

    monkeypatch.setitem(sys.modules, "kagglehub", types.SimpleNamespace(dataset_download=failing_download))
    with pytest.raises(DataError) as e:
        D.fetch_dataset("taleqani-all", tmp_path / "dl")
    msg = str(e.value)
    assert "download of mehradaria/leukemia failed" in msg and "Download it by hand" in msg  # what to do
    assert FAKE_USER not in msg and FAKE_KEY not in msg and "***" in msg
    assert e.value.__suppress_context__  # the original error (with the key) is not chained into tracebacks
    out, err = capfd.readouterr()
    assert not [n for n in needles if n in out + err]
    assert not (tmp_path / "dl").exists() or not _grep_tree(tmp_path / "dl", needles)

    # a whole smoke run with the credentials set: nothing in its output, record, predictions, cache
    _, rec, logs = skip_run
    assert "epoch 1/1" in logs  # the captured output is the run's (its progress bar)
    assert not [n for n in needles if n in logs]
    assert not _grep_tree(Path(rec["_path"]).parents[2], needles)
    assert not _grep_tree(env, needles)  # data, cache, every results folder of this module
    # committed notebooks and run pages
    pages = list((PROJECT / "notebooks").glob("*.ipynb")) + list((PROJECT / "book" / "runs").glob("*.ipynb"))
    leaked = [f"{p.name}: KAGGLE_KEY value" for p in pages
              if re.search(r"KAGGLE_KEY\W{1,6}[0-9a-f]{32}", p.read_text(errors="replace"))]
    if real_key:
        leaked += [p.name for p in pages if real_key in p.read_text(errors="replace")]
    assert not leaked, leaked


_MACHINE_PATHS = (str(PROJECT), "/root", "/home/", "/tmp/")


def _absolute_paths_in(path: Path) -> list[str]:
    text = path.read_text(errors="replace")
    return [f"{path.relative_to(PROJECT) if PROJECT in path.parents else path}: {m}"
            for m in _MACHINE_PATHS if m in text]


def test_no_absolute_paths_in_notebooks_pages_or_records(skip_run, smoke_pair):
    notebooks = sorted((PROJECT / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks found under notebooks/"
    hits = [h for nb in notebooks for h in _absolute_paths_in(nb)]
    assert not hits, "absolute machine paths in committed notebooks (scrub with leukcore.book.runner.scrub_paths):\n" + \
        "\n".join(hits)
    # run records and predictions carry ids relative to the dataset root, never the machine's paths
    for rec in (skip_run[1], smoke_pair[1]):
        folder = Path(rec["_path"]).parent
        for f in [Path(rec["_path"]), folder / rec["predictions"]]:
            text = f.read_text()
            assert str(folder.parents[2]) not in text and str(PROJECT) not in text and "/tmp/" not in text, f


def test_no_absolute_paths_in_run_pages():
    pages = sorted((PROJECT / "book" / "runs").glob("*.ipynb"))
    if not pages:
        pytest.skip("book/runs/ has no executed run pages yet (leukcore reproduce writes them)")
    hits = [h for p in pages for h in _absolute_paths_in(p)]
    assert not hits, "absolute machine paths in run pages:\n" + "\n".join(hits)


def test_scrub_paths_removes_this_machines_paths():
    from leukcore.book.runner import machine_paths, scrub_paths

    data_root, results = "/tmp/some/data", "/tmp/some/results"
    nb = {"cells": [{"source": [f"root = '{data_root}/taleqani-all'\n"],
                     "outputs": [{"text": f"leukcore: taleqani-all from {data_root}/taleqani-all\n"
                                          f"wrote {results}/x.json; {PROJECT}/leukcore/data.py\n"}]}],
          "metadata": {"papermill": {"input_path": str(PROJECT / "notebooks" / "x.ipynb"),
                                     "home": str(Path.home())}}}
    text = json.dumps(scrub_paths(nb, machine_paths(data_root, results)))
    assert data_root not in text and results not in text and str(PROJECT) not in text
    assert str(Path.home()) + "/" not in text
    assert "<data_root>/taleqani-all" in text and "<results>/x.json" in text and "<project>/leukcore" in text

"""``leukcore bench``: how fast the study's data path, training steps and whole reproduction are.

Three measurements, each against the plain alternative, written to ``results/bench/latest.json``
and rendered on the book's performance page (:func:`bench_markdown`), which is where the figures
and what they taught live:

- data path (:func:`bench_data_path`): one epoch of augmented, normalised batches the way
  :func:`leukcore.engine.fit` makes them, against a PIL + torchvision ``DataLoader``;
- training step (:func:`bench_train_step`): ``fit``'s steps against a plain fp32 eager loop;
- whole study (:func:`bench_study`): the smoke reproduction and the book build, in a subprocess
  on temporary copies, plus the ``wall_time_s`` of the recorded ``cpu``-profile runs.

Medians over interleaved repetitions after a warm-up; the load average is recorded, and a shared
machine is said so.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .files import PROJECT_ROOT, atomic_write_text

BENCH_FORMAT = "leukcore.bench/1"
DATASET = "taleqani-all"
IMAGE_SIZE = 224
BATCH_SIZE = 32
AUGMENT_PRESET = "dscnet"
#: torchvision v1 equivalents of the ``dscnet`` preset of :mod:`leukcore.transforms`
NAIVE_AUGMENT = dict(crop_scale=(0.7, 1.0), crop_ratio=(3 / 4, 4 / 3), hflip=0.5, vflip=0.5, rotation=20.0,
                     brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02)
TRAIN_MODELS = (("alnet", 224), ("dscnet", None))  # None: the model's paper input size
QUICK_TRAIN_MODELS = (("alnet", 136), ("dscnet", 64))  # alnet's smallest side is 136
#: targets of issue 7
TARGET_DATA_RATIO = 10.0
TARGET_TRAIN_RATIO_CPU = 1.0
TARGET_TRAIN_RATIO_GPU = 3.0
TARGET_STUDY_S = 300.0
#: dense bf16 tensor-core peaks (FLOP/s) by GPU name fragment, most specific first
GPU_PEAK_BF16 = (("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989.4e12), ("H200", 989.4e12),
                 ("GH200", 989.4e12), ("B200", 2250e12), ("A100", 312e12), ("L40S", 362e12),
                 ("A10G", 70e12), ("L4", 121e12), ("V100", 125e12))


def default_out(quick: bool = False) -> Path:
    """``<results>/bench/latest.json`` (``quick.json`` for ``--quick``, so a CI run never
    replaces the record the book shows)."""
    from .runs.records import results_dir

    return results_dir() / "bench" / ("quick.json" if quick else "latest.json")


# ============================================================================ statistics, load
def summarize(seconds: Sequence[float], items: float | None = None) -> dict:
    """Median, min, max and quartiles of repeated timings; with ``items`` (images per
    repetition) also ``images_per_s = items / median`` and its range ``items / max .. items / min``."""
    s = np.asarray(list(seconds), dtype=float)
    out = {"n": int(s.size), "median_s": float(np.median(s)), "min_s": float(s.min()), "max_s": float(s.max()),
           "q1_s": float(np.percentile(s, 25)), "q3_s": float(np.percentile(s, 75)),
           "values_s": [round(float(v), 6) for v in s]}
    if items is not None:
        out["items"] = float(items)
        out["images_per_s"] = items / out["median_s"]
        out["images_per_s_min"] = items / out["max_s"]
        out["images_per_s_max"] = items / out["min_s"]
    return out


class LoadMonitor:
    """Samples the 1-minute load average; ``shared`` when it exceeded the core count."""

    def __init__(self):
        self.samples: list[tuple[str, float]] = []
        self.cores = os.cpu_count() or 1
        self.sample("start")

    def sample(self, label: str) -> float:
        """Record the current 1-minute load average under ``label``; return it."""
        try:
            la = os.getloadavg()[0]
        except OSError:
            la = float("nan")
        self.samples.append((label, round(la, 2)))
        return la

    def summary(self) -> dict:
        vals = [v for _, v in self.samples if v == v]
        mx = max(vals) if vals else None
        shared = bool(mx is not None and mx > self.cores)
        return {"cores": self.cores, "max_load1": mx, "samples": [{"at": k, "load1": v} for k, v in self.samples],
                "shared": shared,
                "note": (f"machine shared: the 1-minute load average reached {mx:.1f} on {self.cores} cores; "
                         "wall-clock figures are pessimistic, CPU-time figures less so") if shared else
                        f"load average stayed at or below the {self.cores} cores"}


def _cpu_now() -> float:
    """CPU seconds of this process (all threads) plus its terminated, waited-for children."""
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime


def machine_info(device: str = "cpu") -> dict:
    """CPU model, cores, torch / torchvision versions, threads, the device, Python, OS."""
    import torch

    from .runs.records import cpu_model, device_description

    cpu = cpu_model()
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch": str(torch.__version__),
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "platform": platform.platform(), "device": device_description(device),
            "cuda_available": bool(torch.cuda.is_available())}
    try:
        import torchvision

        info["torchvision"] = str(torchvision.__version__)
    except ImportError:
        pass
    try:
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_peak_bf16_flops"] = gpu_peak_bf16(info["gpu"])
        info["cuda"] = str(torch.version.cuda)
        info["tf32"] = {"cudnn_conv": bool(torch.backends.cudnn.allow_tf32),
                        "matmul": bool(torch.backends.cuda.matmul.allow_tf32)}
        if str(device).startswith("cuda"):
            try:
                info["gpu_bf16_matmul_flops_measured"] = measured_bf16_matmul_rate()
            except Exception as e:  # noqa: BLE001 - an extra
                info["gpu_bf16_matmul_error"] = f"{type(e).__name__}: {e}"
    return info


def measured_bf16_matmul_rate(n: int = 8192, reps: int = 20) -> float:
    """FLOP/s of an ``n``x``n``x``n`` bf16 matrix product on the GPU (random operands, median of
    ``reps`` products timed with CUDA events after 3 warm-ups): the ceiling the training-step
    rates are compared with, besides the datasheet peak."""
    import torch

    g = torch.Generator(device="cuda").manual_seed(0)
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16, generator=g)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16, generator=g)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(reps):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        a @ b
        e1.record()
        e1.synchronize()
        times.append(e0.elapsed_time(e1) / 1e3)
    del a, b
    torch.cuda.empty_cache()
    return 2.0 * n ** 3 / float(np.median(times))


def gpu_peak_bf16(name: str) -> float | None:
    """Dense bf16 tensor-core peak (FLOP/s) of a GPU from its name (vendor figures), or None."""
    for frag, peak in GPU_PEAK_BF16:
        if frag.lower() in name.lower():
            return peak
    return None


# ============================================================================ data path
def bench_table(quick: bool = False, n_images: int | None = None, *, seed: int = 0):
    """The ``taleqani-all`` table (``Original``), else the synthetic stand-in; with a note.

    ``n_images`` (or ``quick``: 32) keeps a stratified, seeded subset.
    """
    from .data import DataError, load_dataset

    try:
        table = load_dataset(DATASET, verbose=False)
        real, note = True, f"{DATASET} (Original), real images"
    except DataError:
        per_class = 16 if quick else 200
        table = load_dataset("synthetic", layout="taleqani", n_per_class=per_class, size=IMAGE_SIZE, seed=seed)
        real = False
        note = (f"synthetic stand-in for {DATASET} ({per_class} images per class, {IMAGE_SIZE}x{IMAGE_SIZE} JPEG): "
                "the real data were not found")
    n = 32 if (quick and n_images is None) else n_images
    if n is not None and n < len(table):
        rng = np.random.default_rng(seed)
        frac = n / len(table)
        keep = []
        for _, g in table.groupby("label", sort=True):
            k = max(1, int(round(len(g) * frac)))
            keep.extend(rng.choice(g.index.to_numpy(), size=min(k, len(g)), replace=False).tolist())
        attrs = dict(table.attrs)
        table = table.loc[sorted(keep)].reset_index(drop=True)
        table.attrs = attrs
    return table, real, note


def to_uint8_tensor(images: np.ndarray):
    """uint8 NHWC numpy (as :func:`leukcore.data.load_images` returns) -> one uint8 NCHW tensor
    (what :func:`leukcore.engine.fit` holds)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()


def leukcore_batches(x, y, *, batch_size: int = BATCH_SIZE, augment: str | Any = AUGMENT_PRESET,
                     mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), seed: int = 0, shuffle: bool = True,
                     device: str = "cpu", channels_last: bool | None = None,
                     backend: str = "auto") -> Iterator[tuple]:
    """One epoch of leukcore's training batches, made as :func:`leukcore.engine.fit` makes them.

    ``x``: the uint8 split as fit takes it (numpy NHWC, as :func:`leukcore.data.load_images`
    returns, or a torch NCHW tensor), held in memory the way fit holds it (fit's own helpers:
    NHWC storage, each batch an NCHW view in channels-last format); ``y``: labels. A permutation
    is drawn from ``torch.Generator().manual_seed(seed)`` (``shuffle=False``: the stored order),
    each batch is gathered as fit gathers it, then augmented with the preset (generator seeded ``seed + 1``) and
    normalised ``(x / 255 - mean) / std`` in the same pass; the identity preset only normalises.
    ``channels_last``: fit's default (:class:`leukcore.engine.TrainConfig`) when ``None``;
    ``backend``: the augmentation backend (``auto``, fit's: OpenCV on the CPU, torch on a GPU).
    Yields ``(float32 NCHW batch, int64 labels, indices)``.
    """
    import torch

    from . import engine as T
    from .transforms import make_augment

    dev = torch.device(device)
    if channels_last is None:
        channels_last = T.TrainConfig().channels_last
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    xs = T.as_nhwc_uint8(x, "x").to(dev)
    aug = make_augment(augment, backend=backend)
    yd = torch.as_tensor(np.array(y, dtype=np.int64)).to(dev)
    n = xs.shape[0]
    g_shuffle = torch.Generator().manual_seed(seed)
    g_aug = torch.Generator().manual_seed(seed + 1)
    perm = torch.randperm(n, generator=g_shuffle) if shuffle else torch.arange(n)
    perm_d = perm.to(dev)
    norm = T.Normalizer(mean, std)
    for s, e in T.batch_bounds(n, batch_size):
        idx = perm_d[s:e]
        xb = T.nchw(T.take(xs, idx), channels_last)
        yb = yd.index_select(0, idx)
        if aug.identity:
            xb = norm.from_uint8(xb)
        else:
            xb = aug(xb, generator=g_aug, mean=mean, std=std)
        yield xb.contiguous(memory_format=fmt), yb, perm[s:e]


class NaiveDataset:
    """The per-sample pipeline of most published code: ``PIL.Image.open`` + a torchvision
    (v1) transform per ``__getitem__``; returns ``(tensor, label)``."""

    def __init__(self, paths: Sequence[str], labels: Sequence[int], transform: Callable):
        self.paths = list(paths)
        self.labels = [int(v) for v in labels]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from PIL import Image

        with Image.open(self.paths[i]) as im:
            img = im.convert("RGB")
        return self.transform(img), self.labels[i]


def naive_transform(size: int = IMAGE_SIZE, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), augment: bool = True):
    """torchvision v1 transforms with the ``dscnet`` preset's parameters (:data:`NAIVE_AUGMENT`):
    RandomResizedCrop, h/v flips, RandomRotation, ColorJitter, ToTensor, Normalize; without
    ``augment``: Resize (a no-op at the native size), ToTensor, Normalize."""
    import torchvision.transforms as T

    a = NAIVE_AUGMENT
    if not augment:
        return T.Compose([T.Resize((size, size)), T.ToTensor(), T.Normalize(mean, std)])
    return T.Compose([
        T.RandomResizedCrop(size, scale=a["crop_scale"], ratio=a["crop_ratio"]),
        T.RandomHorizontalFlip(a["hflip"]),
        T.RandomVerticalFlip(a["vflip"]),
        T.RandomRotation(a["rotation"]),
        T.ColorJitter(a["brightness"], a["contrast"], a["saturation"], a["hue"]),
        T.ToTensor(),
        T.Normalize(mean, std),
    ])


def naive_loader(paths, labels, *, batch_size: int = BATCH_SIZE, num_workers: int = 2, augment: bool = True,
                 mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), size: int = IMAGE_SIZE, seed: int = 0,
                 shuffle: bool = True):
    """The naive ``DataLoader``: :class:`NaiveDataset` + :func:`naive_transform`, ``num_workers``
    processes (started per epoch, the default), a ``RandomSampler`` drawing its permutation from
    ``torch.Generator().manual_seed(seed)`` (the same permutation as :func:`leukcore_batches`),
    or sequential order without ``shuffle``."""
    import torch
    from torch.utils.data import DataLoader, RandomSampler, SequentialSampler

    ds = NaiveDataset(paths, labels, naive_transform(size, mean, std, augment))
    # the sampler owns its generator: the loader's own draws (worker base seed) do not move it
    sampler = RandomSampler(ds, generator=torch.Generator().manual_seed(seed)) if shuffle else SequentialSampler(ds)
    return DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=num_workers)


def _time_interleaved(variants: dict[str, tuple[Callable[[], Any], Callable[[], Any] | None]], reps: int,
                      load: LoadMonitor | None = None) -> dict[str, dict]:
    """Time ``variants`` (name -> ``(run, warmup)``; ``run()`` returns the images it delivered, or
    ``(images, seconds)`` when it times itself) after one warm-up each, interleaved: repetition
    ``r`` runs every variant once, so a change of machine load hits all of them alike. Returns,
    per variant, :func:`summarize` of the wall seconds (``images_per_s``) plus ``cpu_s`` and
    ``cpu_ms_per_image`` (this process and its finished worker processes)."""
    for _, warm in variants.values():
        if warm is not None:
            warm()
    wall: dict[str, list] = {k: [] for k in variants}
    cpu: dict[str, list] = {k: [] for k in variants}
    items: dict[str, float] = {}
    for r in range(reps):
        for k, (run, _) in variants.items():
            c0, t0 = _cpu_now(), time.perf_counter()
            got = run()
            dt = time.perf_counter() - t0
            if isinstance(got, tuple):
                got, dt = got
            wall[k].append(dt)
            cpu[k].append(_cpu_now() - c0)
            items[k] = got
        if load is not None:
            load.sample(f"rep {r + 1}: {', '.join(variants)}")
    out = {}
    for k in variants:
        o = summarize(wall[k], items[k])
        o["cpu_s"] = summarize(cpu[k])
        o["cpu_ms_per_image"] = 1000.0 * o["cpu_s"]["median_s"] / max(items[k], 1)
        out[k] = o
    return out


def bench_data_path(*, quick: bool = False, reps: int = 3, batch_size: int = BATCH_SIZE, seed: int = 0,
                    n_images: int | None = None, num_workers: int = 2, devices: Sequence[str] = ("cpu",),
                    load: LoadMonitor | None = None, log: Callable[[str], None] = print) -> dict:
    """Images per second of one epoch of augmented, normalised batches: leukcore vs naive.

    Variants, timed interleaved (:func:`_time_interleaved`): ``leukcore`` (the OpenCV backend
    with the default threads, what :func:`leukcore.engine.fit` uses on the CPU),
    ``leukcore_1thread`` (the same on one torch and one OpenCV thread: the intrinsic CPU cost,
    free of the spin-waiting of idle threads that a busy machine causes), ``leukcore_torch`` (the
    torch backend on the CPU), ``leukcore_cuda`` when a GPU is used, and ``naive``. ``ratio`` is
    ``leukcore`` over ``naive`` (wall clock); ``cpu_ratio`` the naive CPU time per image over
    leukcore's. See the module docstring. Returns the ``data_path`` block of the record.
    """
    import torch

    from .data import ImageCache, load_images

    load = load or LoadMonitor()
    table, real, note = bench_table(quick, n_images, seed=seed)
    n = len(table)
    log(f"data path: {n} images of {note.split(':')[0]}")
    mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)  # dscnet's unit scaling (model_norm_stats)
    block: dict[str, Any] = {"dataset": table.attrs.get("dataset", DATASET), "real_data": real, "note": note,
                             "n_images": n, "image_size": IMAGE_SIZE, "batch_size": batch_size,
                             "augment": AUGMENT_PRESET, "naive_augment": dict(NAIVE_AUGMENT),
                             "naive_workers": num_workers, "reps": reps, "torch_threads": torch.get_num_threads()}

    # --- warm-up: the first decode (a fresh cache), then reading the decoded images back from disk
    with tempfile.TemporaryDirectory(prefix="leukcore-bench-cache-") as tmp:
        t0 = time.perf_counter()
        images, kept = load_images(table, IMAGE_SIZE, cache=ImageCache(tmp, disk=True))
        decode_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_images(table, IMAGE_SIZE, cache=ImageCache(tmp, disk=True))
        disk_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    x = to_uint8_tensor(images)  # the NCHW tensor (timed as the cost of holding the split in memory)
    y = kept["label"].to_numpy()
    tensor_s = time.perf_counter() - t0
    del x
    block["warmup"] = {
        "first_decode_s": decode_s, "first_decode_images_per_s": n / decode_s,
        "from_disk_cache_s": disk_s, "to_tensor_s": tensor_s,
        "tensor_mb": images.nbytes / 2**20,
        "note": "paid once (the decoded cache is kept on disk, ~/.cache/leukcore); excluded from leukcore's "
                "per-epoch figure",
    }
    load.sample("data: after warm-up")

    # the split as fit receives it: the numpy array on the CPU; moved to another device once
    held: dict[str, Any] = {"cpu": images}

    def fast_epoch(device="cpu", limit=None, threads=None, backend="auto"):
        if device not in held:
            held[device] = to_uint8_tensor(images).to(device)
        k = 0
        from .engine import intra_op_threads

        with intra_op_threads(threads):
            for xb, _, _ in leukcore_batches(held[device], y, batch_size=batch_size, mean=mean, std=std,
                                             seed=seed, device=device, backend=backend):
                k += xb.shape[0]
                if limit is not None and k >= limit:
                    break
            if device != "cpu":
                torch.cuda.synchronize()
        return k

    paths, labels = kept["path"].tolist(), y.tolist()

    def naive_epoch(limit=None):
        k = 0
        for xb, _ in naive_loader(paths, labels, batch_size=batch_size, num_workers=num_workers,
                                  mean=mean, std=std, seed=seed):
            k += xb.shape[0]
            if limit is not None and k >= limit:
                break
        return k

    warm = 2 * batch_size
    variants: dict[str, tuple] = {
        "leukcore": (lambda: fast_epoch("cpu"), lambda: fast_epoch("cpu", warm)),
        "leukcore_1thread": (lambda: fast_epoch("cpu", threads=1), lambda: fast_epoch("cpu", warm, 1)),
        "leukcore_torch": (lambda: fast_epoch("cpu", backend="torch"), lambda: fast_epoch("cpu", warm, backend="torch")),
    }
    for dev in devices:
        if dev != "cpu":
            variants[f"leukcore_{dev}"] = (lambda d=dev: fast_epoch(d), lambda d=dev: fast_epoch(d, warm))
    variants["naive"] = (naive_epoch, lambda: naive_epoch(warm))
    runs = _time_interleaved(variants, reps, load)
    for key, r in runs.items():
        r["device"] = key.split("_", 1)[1] if key.startswith("leukcore_") and key not in _CPU_VARIANTS else "cpu"
        r["threads"] = 1 if key == "leukcore_1thread" else (num_workers if key == "naive" else torch.get_num_threads())
        r["backend"] = "naive" if key == "naive" else ("torch" if r["device"] != "cpu" or key == "leukcore_torch"
                                                        else "opencv")
        log(f"  {key:17s} {r['images_per_s']:9.1f} images/s  (epoch {r['median_s']:.2f} s, "
            f"{r['cpu_ms_per_image']:.2f} CPU-ms/image)")
    block.update(runs)
    nv = runs["naive"]
    block["ratio"] = runs["leukcore"]["images_per_s"] / nv["images_per_s"]
    block["ratio_range"] = [runs["leukcore"]["images_per_s_min"] / nv["images_per_s_max"],
                            runs["leukcore"]["images_per_s_max"] / nv["images_per_s_min"]]
    block["cpu_ratio"] = nv["cpu_ms_per_image"] / runs["leukcore"]["cpu_ms_per_image"]
    block["cpu_ratio_1thread"] = nv["cpu_ms_per_image"] / runs["leukcore_1thread"]["cpu_ms_per_image"]
    for key in runs:
        if key.startswith("leukcore_"):
            block[f"ratio_{key[9:]}"] = runs[key]["images_per_s"] / nv["images_per_s"]
    return block


_CPU_VARIANTS = ("leukcore_1thread", "leukcore_torch")


# ============================================================================ training step
def train_flops_per_image(model, size: int, n_classes: int, device: str = "cpu", batch: int = 2) -> float | None:
    """FLOPs of one training step (forward + backward of the cross-entropy) per image, counted by
    ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products)."""
    import torch
    import torch.nn.functional as F

    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:  # pragma: no cover
        return None
    model.train()
    xb = torch.randn(batch, 3, size, size, device=device)
    yb = torch.randint(0, n_classes, (batch,), device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(xb), yb).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch


def _plain_epoch_fn(model, xf, y, *, batch_size: int, lr: float, sync) -> Callable[[], int]:
    """One epoch of the plain fp32 eager loop (float, pre-normalised tensors; forward, loss,
    backward, a fresh Adam per epoch as each :func:`leukcore.engine.fit` call makes)."""
    import torch
    import torch.nn.functional as F

    n = xf.shape[0]

    def epoch():
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-7)
        for s in range(0, n, batch_size):
            xb, yb = xf[s:s + batch_size], y[s:s + batch_size]
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync()
        return n

    return epoch


def _fit_mode(cuda: bool, compile: bool | str, deterministic: bool | None = None) -> str:
    """How :func:`leukcore.engine.fit` runs (its defaults unless said), in words."""
    from .engine import TrainConfig

    f = getattr(TrainConfig, "__dataclass_fields__", {})
    cl = f["channels_last"].default if "channels_last" in f else cuda
    default_det = f["deterministic"].default if "deterministic" in f else None
    det = default_det if deterministic is None else deterministic
    parts = ["bf16 autocast" if cuda else "fp32"] + (["channels-last"] if cl else [])
    parts.append("fused Adam")
    if compile:
        parts.append("torch.compile" + (f" (mode {compile})" if isinstance(compile, str) else ""))
    parts.append("deterministic algorithms" if det else
                 ("non-deterministic, cuDNN autotuning (benchmark mode)" if cuda else "non-deterministic"))
    changed = compile or (deterministic is not None and deterministic != default_det)
    return ("fit: " if changed else "fit defaults: ") + ", ".join(parts)


def bench_train_step(*, quick: bool = False, reps: int = 3, batch_size: int = BATCH_SIZE, steps: int | None = None,
                     device: str = "auto", compile: bool | str = False, deterministic: bool = True, seed: int = 0,
                     models: Sequence[tuple[str, int | None]] | None = None, load: LoadMonitor | None = None,
                     log: Callable[[str], None] = print) -> dict:
    """Images per second of full training steps: :func:`leukcore.engine.fit` vs a plain fp32 loop.

    ``steps`` optimiser steps per repetition (default 3 on the CPU, 30 on CUDA; ``quick``: 2
    steps of 2 images, alnet at 136 and dscnet at 64). A repetition of *leukcore* is one
    :func:`leukcore.engine.fit` call of one epoch of ``steps`` batches, timed by the epoch's own
    ``seconds`` (the training steps; fit's set-up, which moves the data and builds the optimiser
    once per call, is recorded apart as ``fit_call_s``); a repetition of *plain* is one epoch of
    the plain loop. Both run once as a warm-up, then alternate (:func:`_time_interleaved`), so
    a change of machine load hits both alike. ``compile`` (``True`` or a mode) and
    ``deterministic`` are passed to fit's :class:`~leukcore.engine.TrainConfig`. Returns the
    ``train_step`` block of the record.
    """
    import copy

    import torch

    from .models import create_model
    from .engine import TrainConfig, fit, resolve_device

    load = load or LoadMonitor()
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    if quick:  # the plumbing only: small inputs, tiny batches
        batch_size, steps = 2, 2
        models = models or QUICK_TRAIN_MODELS
    models = models or TRAIN_MODELS
    steps = steps or (30 if cuda else 3)
    sync = (lambda: torch.cuda.synchronize(dev)) if cuda else (lambda: None)
    block: dict[str, Any] = {"device": str(dev), "batch_size": batch_size, "steps_per_rep": steps, "reps": reps,
                             "optimizer": "adam (lr 1e-3, betas 0.9/0.999, eps 1e-7)", "loss": "cross-entropy",
                             "leukcore_mode": _fit_mode(cuda, compile, deterministic),
                             "plain_mode": "fp32 eager, pre-normalised float tensors, no DataLoader"
                             + (" (torch defaults: cuDNN convolutions may use TF32)" if cuda and
                                torch.backends.cudnn.allow_tf32 else ""),
                             "models": []}
    peak = gpu_peak_bf16(torch.cuda.get_device_name(dev)) if cuda else None
    for name, size in models:
        torch.manual_seed(seed)
        kw = {"input_size": size} if (name == "alnet" and size) else {}
        base = create_model(name, **kw)
        size = int(size or base.paper_input_size)
        n_classes = int(base.default_cfg["num_classes"])
        mean, std = base.default_cfg["mean"], base.default_cfg["std"]
        n = batch_size * steps
        g = torch.Generator().manual_seed(seed)
        xu8 = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
        y = torch.randint(0, n_classes, (n,), generator=g)
        row: dict[str, Any] = {"model": name, "image_size": size, "num_classes": n_classes,
                               "images_per_rep": n}
        try:
            row["train_flops_per_image"] = train_flops_per_image(copy.deepcopy(base), size, n_classes)
        except Exception as e:  # noqa: BLE001 - the count is an extra
            row["train_flops_per_image"] = None
            row["flops_error"] = f"{type(e).__name__}: {e}"

        # leukcore: one fit call (one epoch, uint8 data) per repetition; its epoch's ``seconds``
        m_lk = copy.deepcopy(base)
        cfg = TrainConfig(epochs=1, batch_size=batch_size, augment="none", progress=False, seed=seed,
                          device=str(dev), compile=compile, deterministic=deterministic, lr=1e-3)
        fit_calls = []

        def lk_epoch(m=m_lk, cfg=cfg, xu8=xu8, y=y, n=n, calls=fit_calls):
            t0 = time.perf_counter()
            res = fit(m, (xu8, y), config=cfg)
            calls.append(time.perf_counter() - t0)
            return n, res.history[0]["seconds"]

        # plain: fp32 eager on pre-normalised float tensors, already on the device
        m_pl = copy.deepcopy(base).to(dev)
        mt = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        st = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        xf = ((xu8.float() / 255.0 - mt) / st).to(dev)
        pl_epoch = _plain_epoch_fn(m_pl, xf, y.to(dev), batch_size=batch_size, lr=1e-3, sync=sync)
        timed = _time_interleaved({"leukcore": (lk_epoch, lk_epoch), "plain": (pl_epoch, pl_epoch)}, reps, load)
        lk, pl = timed["leukcore"], timed["plain"]
        lk["warmup_epoch_s"] = fit_calls[0]
        lk["fit_call_s"] = summarize(fit_calls[1:])
        row["leukcore"], row["plain"] = lk, pl
        del m_lk, m_pl, xf
        row["ratio"] = lk["images_per_s"] / pl["images_per_s"]
        row["ratio_range"] = [lk["images_per_s_min"] / pl["images_per_s_max"],
                              lk["images_per_s_max"] / pl["images_per_s_min"]]
        f = row.get("train_flops_per_image")
        if f:
            row["leukcore_tflops"] = f * lk["images_per_s"] / 1e12
            row["plain_tflops"] = f * pl["images_per_s"] / 1e12
            if peak:
                row["leukcore_peak_fraction"] = f * lk["images_per_s"] / peak
                row["plain_peak_fraction"] = f * pl["images_per_s"] / peak
        log(f"  train {name}@{size}: leukcore {lk['images_per_s']:.1f} images/s, plain {pl['images_per_s']:.1f} "
            f"images/s, ratio {row['ratio']:.2f}")
        block["models"].append(row)
    if peak:
        block["gpu_peak_bf16_flops"] = peak
    return block


# ============================================================================ whole study
_STUDY_CODE = r"""
import json, sys, time
from pathlib import Path
from leukcore.runs.experiments import list_papers
from leukcore.book.runner import reproduce
tmp = Path(sys.argv[1])
t0 = time.perf_counter()
s = reproduce(list_papers(), "smoke", results_dir=str(tmp / "results"), runs_dir=tmp / "book" / "runs",
              progress=False, force=True)
out = {"seconds": time.perf_counter() - t0, "experiments_s": s.grid.wall_time_s,
       "experiments": len(s.grid.records), "failures": {f"{p}/{e}": str(v)[-500:] for (p, e), v in s.grid.failures.items()},
       "notebooks": [{"paper": r.paper, "status": r.status, "seconds": r.seconds, "error": (r.error or "")[-800:] or None}
                     for r in s.runs], "ok": bool(s.ok)}
print("LEUKCORE_BENCH_JSON " + json.dumps(out))
"""

_PAGES_CODE = r"""
import sys
from pathlib import Path
from leukcore.book.pages import build_pages
build_pages(Path(sys.argv[1]))
"""


def _run(cmd: list[str], *, env: dict, cwd: Path, timeout: float) -> tuple[int, float, str]:
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        rc, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out = -9, f"timed out after {timeout:.0f} s: {(e.stdout or '')[-2000:]}"
    return rc, time.perf_counter() - t0, out


def bench_study(*, timeout: float = 3600.0, keep: bool = False, threads: int | None = None,
                log: Callable[[str], None] = print) -> dict:
    """Wall time of the smoke reproduction of every paper plus the book build, in a temporary copy.

    1. ``leukcore.book.runner.reproduce(all papers, "smoke", force=True)`` in a subprocess, with run
       records in ``<tmp>/results`` and executed pages in ``<tmp>/book/runs`` (the ``reproduce``
       command writes pages into the checkout's ``book/runs``; the same function with ``runs_dir``
       keeps the checkout untouched; ``force`` so that every notebook runs even where the copied
       page is of a higher profile);
    2. the book build of ``make book`` on a copy (``book/``, ``_config.yml``, ``_toc.yml``,
       ``notebooks/``): ``leukcore.book.pages.build_pages`` into ``<tmp>/book/_generated`` with
       ``LEUKCORE_RESULTS=<tmp>/results``, then ``jupyter-book build <tmp> --warningiserror
       --keep-going``.
    ``threads``: torch intra-op threads of the subprocesses (``OMP_NUM_THREADS`` and
    ``MKL_NUM_THREADS``, inherited by the notebook kernels); ``None`` leaves torch's default (one
    per core). Returns seconds of each part, the total, and what failed.
    """
    tmp = Path(tempfile.mkdtemp(prefix="leukcore-bench-study-"))
    env = dict(os.environ, LEUKCORE_RESULTS=str(tmp / "results"), PYTHONUNBUFFERED="1")
    if threads:
        env.update(OMP_NUM_THREADS=str(int(threads)), MKL_NUM_THREADS=str(int(threads)))
    out: dict[str, Any] = {"tmp": None if not keep else str(tmp), "threads": int(threads) if threads else "default",
                           "command": "leukcore.book.runner.reproduce(list_papers(), 'smoke', results_dir=<tmp>/results, "
                                      "runs_dir=<tmp>/book/runs, force=True) + build_pages + jupyter-book build"}
    try:
        # the committed run pages come along (pages no notebook makes stay); reproduce(force=True)
        # executes every notebook anew over them, whatever the profile of the committed page
        ign = shutil.ignore_patterns("_generated", "_build", ".ipynb_checkpoints")
        shutil.copytree(PROJECT_ROOT / "book", tmp / "book", ignore=ign)
        for f in ("_config.yml", "_toc.yml"):
            if (PROJECT_ROOT / f).is_file():
                shutil.copy2(PROJECT_ROOT / f, tmp / f)
        if (PROJECT_ROOT / "notebooks").is_dir():
            shutil.copytree(PROJECT_ROOT / "notebooks", tmp / "notebooks",
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        log("study: smoke reproduction of all papers (subprocess) ...")
        rc, secs, text = _run([sys.executable, "-c", _STUDY_CODE, str(tmp)], env=env, cwd=PROJECT_ROOT,
                              timeout=timeout)
        rep = {"rc": rc, "seconds": secs}
        for line in text.splitlines():
            if line.startswith("LEUKCORE_BENCH_JSON "):
                rep.update(json.loads(line.split(" ", 1)[1]))
        if rc != 0 and "ok" not in rep:
            rep["error"] = text[-1500:]
        rep["wall_s"] = secs
        out["reproduce"] = rep
        log(f"  reproduce: {secs:.1f} s (rc {rc})")
        rc, s_pages, text = _run([sys.executable, "-c", _PAGES_CODE, str(tmp / "book" / "_generated")], env=env,
                                 cwd=PROJECT_ROOT, timeout=timeout)
        pages = {"rc": rc, "seconds": s_pages}
        if rc != 0:
            pages["error"] = text[-1500:]
        jb = Path(sys.executable).with_name("jupyter-book")
        jb_cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(tmp), "--warningiserror", "--keep-going"]
        rc, s_jb, text = _run(jb_cmd, env=env, cwd=tmp, timeout=timeout)
        jbr = {"rc": rc, "seconds": s_jb, "warnings": _warnings(text, tmp)}
        if rc != 0:
            jbr["error"] = text[-1500:]
        out["book"] = {"build_pages": pages, "jupyter_book": jbr, "seconds": s_pages + s_jb,
                       "ok": pages["rc"] == 0 and jbr["rc"] == 0}
        log(f"  book build: {s_pages + s_jb:.1f} s (pages rc {pages['rc']}, jupyter-book rc {jbr['rc']})")
        out["total_s"] = out["reproduce"]["wall_s"] + out["book"]["seconds"]
        out["ok"] = bool(out["reproduce"].get("ok")) and out["book"]["ok"]
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _warnings(text: str, tmp: Path) -> list[str]:
    """The distinct Sphinx ``WARNING`` / ``ERROR`` lines of a build log, colour codes and the
    temporary folder removed."""
    import re

    out = []
    for line in re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines():
        if "WARNING:" in line or "ERROR:" in line:
            line = line.replace(str(tmp) + "/", "").strip()
            if line not in out:
                out.append(line)
    return out[:20]


def cpu_run_times(root: str | os.PathLike | None = None) -> dict:
    """``wall_time_s`` of every ``cpu``-profile run record (``<results>/<paper>/cpu/*.json``)."""
    from .runs.records import read_record, results_dir

    base = results_dir(root)
    runs = []
    for p in sorted(base.glob("*/cpu/*.json")):
        rec = read_record(p)  # a damaged record raises RecordError: its time is not left out in silence
        if "wall_time_s" not in rec:
            continue
        runs.append({"paper": p.parent.parent.name, "experiment": rec.get("experiment", p.stem),
                     "status": rec.get("status"), "wall_time_s": rec.get("wall_time_s"),
                     "device": rec.get("device")})
    total = sum(float(r["wall_time_s"] or 0) for r in runs)
    return {"results_dir": os.path.relpath(base, PROJECT_ROOT) if str(base).startswith(str(PROJECT_ROOT)) else str(base),
            "runs": runs, "n": len(runs), "total_s": total}


#: The audit profile's budget (issue 18): all audits, 3 seeds, on the 2-core CPU / on one H200.
TARGET_AUDIT_CPU_S = 2 * 3600.0
TARGET_AUDIT_GPU_S = 5 * 60.0


def audit_run_times(root: str | os.PathLike | None = None, profile: str = "audit") -> dict:
    """The audit profile's cost from its records: ``wall_time_s`` of every arm record
    (``<results>/audits/<profile>/<audit>/<arm>.seed<k>.json``) and of every single-record audit
    (``<results>/audits/<profile>/<audit>.json`` that pools no arm records), summed per device."""
    from .runs.records import read_record, results_dir

    base = results_dir(root) / "audits" / profile
    runs = []
    for p in sorted(base.glob("*/*.seed*.json")) + sorted(base.glob("*.json")):
        rec = read_record(p)  # a damaged record raises RecordError: its time is not left out in silence
        if rec.get("arm_records") is not None or "wall_time_s" not in rec:
            continue  # a summary: its time is its arms'
        runs.append({"audit": rec.get("experiment"), "arm": rec.get("arm"), "seed": rec.get("seed"),
                     "status": rec.get("status"), "wall_time_s": float(rec.get("wall_time_s") or 0),
                     "device": rec.get("device")})
    by_device: dict[str, float] = {}
    for r in runs:
        by_device[str(r["device"])] = by_device.get(str(r["device"]), 0.0) + r["wall_time_s"]
    return {"profile": profile, "n": len(runs), "total_s": sum(r["wall_time_s"] for r in runs),
            "by_device": by_device, "seeds": sorted({r["seed"] for r in runs if r["seed"] is not None}),
            "runs": runs}


# ============================================================================ the whole bench
#: the CUDA variants of the training step: record key -> fit settings (``compile`` ones only on request)
CUDA_VARIANTS = (("cuda", {}),
                 ("cuda_nondeterministic", {"deterministic": False}),
                 ("cuda_compile", {"compile": True, "deterministic": False}),
                 ("cuda_graphs", {"compile": "reduce-overhead", "deterministic": False}))
PARTS = ("data", "train", "study")


def run_bench(*, quick: bool = False, reps: int | None = None, skip_study: bool = False, device: str = "auto",
              compile: bool = False, study_threads: Sequence[int | None] | int | None = None,
              out: str | os.PathLike | None = None, parts: Sequence[str] = PARTS, cpu_train: bool = True,
              log: Callable[[str], None] = print) -> dict:
    """Run the measurements named in ``parts`` (``data``, ``train``, ``study``), write the record
    atomically to ``out`` (after each part, so a run stopped early keeps what it measured) and
    return it.

    ``study_threads``: the intra-op thread settings to time the study with (``None`` = torch's
    default); the first is ``record["study"]``, each further one ``record["study_threads<N>"]``.
    On CUDA the training step is timed with fit's defaults (``cuda``), without deterministic
    algorithms (``cuda_nondeterministic``) and, with ``compile``, under ``torch.compile``
    (``cuda_compile``) and its CUDA-graph mode (``cuda_graphs``); a variant that fails is recorded
    with its error and the others go on. ``cpu_train=False`` skips the CPU training step (on a
    GPU machine, whose CPU is not the one the study's CPU figures are about).
    """
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown bench parts {sorted(unknown)}; valid: {', '.join(PARTS)}")
    if not isinstance(study_threads, (list, tuple)):
        study_threads = [study_threads]
    study_threads = list(study_threads) or [None]
    reps = reps or (2 if quick else 3)
    t_all = time.perf_counter()
    from .engine import resolve_device

    dev = resolve_device(device)
    load = LoadMonitor()
    rec: dict[str, Any] = {
        "format": BENCH_FORMAT, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick, "reps": reps, "command": "leukcore bench" + (" --quick" if quick else "")
        + (" --skip-study" if skip_study else "") + f" --reps {reps}" + (f" --device {device}" if device != "auto" else "")
        + (" --compile" if compile else "")
        + (f" --parts {','.join(parts)}" if tuple(parts) != PARTS else "")
        + ("" if cpu_train else " --no-cpu-train")
        + (" --study-threads " + ",".join(str(t or "default") for t in study_threads) if study_threads != [None] else ""),
        "machine": machine_info(str(dev)),
    }
    try:
        from .runs.records import git_commit

        rec["commit"] = git_commit()
    except Exception:  # noqa: BLE001
        rec["commit"] = None
    out = Path(out) if out is not None else default_out(quick)

    def save():
        load.sample("save")
        rec["cpu_runs"] = cpu_run_times()
        rec["audit_runs"] = audit_run_times()
        rec["load"] = load.summary()
        rec["targets"] = targets(rec)
        rec["seconds"] = time.perf_counter() - t_all
        atomic_write_text(out, json.dumps(rec, indent=1, default=_json_default) + "\n")

    devices = ["cpu"] + (["cuda"] if dev.type == "cuda" else [])
    if "data" in parts:
        rec["data_path"] = bench_data_path(quick=quick, reps=reps, devices=devices, load=load, log=log)
        save()
    if "train" in parts:
        rec["train_step"] = {}
        if cpu_train or dev.type != "cuda":
            rec["train_step"]["cpu"] = bench_train_step(quick=quick, reps=reps, device="cpu", load=load, log=log)
            save()
        if dev.type == "cuda":
            measured = rec["machine"].get("gpu_bf16_matmul_flops_measured")
            for key, kw in CUDA_VARIANTS:
                if kw.get("compile") and not compile:
                    continue
                log(f"training step, {key}")
                try:
                    blk = bench_train_step(quick=quick, reps=reps, device=str(dev), load=load, log=log, **kw)
                except Exception as e:  # noqa: BLE001 - recorded; the other variants go on
                    import traceback

                    traceback.print_exc()
                    rec["train_step"][key] = {"error": f"{type(e).__name__}: {str(e)[:2000]}", "settings": kw}
                    save()
                    continue
                if measured:
                    blk["gpu_bf16_matmul_flops_measured"] = measured
                    for row in blk["models"]:
                        if row.get("leukcore_tflops") is not None:
                            row["leukcore_matmul_fraction"] = row["leukcore_tflops"] * 1e12 / measured
                            row["plain_matmul_fraction"] = row["plain_tflops"] * 1e12 / measured
                rec["train_step"][key] = blk
                save()
    if "study" not in parts or skip_study or quick:
        rec["study"] = {"skipped": True, "reason": "--quick" if quick else
                        ("--skip-study" if skip_study else "not in --parts")}
    else:
        for i, th in enumerate(study_threads):
            rec["study" if i == 0 else f"study_threads{th or 'default'}"] = bench_study(threads=th, log=log)
            save()
    save()
    rec["_path"] = str(out)
    return rec


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def targets(rec: dict) -> list[dict]:
    """The targets of issue 7 against the record: ``{name, target, measured, met}``."""
    out = []
    dp = rec.get("data_path") or {}
    if "ratio" in dp:
        out.append({"name": "data path vs naive (CPU)", "target": f">= {TARGET_DATA_RATIO:g}x",
                    "measured": f"{dp['ratio']:.1f}x (CPU time {dp['cpu_ratio']:.1f}x"
                    + (f"; on 1 intra-op thread {dp['ratio_1thread']:.1f}x" if dp.get("ratio_1thread") else "")
                    + (f"; on the GPU {dp['ratio_cuda']:.1f}x" if dp.get("ratio_cuda") else "") + ")",
                    "met": dp["ratio"] >= TARGET_DATA_RATIO})
    for dev, blk in (rec.get("train_step") or {}).items():
        goal = TARGET_TRAIN_RATIO_CPU if dev == "cpu" else TARGET_TRAIN_RATIO_GPU
        if "error" in blk:
            out.append({"name": f"trainer vs plain loop ({dev})", "target": f">= {goal:g}x",
                        "measured": "failed: " + blk["error"][:200], "met": False})
        for row in blk.get("models", []):
            out.append({"name": f"trainer vs plain loop, {row['model']}@{row['image_size']} ({dev})",
                        "target": f">= {goal:g}x", "measured": f"{row['ratio']:.2f}x",
                        "met": row["ratio"] >= goal})
    au = rec.get("audit_runs") or {}
    for dev, secs in (au.get("by_device") or {}).items():
        gpu = "CUDA" in dev or "NVIDIA" in dev
        goal = TARGET_AUDIT_GPU_S if gpu else TARGET_AUDIT_CPU_S
        out.append({"name": f"audit profile, all audits, seeds {','.join(map(str, au.get('seeds', [])))} ({dev})",
                    "target": f"< {goal / 60:g} min", "measured": f"{secs / 60:.0f} min (sum of the records' wall_time_s)",
                    "met": secs < goal})
    for key, st in _study_blocks(rec):
        out.append({"name": "smoke reproduction + book build" + _study_label(st), "target": f"< {TARGET_STUDY_S:g} s",
                    "measured": f"{st['total_s']:.0f} s" + ("" if st.get("ok") else " (with failures)"),
                    "met": st["total_s"] < TARGET_STUDY_S and bool(st.get("ok"))})
    return out


def _study_blocks(rec: dict) -> list[tuple[str, dict]]:
    """``(key, block)`` of every measured study in the record (``study``, ``study_threads<N>``)."""
    return [(k, v) for k, v in rec.items() if k.startswith("study") and isinstance(v, dict) and "total_s" in v]


def _default_study_label() -> str:
    from .runs.profiles import get_profile

    n = get_profile("smoke").threads
    return " (default threads" + (f"; experiments on the smoke profile's {n})" if n else ")")


def _study_label(st: dict) -> str:
    th = st.get("threads", "default")
    return "" if th in (None, "default") else f" ({th} intra-op thread{'s' if th != 1 else ''})"


# ============================================================================ rendering
def _f(v, fmt=".1f", none="–"):
    return none if v is None else format(v, fmt)


def _md(rows: list[list[str]], header: list[str]) -> str:
    """Rows of already formatted cells as a markdown table (pandas / tabulate)."""
    import pandas as pd

    return pd.DataFrame([[str(c) for c in r] for r in rows], columns=header).to_markdown(
        index=False, tablefmt="pipe", disable_numparse=True) + "\n"


def _ips(b: dict) -> str:
    return f"{b['images_per_s']:.1f} ({b['images_per_s_min']:.1f}–{b['images_per_s_max']:.1f})"


_LABELS = {"leukcore": "leukcore (OpenCV backend, fit's CPU default)", "leukcore_1thread": "leukcore, 1 thread",
           "leukcore_torch": "leukcore, torch backend (one grid_sample per batch)",
           "leukcore_cuda": "leukcore on the GPU", "naive": "naive (PIL + torchvision, 2 workers)"}


def bench_markdown(record: dict, *, study: bool = True, cpu_runs: bool = True) -> str:
    """The benchmark record as markdown: the machine, the data path, the training steps, the
    whole study, the ``cpu``-profile runs and the targets (for ``book/_generated/performance.md``);
    ``study`` / ``cpu_runs`` False leave those sections out (a GPU machine's record)."""
    r = record
    m = r.get("machine", {})
    lines = []
    if r.get("quick"):
        lines.append("```{warning}\nThis record comes from `leukcore bench --quick` (a few batches): its figures "
                     "only show that the benchmark runs.\n```\n")
    ld = r.get("load", {})
    lines.append(f"Measured {r.get('created', '?')} with `{r.get('command', 'leukcore bench')}`"
                 + (f" at commit `{r['commit']}`" if r.get("commit") else "") + ".\n")
    lines.append("**Machine.** " + ", ".join(x for x in [
        f"{m.get('cpu', '?')} ({m.get('cores', '?')} cores, {m.get('torch_threads', '?')} torch threads)",
        f"{m['memory_gib']} GiB" if m.get("memory_gib") else None,
        f"GPU {m['gpu']}" if m.get("gpu") else "no GPU",
        f"torch {m.get('torch', '?')}", f"torchvision {m.get('torchvision', '?')}",
        f"Python {m.get('python', '?')}"] if x) + ".\n")
    if ld:
        lines.append(f"**Load.** {ld.get('note', '')} (maximum 1-minute load average "
                     f"{_f(ld.get('max_load1'))}).\n")
    lines.append("Timings are medians of the repetitions after a warm-up; ranges in brackets are min–max.\n")

    dp = r.get("data_path")
    if dp:
        lines.append("## Data path\n")
        note = re.sub(r"(the real data were not found) \(.*$", r"\1", dp["note"])  # no machine paths
        lines.append(f"One epoch of augmented, normalised training batches of {dp['n_images']} images "
                     f"({note}) at {dp['image_size']}x{dp['image_size']}, batch size {dp['batch_size']}, "
                     f"augmentation preset `{dp['augment']}` (flips, rotation, random resized crop, colour jitter). "
                     f"*leukcore*: decoded uint8 cache, one uint8 tensor in memory, per batch the augmentation and "
                     f"the normalisation (`leukcore.transforms`: OpenCV image by image on the CPU, batched torch "
                     f"operations on a GPU). *naive*: `PIL.Image.open` + torchvision transforms per sample in "
                     f"a `DataLoader` with {dp['naive_workers']} workers.\n")
        rows = []
        for key in [k for k in dp if k.startswith("leukcore")] + ["naive"]:
            b = dp.get(key)
            if not isinstance(b, dict) or "images_per_s" not in b:
                continue
            label = _LABELS.get(key, key)
            if key in ("leukcore", "leukcore_1thread") and "backend" not in b:  # records before the OpenCV backend
                label = "leukcore (torch backend)" + (", 1 thread" if key == "leukcore_1thread" else "")
            rows.append([label + ("" if b.get("device", "cpu") == "cpu" else f" ({b['device']})")
                         + (f" ({b['threads']} threads)" if key == "leukcore" and b.get("threads") else ""), _ips(b),
                         f"{b['median_s']:.2f} ({b['min_s']:.2f}–{b['max_s']:.2f})",
                         f"{b['cpu_ms_per_image']:.2f}",
                         f"{b['images_per_s'] / dp['naive']['images_per_s']:.1f}x"])
        lines.append(_md(rows, ["pipeline", "images/s", "epoch (s)", "CPU ms / image", "vs naive"]))
        w = dp["warmup"]
        lines.append(f"\nCache warm-up, excluded from the per-epoch figures: first decode of the {dp['n_images']} "
                     f"JPEG files {w['first_decode_s']:.1f} s ({w['first_decode_images_per_s']:.0f} images/s), "
                     f"reading them back from the on-disk cache {w['from_disk_cache_s']:.1f} s, building the "
                     f"uint8 tensor ({w['tensor_mb']:.0f} MB) {w['to_tensor_s']:.2f} s. Ratio "
                     f"**{dp['ratio']:.1f}x** in wall time (range {dp['ratio_range'][0]:.1f}–{dp['ratio_range'][1]:.1f}x), "
                     f"**{dp['cpu_ratio']:.1f}x** in CPU time per image"
                     + (f" ({dp['cpu_ratio_1thread']:.1f}x for leukcore on one intra-op thread, which does not "
                        f"spin-wait on a busy machine)" if dp.get("cpu_ratio_1thread") else "") + ".\n")

    ts = r.get("train_step") or {}
    if ts:
        lines.append("## Training step\n")
        for dev, blk in ts.items():
            if "error" in blk:
                lines.append(f"**{dev}** ({blk.get('settings')}): failed, `{blk['error'][:300]}`.\n")
                continue
            lines.append(f"**{dev}**: batch size {blk['batch_size']}, {blk['steps_per_rep']} steps per repetition, "
                         f"{blk['optimizer']}; leukcore = `leukcore.engine.fit` ({blk['leukcore_mode']}), plain = "
                         f"{blk['plain_mode']}.\n")
            rows = []
            for row in blk["models"]:
                fl = row.get("train_flops_per_image")
                peak = ""
                if row.get("leukcore_peak_fraction") is not None:
                    peak = f"{100 * row['leukcore_peak_fraction']:.1f} % / {100 * row['plain_peak_fraction']:.1f} %"
                if row.get("leukcore_matmul_fraction") is not None:
                    peak += (f" (of the measured bf16 matrix-product rate: {100 * row['leukcore_matmul_fraction']:.1f} %"
                             f" / {100 * row['plain_matmul_fraction']:.1f} %)")
                rows.append([f"{row['model']} @ {row['image_size']}", _ips(row["leukcore"]), _ips(row["plain"]),
                             f"{row['ratio']:.2f}x",
                             "–" if not fl else f"{fl / 1e9:.2f}",
                             "–" if not fl else f"{row['leukcore_tflops'] * 1e3:.0f} / {row['plain_tflops'] * 1e3:.0f}",
                             peak or "–"])
            lines.append(_md(rows, ["model", "leukcore images/s", "plain images/s", "ratio",
                                    "GFLOP / image (train)", "GFLOP/s leukcore / plain", "of bf16 peak"]))
            lines.append("")
    st = r.get("study") or {}
    if study:
        lines.append("## Whole study\n")
    blocks = _study_blocks(r)
    if not study:
        pass
    elif not blocks:
        lines.append(f"Not measured in this record ({st.get('reason', 'no study block')}).\n")
    else:
        lines.append("`leukcore.book.runner.reproduce` of every paper at the `smoke` profile (what `leukcore reproduce "
                     "--paper all --profile smoke` runs) into a temporary results folder and book copy, then the "
                     "book build of that copy (generated pages + `jupyter-book build`).\n")
        rows = []
        for _, b in blocks:
            rep, bk = b.get("reproduce", {}), b.get("book", {})
            lab = _study_label(b) or _default_study_label()
            rows.append([f"smoke reproduction{lab}", f"{rep.get('wall_s', 0):.0f}",
                         "ok" if rep.get("ok") else f"{len(rep.get('failures', {}))} of "
                         f"{len(rep.get('failures', {})) + int(rep.get('experiments', 0))} experiments failed; "
                         f"rc {rep.get('rc')}"])
            warn = (bk.get("jupyter_book") or {}).get("warnings") or []
            w0 = warn[0].replace("`", "'") if warn else ""
            why = f"failed: {len(warn)} warnings (`--warningiserror`), e.g. `{w0}`" if warn else "failed"
            rows.append([f"book build{lab}", f"{bk.get('seconds', 0):.0f}", "ok" if bk.get("ok") else why])
            rows.append([f"**total**{lab}", f"**{b.get('total_s', 0):.0f}**", "ok" if b.get("ok") else "with failures"])
        lines.append(_md(rows, ["part", "seconds", "status"]))
        for _, b in blocks:
            nbs = b.get("reproduce", {}).get("notebooks") or []
            if nbs:
                lines.append(f"\nNotebooks{_study_label(b)}: "
                             + ", ".join(f"{n['paper']} {n['seconds']:.0f} s ({n['status']})" for n in nbs) + ".\n")
    cr = r.get("cpu_runs") or {}
    if cpu_runs:
        lines.append("## `cpu`-profile runs\n")
    if not cpu_runs:
        pass
    elif cr.get("runs"):
        rows = [[x["paper"], x["experiment"], _f(x["wall_time_s"], ".0f"), x.get("status") or ""] for x in cr["runs"]]
        lines.append(_md(rows, ["paper", "experiment", "wall time (s)", "status"]))
        lines.append(f"\n{cr['n']} runs, {cr['total_s'] / 60:.1f} minutes in all (from the run records' "
                     f"`wall_time_s`).\n")
    else:
        lines.append("No `cpu`-profile run records were found when the benchmark ran.\n")
    au = r.get("audit_runs") or {}
    if cpu_runs and au.get("runs"):
        lines.append("## `audit`-profile runs\n")
        lines.append(_md([[dev, f"{secs / 60:.1f}"] for dev, secs in au["by_device"].items()],
                         ["device", "minutes (sum of the records' wall_time_s)"]))
        lines.append(f"\n{au['n']} records (one per arm and seed, and the single-record audits), seeds "
                     f"{', '.join(map(str, au['seeds']))}.\n")
    if r.get("targets"):
        lines.append("## Targets\n")
        lines.append(_md([[t["name"], t["target"], t["measured"], "met" if t["met"] else "**not met**"]
                          for t in r["targets"]], ["target", "goal", "measured", ""]))
    return "\n".join(lines)


def default_gpu_out() -> Path:
    """``<results>/bench/gpu.json``: the record of ``leukcore bench --device cuda`` made on a lent GPU
    machine (``tools/gpu_check.sh``), shown beside the CPU record."""
    from .runs.records import results_dir

    return results_dir() / "bench" / "gpu.json"


def performance_markdown(path: str | os.PathLike | None = None, gpu_path: str | os.PathLike | None = None) -> str:
    """The book's performance fragment: :func:`bench_markdown` of the record at ``path`` (default
    ``results/bench/latest.json``), or a note saying how to make one when there is none; then, when
    a GPU record exists (``gpu_path``, default ``results/bench/gpu.json``), a section "On a GPU"
    rendered from it the same way."""
    p = Path(path) if path is not None else default_out()
    try:
        rec = json.loads(p.read_text())
    except (OSError, ValueError):
        md = ("No benchmark record yet (`results/bench/latest.json`). Run `leukcore bench` (or `make bench`) "
              "to measure this machine; the page renders the latest record.\n")
    else:
        md = bench_markdown(rec)
    g = Path(gpu_path) if gpu_path is not None else default_gpu_out()
    try:
        grec = json.loads(g.read_text())
    except (OSError, ValueError):
        return md
    body = bench_markdown(grec, study=False, cpu_runs=False).replace("\n## ", "\n### ")
    if body.startswith("## "):
        body = "#" + body
    return (md + f"\n## On a GPU\n\nThe same benchmark on a lent GPU machine ({grec.get('machine', {}).get('gpu', '?')}), "
            f"from `{os.path.relpath(g, PROJECT_ROOT) if str(g).startswith(str(PROJECT_ROOT)) else g}`, made with "
            "`tools/gpu_check.sh` (its data-path figures are that machine's CPU cores and GPU, not this study's "
            "2-core machine).\n\n" + body + "\n\n" + grid_markdown(grec.get("grid")))


def grid_markdown(grid: dict | None) -> str:
    """The GPU record's ``grid`` block (``leukcore gpu grid``): the experiment grid run one at a
    time against several at once on one GPU, as a table; "not measured yet" without one."""
    head = "### Experiment grid on one GPU\n\n"
    if not grid:
        return head + ("Not measured yet: `leukcore gpu grid` (run by `tools/gpu_lease.sh` on a lent GPU) "
                       "times the same experiments one at a time and several at once on one GPU.\n")
    rows = []
    for key, label in (("sequential", "one at a time (1 process, every CPU core)"),
                       ("concurrent", f"{grid.get('workers', '?')} at once ({grid.get('threads_per_worker', '?')} "
                                      "CPU threads each, same GPU)")):
        b = grid.get(key) or {}
        rows.append([label, _f(b.get("wall_s"), ".0f"), _f(b.get("images_per_s"), ".0f")])
    same = "identical" if grid.get("identical_keys") else "**different**"
    diff = grid.get("max_abs_metric_diff")
    text = (head + f"{len(grid.get('experiments', []))} experiments ({', '.join(grid.get('experiments', []))}) at the "
            f"`{grid.get('profile')}` profile" + (f" with {grid['epochs']} epochs" if grid.get("epochs") else "") +
            f" on {grid.get('device', '?')}; images/s counts the training images of the whole grid (epochs x "
            f"training images, summed) over its wall time, process start and data loading included.\n\n")
    text += _md(rows, ["how", "wall time (s)", "training images/s"])
    text += (f"\n\nSpeed-up of running them at once: **{_f(grid.get('speedup'), '.2f')}x**. Record keys: {same}; "
             f"largest difference of any metric between the two runs: {_f(diff, '.2g')}"
             f" ({grid.get('note', '')}).\n")
    return text


def bench_table_text(record: dict) -> str:
    """A plain-text table of the record's main figures (what ``leukcore bench`` prints)."""
    rows = []
    dp = record.get("data_path")
    if dp:
        for key in [k for k in dp if k.startswith("leukcore")] + ["naive"]:
            b = dp.get(key)
            if isinstance(b, dict) and "images_per_s" in b:
                rows.append((f"data path: {key}", f"{b['images_per_s']:.1f} img/s",
                             f"{b['images_per_s_min']:.1f}-{b['images_per_s_max']:.1f}",
                             f"{b['cpu_ms_per_image']:.2f} CPU-ms/img"))
        rows.append(("data path: ratio", f"{dp['ratio']:.1f}x", f"{dp['ratio_range'][0]:.1f}-{dp['ratio_range'][1]:.1f}",
                     f"CPU-time ratio {dp['cpu_ratio']:.1f}x"
                     + (f" (1 thread: {dp['cpu_ratio_1thread']:.1f}x)" if dp.get("cpu_ratio_1thread") else "")))
        rows.append(("data path: first decode", f"{dp['warmup']['first_decode_s']:.1f} s",
                     f"{dp['warmup']['first_decode_images_per_s']:.0f} img/s", "excluded"))
    for dev, blk in (record.get("train_step") or {}).items():
        if "error" in blk:
            rows.append((f"train {dev}", "failed", "", blk["error"][:120]))
        for row in blk.get("models", []):
            tag = f"train {row['model']}@{row['image_size']} {dev}"
            rows.append((f"{tag}: leukcore", f"{row['leukcore']['images_per_s']:.1f} img/s",
                         f"{row['leukcore']['images_per_s_min']:.1f}-{row['leukcore']['images_per_s_max']:.1f}", ""))
            rows.append((f"{tag}: plain", f"{row['plain']['images_per_s']:.1f} img/s",
                         f"{row['plain']['images_per_s_min']:.1f}-{row['plain']['images_per_s_max']:.1f}", ""))
            extra = ""
            if row.get("leukcore_peak_fraction") is not None:
                extra = f"{100 * row['leukcore_peak_fraction']:.1f}% of bf16 peak"
            rr = row.get("ratio_range")
            rows.append((f"{tag}: ratio", f"{row['ratio']:.2f}x", f"{rr[0]:.2f}-{rr[1]:.2f}" if rr else "", extra))
    for _, st in _study_blocks(record):
        lab = _study_label(st)
        rows.append((f"study: smoke reproduce{lab}", f"{st['reproduce']['wall_s']:.0f} s", "",
                     "ok" if st["reproduce"].get("ok") else "failures"))
        rows.append((f"study: book build{lab}", f"{st['book']['seconds']:.0f} s", "",
                     "ok" if st["book"]["ok"] else "failed"))
        rows.append((f"study: total{lab}", f"{st['total_s']:.0f} s", "", ""))
    cr = record.get("cpu_runs") or {}
    rows.append(("cpu-profile runs", f"{cr.get('n', 0)} runs", f"{cr.get('total_s', 0):.0f} s", ""))
    au = record.get("audit_runs") or {}
    for dev, secs in (au.get("by_device") or {}).items():
        rows.append((f"audit profile ({dev})", f"{au.get('n', 0)} records", f"{secs:.0f} s", ""))
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    text = "\n".join("  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip() for r in rows)
    ld = record.get("load", {})
    text += f"\nload: {ld.get('note', '')}"
    for t in record.get("targets", []):
        text += f"\ntarget {t['name']}: {t['target']}, measured {t['measured']}: {'met' if t['met'] else 'NOT MET'}"
    return text


# ============================================================================ CLI
def _cmd_bench(args: argparse.Namespace) -> int:
    threads = [None if t.strip() in ("", "default") else int(t) for t in (args.study_threads or "default").split(",")]
    parts = [p.strip() for p in (args.parts or ",".join(PARTS)).split(",") if p.strip()]
    rec = run_bench(quick=args.quick, reps=args.reps, skip_study=args.skip_study, device=args.device,
                    compile=args.compile, study_threads=threads, out=args.out, parts=parts,
                    cpu_train=not args.no_cpu_train)
    print()
    print(bench_table_text(rec))
    print(f"\nrecord: {rec['_path']}")
    return 0


def bench_ray_vs_local(paper: str = "dscnet_vijayalakshmi", profile: str = "smoke", *, num_cpus: int = 2,
                       out=None, keep_dir=None) -> dict:
    """Wall time of one paper's grid with ``executor="local"`` and ``"ray"`` (a local instance of ``num_cpus``).

    One run of each, local first, in fresh temporary results folders (``keep_dir`` keeps them).
    The Ray time includes starting and stopping the local instance.  Written as JSON to ``out``
    (default ``<results>/bench/ray_vs_local.json``) with ``local_s``, ``ray_s``, ``ratio`` =
    ``ray_s / local_s``, ``experiments``, ``machine``, and whether the two runs' records were equal.
    """
    import platform

    from .runs.distributed import NUM_CPUS_ENV, driver_threads
    from .runs.grid import run_grid
    from .runs.records import device_description, load_records, results_dir

    base = Path(keep_dir) if keep_dir else Path(tempfile.mkdtemp(prefix="leukcore-bench-ray-"))
    prev = os.environ.get(NUM_CPUS_ENV)
    os.environ[NUM_CPUS_ENV] = str(num_cpus)
    try:
        load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        t0 = time.perf_counter()
        loc = run_grid([paper], profile, executor="local", device="cpu", results_dir=base / "local", progress=False)
        local_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ray_res = run_grid([paper], profile, executor="ray", device="cpu", results_dir=base / "ray", progress=False)
        ray_s = time.perf_counter() - t0
        load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

        def stable(r):
            return {k: v for k, v in r.items() if k not in ("wall_time_s", "written_at", "_path", "history", "commit")}

        a = {r["experiment"]: stable(r) for r in load_records(paper, profile, root=base / "local")}
        b = {r["experiment"]: stable(r) for r in load_records(paper, profile, root=base / "ray")}
    finally:
        if prev is None:
            os.environ.pop(NUM_CPUS_ENV, None)
        else:
            os.environ[NUM_CPUS_ENV] = prev
        if not keep_dir:
            shutil.rmtree(base, ignore_errors=True)
    rec = {"paper": paper, "profile": profile, "experiments": len(loc.records) + len(loc.failures),
           "local_s": round(local_s, 2), "ray_s": round(ray_s, 2), "ratio": round(ray_s / local_s, 3),
           "ray_workers": num_cpus, "records_equal": a == b and bool(a), "failures": len(loc.failures) + len(ray_res.failures),
           "torch_threads_per_task": driver_threads(),
           "machine": f"{device_description('cpu')}; {platform.platform()}",
           "load_average_1min": [None if load0 is None else round(load0, 2), None if load1 is None else round(load1, 2)],
           "note": "one run each, local then ray; ray_s includes starting and stopping the local Ray instance"}
    dest = Path(out) if out else results_dir() / "bench" / "ray_vs_local.json"
    atomic_write_text(dest, json.dumps(rec, indent=1) + "\n")
    return rec


def register_cli(subparsers) -> None:
    """Add ``leukcore bench [--quick] [--out PATH] [--reps N] [--skip-study]`` to the CLI."""
    b = subparsers.add_parser("bench", help="benchmark the data path, training steps and the whole study")
    b.add_argument("--quick", action="store_true", help="a tiny version (a few batches; for CI); no study")
    b.add_argument("--out", default=None,
                   help="record path (default results/bench/latest.json; quick.json with --quick)")
    b.add_argument("--reps", type=int, default=None, help="timed repetitions after the warm-up (default 3; 2 quick)")
    b.add_argument("--skip-study", action="store_true", help="skip the smoke reproduction + book build timing")
    b.add_argument("--device", default="auto", help="auto | cpu | cuda (training step; data path also on cuda)")
    b.add_argument("--compile", action="store_true",
                   help="on CUDA also time fit with torch.compile (default mode and reduce-overhead)")
    b.add_argument("--parts", default=None,
                   help=f"comma-separated subset of {','.join(PARTS)} (default: all)")
    b.add_argument("--no-cpu-train", action="store_true",
                   help="skip the CPU training step (on a GPU machine)")
    b.add_argument("--study-threads", default=None,
                   help="torch intra-op threads for the study's subprocesses (OMP_NUM_THREADS), comma-separated to "
                        "time several settings, e.g. 'default,1' (default: torch's own)")
    b.set_defaults(func=_cmd_bench)

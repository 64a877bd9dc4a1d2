"""The data path: one epoch of augmented, normalised batches the way :func:`leukcore.engine.fit`
makes them (:func:`leukcore.engine.batching.batches`), against a PIL + torchvision ``DataLoader``."""
from __future__ import annotations

import tempfile
import time
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .timing import LoadMonitor, time_interleaved

DATASET = "taleqani-all"
IMAGE_SIZE = 224
BATCH_SIZE = 32
AUGMENT_PRESET = "dscnet"
#: torchvision v1 equivalents of the ``dscnet`` preset of :mod:`leukcore.transforms`
NAIVE_AUGMENT = dict(crop_scale=(0.7, 1.0), crop_ratio=(3 / 4, 4 / 3), hflip=0.5, vflip=0.5, rotation=20.0,
                     brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02)


def bench_table(quick: bool = False, n_images: int | None = None, *, seed: int = 0):
    """The ``taleqani-all`` table (``Original``), else the synthetic stand-in; with a note.

    ``n_images`` (or ``quick``: 32) keeps a stratified, seeded subset.
    """
    from ..data import DataError, load_dataset

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

    from .. import engine as T
    from ..transforms import make_augment

    dev = torch.device(device)
    if channels_last is None:
        channels_last = T.TrainConfig().channels_last
    xs = T.as_nhwc_uint8(x, "x").to(dev)
    yd = torch.as_tensor(np.array(y, dtype=np.int64)).to(dev)
    perm = torch.randperm(xs.shape[0], generator=torch.Generator().manual_seed(seed)) if shuffle \
        else torch.arange(xs.shape[0])
    for xb, yb, (s, e) in T.batches(xs, yd, perm.to(dev), batch_size, augment=make_augment(augment, backend=backend),
                                    normalizer=T.Normalizer(mean, std),
                                    generator=torch.Generator().manual_seed(seed + 1), channels_last=channels_last):
        yield xb, yb, perm[s:e]


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


def bench_data_path(*, quick: bool = False, reps: int = 3, batch_size: int = BATCH_SIZE, seed: int = 0,
                    n_images: int | None = None, num_workers: int = 2, devices: Sequence[str] = ("cpu",),
                    load: LoadMonitor | None = None, log: Callable[[str], None] = print) -> dict:
    """Images per second of one epoch of augmented, normalised batches: leukcore vs naive.

    Variants, timed interleaved (:func:`time_interleaved`): ``leukcore`` (the OpenCV backend
    with the default threads, what :func:`leukcore.engine.fit` uses on the CPU),
    ``leukcore_1thread`` (the same on one torch and one OpenCV thread: the intrinsic CPU cost,
    free of the spin-waiting of idle threads that a busy machine causes), ``leukcore_torch`` (the
    torch backend on the CPU), ``leukcore_cuda`` when a GPU is used, and ``naive``. ``ratio`` is
    ``leukcore`` over ``naive`` (wall clock); ``cpu_ratio`` the naive CPU time per image over
    leukcore's. See the module docstring. Returns the ``data_path`` block of the record.
    """
    import torch

    from ..data import ImageCache, load_images

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
        from ..engine import intra_op_threads

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
    runs = time_interleaved(variants, reps, load)
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

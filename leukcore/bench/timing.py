"""How the benchmark times things: medians over interleaved repetitions after a warm-up, the
machine's load while it ran, and what the machine is (CPU, GPU, its bf16 peak)."""
from __future__ import annotations

import os
import platform
import resource
import time
from typing import Any, Callable, Sequence

import numpy as np

#: dense bf16 tensor-core peaks (FLOP/s) by GPU name fragment, most specific first
GPU_PEAK_BF16 = (("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989.4e12), ("H200", 989.4e12),
                 ("GH200", 989.4e12), ("B200", 2250e12), ("A100", 312e12), ("L40S", 362e12),
                 ("A10G", 70e12), ("L4", 121e12), ("V100", 125e12))


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


def cpu_now() -> float:
    """CPU seconds of this process (all threads) plus its terminated, waited-for children."""
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime


def machine_info(device: str = "cpu") -> dict:
    """CPU model, cores, torch / torchvision versions, threads, the device, Python, OS."""
    import torch

    from ..runs.records import cpu_model, device_description

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


def time_interleaved(variants: dict[str, tuple[Callable[[], Any], Callable[[], Any] | None]], reps: int,
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
            c0, t0 = cpu_now(), time.perf_counter()
            got = run()
            dt = time.perf_counter() - t0
            if isinstance(got, tuple):
                got, dt = got
            wall[k].append(dt)
            cpu[k].append(cpu_now() - c0)
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

"""The book's performance page, rendered from the benchmark records (:mod:`leukcore.bench`): the
machine, the data path, the training steps, the whole study, the ``cpu``- and ``audit``-profile
runs, the targets, and the GPU record with its experiment-grid block."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..bench.record import default_gpu_out, default_out, study_blocks, study_label
from ..files import PROJECT_ROOT


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


def _default_study_label() -> str:
    from ..runs.profiles import get_profile

    n = get_profile("smoke").threads
    return " (default threads" + (f"; experiments on the smoke profile's {n})" if n else ")")


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
    blocks = study_blocks(r)
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
            lab = study_label(b) or _default_study_label()
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
                lines.append(f"\nNotebooks{study_label(b)}: "
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
        if au.get("by_audit"):
            lines.append(_md([[a, str(v["n"]), ", ".join(map(str, v["seeds"])), f"{v['total_s'] / 60:.1f}"]
                              for a, v in au["by_audit"].items()],
                             ["audit", "records", "seeds", "minutes (sum of wall_time_s)"]))
    if r.get("targets"):
        lines.append("## Targets\n")
        lines.append(_md([[t["name"], t["target"], t["measured"], "met" if t["met"] else "**not met**"]
                          for t in r["targets"]], ["target", "goal", "measured", ""]))
    return "\n".join(lines)


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

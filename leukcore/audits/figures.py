"""The audits' tables and figures for the book's audits page."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .. import data as D
from .base import audit_data, audit_profile, audit_settings, AUDITS, SEEDED_AUDITS, VARIANTS
from .inputs import apply_variant, mask_box
from .segmented import segmented_table
from .arms import MEASURE_NAMES
from .seeded import arm_records
from .registry import load_summary


def _fmt_frac(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:.3f}"


def audit_table(rec: dict) -> pd.DataFrame:
    """The record's ``rows`` as a table: arm, metric, value, 95 % interval, n, note, profile · dataset."""
    from ..runs.records import provenance_label

    label = provenance_label(rec)
    if rec.get("status") != "complete":
        return pd.DataFrame([{"arm": "—", "metric": "—", "value": rec.get("reason", rec.get("status")),
                              "95 % interval": "—", "n": None, "note": "", "profile · dataset": label}])
    out = []
    for r in rec.get("rows", []):
        small = r["point"] is not None and abs(r["point"]) < 1e-3 and r["low"] is None
        value = f"{r['point']:.2e}" if small else _fmt_frac(r["point"])
        ci = "—" if r.get("low") is None else f"[{_fmt_frac(r['low'])}, {_fmt_frac(r['high'])}]"
        out.append({"arm": r["arm"], "metric": r["metric"], "value": value, "95 % interval": ci, "n": r.get("n"),
                    "note": r.get("note", ""), "profile · dataset": label})
    return pd.DataFrame(out)


def _bars(ax, rows: list[dict], title: str, ref: float | None = None, ref_label: str = "") -> None:
    rows = [r for r in rows if r.get("low") is not None]
    labels = [f"{r['arm']}\n{r['metric']}" if len({x['metric'] for x in rows}) > 1 else r["arm"] for r in rows]
    pts = np.array([r["point"] for r in rows], float)
    err = np.array([[r["point"] - r["low"] for r in rows], [r["high"] - r["point"] for r in rows]], float)
    ypos = np.arange(len(rows))[::-1]
    ax.barh(ypos, pts, xerr=err, color="#4c72b0", alpha=0.85, capsize=3)
    ax.set_yticks(ypos)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlim(0, 1)
    if ref is not None:
        ax.axvline(ref, color="grey", ls="--", lw=1)
        ax.text(ref, -0.9, ref_label, fontsize=7, color="grey", ha="left")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("fraction (95 % interval)")


def _interval_bars(ax, labels: list[str], stats: list[dict], *, scale: float = 1.0, zero: bool = False,
                   seeds: dict | None = None) -> None:
    """Horizontal bars of means with their t-intervals over seeds (and each seed's value as a dot)."""
    ypos = np.arange(len(labels))[::-1]
    pts = np.array([scale * (d.get("mean") if d.get("mean") is not None else np.nan) for d in stats], float)
    lo = np.array([scale * d["low"] if d.get("low") is not None else np.nan for d in stats], float)
    hi = np.array([scale * d["high"] if d.get("high") is not None else np.nan for d in stats], float)
    err = np.vstack([np.where(np.isnan(lo), 0, pts - lo), np.where(np.isnan(hi), 0, hi - pts)])
    ax.barh(ypos, pts, xerr=err, color="#4c72b0" if not zero else "#dd8452", alpha=0.8, capsize=3)
    for y0, d in zip(ypos, stats):
        vals = d.get("values") or list((d.get("per_seed") or {}).values())
        ax.plot([scale * v for v in vals], [y0] * len(vals), "k.", ms=4)
    ax.set_yticks(ypos)
    ax.set_yticklabels(labels, fontsize=8)
    if zero:
        ax.axvline(0, color="grey", lw=1)


def _strip(ax, labels: list[str], stats: list[dict]) -> None:
    """A strip plot: each seed's value as a dot (jittered vertically), the mean as a tick with its t-interval."""
    ypos = np.arange(len(labels))[::-1]
    rng = np.random.default_rng(0)
    for y0, d in zip(ypos, stats):
        vals = np.asarray(d.get("values") or [], float)
        ax.plot(vals, y0 + rng.uniform(-0.18, 0.18, len(vals)), "o", ms=4, color="#4c72b0", alpha=0.75)
        if d.get("mean") is not None:
            ax.plot([d["mean"]] * 2, [y0 - 0.3, y0 + 0.3], color="black", lw=2)
        if d.get("low") is not None:
            ax.plot([d["low"], d["high"]], [y0, y0], color="black", lw=1)
    ax.set_yticks(ypos)
    ax.set_yticklabels(labels, fontsize=8)


def _plot_seeded(rec: dict, title: str):
    """A seeded audit's summary: accuracy per measure (left) and the paired effects (right), each a mean
    over seeds with its t-interval and the seeds as dots; ``external_pbc``: per model, the fraction of
    PBC cells called Benign, the OOD AUROC and the Taleqani Benign recall."""
    import matplotlib.pyplot as plt

    res = rec["results"]
    if rec["experiment"] == "external_pbc":
        models = res["models"]
        names = list(models)
        fig, axes = plt.subplots(1, 3, figsize=(12, 0.8 + 0.45 * len(names)), sharey=True)
        for ax, (k, lab) in zip(axes, (("benign_fraction", "PBC lymphocytes called Benign"),
                                       ("ood_auroc", "OOD AUROC (max softmax; 0.5 = none)"),
                                       ("taleqani_benign_recall", "Taleqani Benign recall"))):
            _strip(ax, names, [models[n][k] for n in names])
            ax.set_xlim(-0.02, 1.02)
            ax.set_xlabel(f"{lab}\n(dots: seeds; bar: mean and t-interval)", fontsize=9)
            if k == "ood_auroc":
                ax.axvline(0.5, color="grey", ls="--", lw=1)
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        return fig
    arms, effects = res["arms"], res["effects"]
    n = max(len(arms), len(effects), 1)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 0.9 + 0.42 * n))
    names = list(arms)
    _interval_bars(a1, names, [arms[k] for k in names])
    lo = min([arms[k]["low"] if arms[k].get("low") is not None else arms[k]["mean"] for k in names] + [1.0])
    if rec["experiment"] in MEASURE_NAMES:  # shares, not accuracies: scale to the largest
        a1.set_xlim(0.0, 1.15 * max([arms[k]["high"] if arms[k].get("high") is not None else arms[k]["mean"]
                                     for k in names] + [1e-3]))
    else:
        a1.set_xlim(max(0.0, lo - 0.05), 1.0)
    a1.set_xlabel(f"{MEASURE_NAMES.get(rec['experiment'], 'accuracy')}, mean over seeds (t-interval; dots: seeds)",
                  fontsize=9)
    enames = list(effects)
    _interval_bars(a2, [f"{effects[k]['a']} - {effects[k]['b']}" for k in enames], [effects[k] for k in enames],
                   scale=100.0, zero=True)
    a2.set_xlabel("paired difference, percentage points (t-interval over seeds)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_audit(rec: dict):
    """One figure per audit record: bars with 95 % intervals (loss curves for ``loss_equivalence``)."""
    import matplotlib.pyplot as plt

    from ..runs.records import provenance_label

    aid = rec["experiment"]
    title = f"{AUDITS[aid]['title']}  ({provenance_label(rec)})"
    if rec.get("status") != "complete":
        fig, ax = plt.subplots(figsize=(7, 1.2))
        ax.axis("off")
        ax.text(0.01, 0.5, rec.get("reason", "not run"), fontsize=10, va="center")
        ax.set_title(title, fontsize=10)
        return fig
    res = rec["results"]
    if aid in SEEDED_AUDITS:
        return _plot_seeded(rec, title)
    if aid == "loss_equivalence":
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.2))
        for i, (k, c) in enumerate(res["curves"].items()):
            a1.plot(np.arange(1, len(c) + 1), c, lw=2.5 - 0.8 * i, ls=("-", "--", ":")[i % 3], label=k)
        a1.set_xlabel("step")
        a1.set_ylabel("training loss")
        a1.legend(fontsize=8)
        a1.set_title("per-step loss (three curves overlaid)", fontsize=10)
        names = list(res["curves"])
        base = np.array(res["curves"][names[0]])
        for k in names[1:]:
            d = np.abs(np.array(res["curves"][k]) - base)
            a2.semilogy(np.arange(1, len(d) + 1), np.maximum(d, 1e-12), label=f"|{k} - {names[0]}|")
        a2.axhline(res["tolerance"], color="grey", ls="--", lw=1)
        a2.set_xlabel("step")
        a2.set_ylabel("absolute difference (floor 1e-12)")
        a2.legend(fontsize=8)
        a2.set_title("difference between curves", fontsize=10)
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        return fig
    rows = rec["rows"]
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * max(len([r for r in rows if r.get('low') is not None]), 1)))
    if aid == "shortcut_colour":
        _bars(ax, [r for r in rows if r["metric"] == "accuracy"], title, res["majority_rate"], "majority class")
    elif aid == "external_pbc":
        _bars(ax, rows, title, None)
        ax.set_xlabel("fraction of PBC lymphocytes called Benign (Wilson 95 % interval); all are normal")
    else:
        _bars(ax, rows, title, 1.0 / max(len(rec["dataset"].get("counts") or {0: 1, 1: 1}), 1), "chance")
    fig.tight_layout()
    return fig


def data_banner(rec: dict) -> str:
    """A loud markdown banner when the audit's data are synthetic; a plain line otherwise."""
    ds = rec.get("dataset", {})
    if rec.get("status") != "complete":
        return f"**Not run**: {rec.get('reason', '')}\n"
    if ds.get("id") == "synthetic":
        return (f"```{{warning}}\nSYNTHETIC DATA ({ds.get('note', '')}): the numbers of this audit describe the "
                f"generator, not {ds.get('stands_in_for')}. Rerun with the real data.\n```\n")
    line = (f"Data: `{ds.get('id')}` ({ds.get('n_images')} images, fingerprint `{ds.get('fingerprint')}`), "
            f"profile `{rec['profile']}`.")
    ext = rec.get("external_dataset")
    if ext:
        if ext.get("id") == "synthetic":
            return (line + f"\n\n```{{warning}}\nSYNTHETIC external set ({ext.get('note', '')}): the fractions below "
                    f"describe the generator, not {ext.get('stands_in_for')}.\n```\n")
        line += f" External: `{ext.get('id')}` ({ext.get('n_images')} images)."
    return line + "\n"


def plot_variant_examples(data_root=None, n: int = 3, size: int = 224, seed: int = 0):
    """``n`` taleqani-all originals (one per class, seeded) as the ``shortcut_cnn`` arms see them, and
    the same images from the Segmented variant.

    Columns: original, grey, Reinhard (target: the pooled statistics of the shown images),
    scale bar masked and control corner masked (each masked box outlined), segmented.
    Synthetic images when the data are absent.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from ..filters import reinhard_target

    data = audit_data("taleqani-all", "smoke", data_root, seed=seed, cap=False, variant="original")
    t = data.table
    rng = np.random.default_rng(seed)
    rows = [int(rng.choice(np.flatnonzero(t["label"].to_numpy() == c))) for c in sorted(t["label"].unique())][:n]
    sub = t.iloc[rows].reset_index(drop=True)
    sub.attrs = dict(t.attrs)
    x, kept = D.load_images(sub, size)
    try:
        xs, _ = D.load_images(segmented_table(kept, audit_profile("smoke"), data_root, seed), size)
    except (D.DataError, KeyError):
        xs = None
    stats = reinhard_target(x)
    variants = VARIANTS + (("segmented",) if xs is not None else ())
    fig, axes = plt.subplots(len(x), len(variants), figsize=(2.0 * len(variants), 2.1 * len(x)), squeeze=False)
    boxes = {"mask_scale_bar": mask_box(size, size, "bottom-right"), "mask_control": mask_box(size, size, "top-left")}
    for i in range(len(x)):
        for j, v in enumerate(variants):
            ax = axes[i, j]
            ax.imshow(xs[i] if v == "segmented" else apply_variant(x[i:i + 1], v, stats)[0])
            ax.set_xticks([])
            ax.set_yticks([])
            if v in boxes:
                y0, y1, x0, x1 = boxes[v]
                ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="red", lw=1))
            if i == 0:
                ax.set_title(v.replace("_", " "), fontsize=9)
        axes[i, 0].set_ylabel(kept["class_name"].iat[i], fontsize=9)
    label = "SYNTHETIC stand-in" if data.dataset_id == "synthetic" else data.dataset_id
    fig.suptitle(f"The inputs of the arms ({label})", fontsize=10)
    fig.tight_layout()
    return fig


def model_choice(results_dir=None, profile: str = "audit") -> dict:
    """The measurements behind the choice of the audit CNN: DSCNet's wall time at 224 px on a CPU (the
    Vijayalakshmi paper-profile record run there, if any), the number of trainings the audits need at
    ``profile``, and the audit CNN's mean wall time per trained arm and accuracy on the originals."""
    from ..runs.records import load_records

    out: dict[str, Any] = {"dscnet_cpu_s": None, "dscnet_image_size": None, "dscnet_accuracy": None}
    for r in load_records("dscnet_vijayalakshmi", "paper", root=results_dir):
        if r.get("experiment") == "dscnet" and "CPU" in str(r.get("device")):
            out.update(dscnet_cpu_s=float(r["wall_time_s"]), dscnet_image_size=r.get("settings", {}).get("image_size"),
                       dscnet_accuracy=r.get("metrics", {}).get("accuracy"), dscnet_device=r.get("device"))
            break
    trained, secs = 0, []
    for a in SEEDED_AUDITS:
        for seed_recs in arm_records(a, profile, results_dir).values():
            for rec in seed_recs.values():
                t = rec["results"].get("training")
                if t and not t.get("from_cache"):
                    trained += 1
                    secs.append(float(rec["wall_time_s"]))
    out.update(trainings=trained, audit_cnn_mean_s=float(np.mean(secs)) if secs else None)
    if out["dscnet_cpu_s"] and trained:
        out["dscnet_all_hours"] = out["dscnet_cpu_s"] * trained / 3600.0
    s = load_summary("shortcut_cnn", profile, results_dir)
    out["audit_cnn_original"] = s["results"]["arms"]["original"] if s else None
    return out


def _examples(data_root, n_per_class: int, seed: int):
    """``n_per_class`` taleqani-all originals of each class (seeded), at the native side, with their table."""
    from .base import NATIVE_SIZE

    data = audit_data("taleqani-all", "smoke", data_root, seed=seed, cap=False, variant="original")
    t = data.table
    rng = np.random.default_rng(seed)
    rows = [int(i) for c in sorted(t["label"].unique())
            for i in rng.choice(np.flatnonzero(t["label"].to_numpy() == c), n_per_class, replace=False)]
    sub = t.iloc[rows].reset_index(drop=True)
    sub.attrs = dict(t.attrs)
    x, kept = D.load_images(sub, NATIVE_SIZE)
    return x, kept, ("SYNTHETIC stand-in" if data.dataset_id == "synthetic" else data.dataset_id)


def plot_corner_crops(data_root=None, n_per_class: int = 6, seed: int = 0):
    """What ``scale_bar_alone`` shows its classifiers: the scale-bar corner and the opposite corner of
    ``n_per_class`` images per class, side by side by class, in colour and in grey, at the native side."""
    import matplotlib.pyplot as plt

    from ..filters import to_grey
    from .inputs import corner_crop

    x, kept, label = _examples(data_root, n_per_class, seed)
    names = list(dict.fromkeys(kept["class_name"]))
    panels = (("scale-bar corner", "bottom-right", False), ("opposite corner", "top-left", False),
              ("scale-bar corner, grey", "bottom-right", True))
    fig, axes = plt.subplots(len(names), len(panels), figsize=(3.4 * len(panels), 1.0 + 0.75 * len(names)),
                             squeeze=False)
    for i, name in enumerate(names):
        xi = x[(kept["class_name"] == name).to_numpy()]
        for j, (title, corner, grey) in enumerate(panels):
            crops = corner_crop(to_grey(xi) if grey else xi, corner)
            gap = np.full((crops.shape[1], 3, 3), 255, np.uint8)
            row = np.concatenate([c for k in crops for c in (k, gap)][:-1], axis=1)
            ax = axes[i, j]
            ax.imshow(row)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=9)
        axes[i, 0].set_ylabel(name, fontsize=9, rotation=0, ha="right", va="center")
    h, w = corner_crop(x[:1], "bottom-right").shape[1:3]
    fig.suptitle(f"{h} x {w} px corner crops at the native side, {n_per_class} images per class ({label})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_regions(data_root=None, n: int = 1, seed: int = 0):
    """What ``background_alone`` reads: for ``n`` images per class, the original, the cells alone and the
    background alone (grey where a region leaves pixels out), from the Segmented copies' cell masks."""
    import matplotlib.pyplot as plt

    from .background_alone import region_masks
    from .base import NATIVE_SIZE

    x, kept, label = _examples(data_root, n, seed)
    try:
        seg, _ = D.load_images(segmented_table(kept, audit_profile("smoke"), data_root, seed), NATIVE_SIZE)
    except (D.DataError, KeyError):
        return None
    masks = region_masks(seg, audit_settings("background_alone", "smoke"))
    cols = (("original", None), ("cells alone", "cells"), ("background alone", "background"))
    fig, axes = plt.subplots(len(x), len(cols), figsize=(2.3 * len(cols), 2.3 * len(x)), squeeze=False)
    for i in range(len(x)):
        for j, (title, region) in enumerate(cols):
            img = x[i].copy()
            if region:
                img[~masks[region][i]] = 128
            axes[i, j].imshow(img)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            if i == 0:
                axes[i, j].set_title(title, fontsize=9)
        axes[i, 0].set_ylabel(kept["class_name"].iat[i], fontsize=9)
    fig.suptitle(f"Regions the colour histogram sees ({label}); grey: left out", fontsize=10)
    fig.tight_layout()
    return fig


def plot_foreground_fractions(rec: dict):
    """The Segmented copies' foreground fraction per image, by class (``segmented_artefacts``'s
    ``foreground_fraction`` arm record), on a log scale, with the nearly-empty and almost-black cuts."""
    import matplotlib.pyplot as plt

    r = rec["results"]
    st = rec["settings"]["segmentation"]
    frac = np.asarray(r["per_image"]["fraction"], float)
    cls = np.array([i.split("/")[1] for i in r["per_image"]["id"]])  # ids: <variant>/<class>/<file>
    names = [k for k in r["per_class"] if k != "all"]
    by_name = {n: frac[cls == n] for n in names}
    fig, ax = plt.subplots(figsize=(8, 0.8 + 0.6 * len(names)))
    rng = np.random.default_rng(0)
    floor = 1e-5
    for y0, n in enumerate(names[::-1]):
        v = np.maximum(by_name[n], floor)
        ax.plot(v, y0 + rng.uniform(-0.25, 0.25, len(v)), ".", ms=3, alpha=0.5, color="#4c72b0")
        pc = r["per_class"][n]
        ax.text(1.2, y0, f"{pc['nearly_empty']} / {pc['n']}", fontsize=8, va="center")
    ax.set_xscale("log")
    ax.set_xlim(floor / 2, 1.0)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names[::-1], fontsize=9)
    for cut, lab in ((st["nearly_empty_fraction"], "nearly empty"), (st["almost_black_fraction"], "almost black")):
        ax.axvline(cut, color="#b91c1c", ls="--", lw=1)
        ax.text(cut, len(names) - 0.45, f" {lab}", fontsize=8, color="#b91c1c")
    ax.set_xlabel(f"share of the image the segmentation keeps (a pixel is cell when {st['cell']}; "
                  f"right: nearly empty / images)", fontsize=9)
    fig.suptitle(f"The Segmented copies' foreground fraction per image ({rec['profile']}, seed {rec['seed']})",
                 fontsize=10)
    fig.tight_layout()
    return fig


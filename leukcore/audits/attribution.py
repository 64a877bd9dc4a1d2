"""Where the models look: the share of each Grad-CAM map that falls in the scale-bar corner, against the control
corner of the same size, over every test image; for the audit CNN trained on the original images (the
``shortcut_cnn`` original model of the same seed) and for every paper-profile CNN whose weights are kept."""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from .arms import (
    pc_text,
    pp_text,
    register_arms,
    register_headline,
    register_summary,
    seeds_text,
    taleqani_context,
    train_audit_cnn,
    training_block,
)
from .inputs import mask_box
from .stats import from_bits
from .training import predict_on


def box_shares(cams: np.ndarray, box: tuple[float, float], corners: dict[str, str]) -> dict[str, np.ndarray]:
    """Per map, the share of its total mass inside each named corner box (:func:`mask_box`): ``{name: (N,)}``;
    NaN for a map that is zero everywhere."""
    h, w = cams.shape[1:3]
    total = cams.reshape(len(cams), -1).sum(axis=1)
    out = {}
    for name, corner in corners.items():
        y0, y1, x0, x1 = mask_box(h, w, corner, box)
        inside = cams[:, y0:y1, x0:x1].reshape(len(cams), -1).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.where(total > 0, inside / np.where(total > 0, total, 1), np.nan)
    return out


def cam_shares(model, x: np.ndarray, st: dict, batch: int = 64) -> dict:
    """Grad-CAM (:func:`leukcore.engine.explain.grad_cam`, predicted class) of every image in ``x``, in batches,
    reduced to :func:`box_shares` of the settings' corners: each corner's mean share over the images (and the
    images with a non-zero map), and the share a uniform map would give."""
    from ..engine.explain import grad_cam

    box = tuple(st["crop"]["box"])
    shares: dict[str, list] = {k: [] for k in st["crop"]["corners"]}
    for i in range(0, len(x), batch):
        s = box_shares(grad_cam(model, x[i:i + batch]), box, st["crop"]["corners"])
        for k in shares:
            shares[k].append(s[k])
    per = {k: np.concatenate(v) if v else np.zeros(0) for k, v in shares.items()}
    y0, y1, x0, x1 = mask_box(x.shape[1], x.shape[2], "bottom-right", box)
    ok = np.isfinite(next(iter(per.values()))) if per else np.zeros(0, bool)
    return {"mean_share": {k: float(np.nanmean(v)) if np.isfinite(v).any() else None for k, v in per.items()},
            "n_maps": int(ok.sum()), "n_images": int(len(x)),
            "uniform_share": (y1 - y0) * (x1 - x0) / float(x.shape[1] * x.shape[2]),
            "side": int(x.shape[1])}


def share_measures(prefix: str, shares: dict) -> dict:
    """The arm's measures: ``<prefix>@<corner>`` -> the mean share (``value``) over ``n`` maps."""
    return {f"{prefix}@{k}": {"value": v, "n": shares["n_maps"]} for k, v in shares["mean_share"].items()
            if v is not None}


def paper_cnn_records(seed: int, results_dir=None) -> list[dict]:
    """The complete paper-profile CNN records of ``seed`` on real data (every paper)."""
    from ..evaluation.claims import list_papers
    from ..runs.protocols import get_experiment
    from ..runs.records import load_records

    out = []
    for paper in list_papers():
        for r in load_records(paper, "paper", root=results_dir):
            try:
                route = get_experiment(paper, r["experiment"]).route
            except (ValueError, KeyError):
                continue
            if route == "cnn" and int(r.get("seed") or 0) == int(seed) and r.get("dataset", {}).get("id") != "synthetic":
                out.append(r)
    return out


def paper_model_shares(rec: dict, st: dict, data_root=None) -> dict:
    """Grad-CAM shares of one paper-profile record's kept final weights over its own test images."""
    import torch

    from .. import data as D
    from ..runs.inputs import experiment_data
    from ..runs.protocols import get_experiment
    from ..runs.routes import new_model
    from ..runs.profiles import get_profile
    from ..runs.records import read_predictions

    exp = get_experiment(rec["paper"], rec["experiment"])
    model, _ = new_model(exp.model, len(rec["class_names"]), {**rec["settings"], "pretrained": False},
                         **rec["settings"].get("model_kw", {}))
    model.load_state_dict(torch.load(weights_of(rec), map_location="cpu", weights_only=True))
    ids = list(read_predictions(rec)["id"])
    ed = experiment_data(rec["paper"], exp, get_profile(rec["profile"]), data_root, seed=rec.get("seed") or 0)
    t = ed.table.set_index("id", drop=False).loc[[i for i in ids if i in set(ed.table["id"])]].reset_index(drop=True)
    x, _ = D.load_images(t, rec["settings"]["image_size"], on_bad="skip")
    return cam_shares(model, x, st, batch=16)


def weights_of(rec: dict):
    from ..runs.routes import final_weights_path

    return final_weights_path(rec)


@register_arms("attribution")
def _arm_attribution(arm: str, prof, st, data_root, seed, device, progress) -> tuple[dict, dict]:
    from .seeded import find_arm_record

    c = taleqani_context("attribution", prof, st, data_root, seed, device)
    x, y, tr, te = c["x"], c["y"], c["tr"], c["te"]
    res: dict[str, Any] = {}
    if arm == "audit_cnn":
        model, info, cached = train_audit_cnn(st, c, x[tr], y[tr], seed, device, progress)
        shares = cam_shares(model, x[te], st)
        correct = predict_on(model, x[te], device).argmax(1) == y[te]
        ref = find_arm_record("shortcut_cnn", "original", prof.name, seed=seed, data_root=data_root)
        same = None
        if ref is not None and ref["results"]["eval"].get("test_index") == [int(i) for i in te]:
            same = float((from_bits(ref["results"]["eval"]["correct"]).astype(bool) == correct).mean())
        res.update(shares=shares, training=training_block(info, cached), accuracy=float(correct.mean()),
                   agrees_with_shortcut_cnn=same, measures=share_measures("audit_cnn", shares))
    else:
        found, missing = [], []
        measures: dict = {}
        for rec in paper_cnn_records(seed):
            name = f"{rec['paper']}/{rec['experiment']}"
            if not weights_of(rec).is_file():
                missing.append({"record": name, "device": rec.get("device"),
                                "why": "its final weights are not on this machine (weights are not committed)"})
                continue
            shares = paper_model_shares(rec, st, data_root)
            found.append({"record": name, "shares": shares, "accuracy": rec["metrics"].get("accuracy"),
                          "weights_sha256": hashlib.sha256(weights_of(rec).read_bytes()).hexdigest(),
                          "weights_device": rec.get("device")})
            measures.update(share_measures(name, shares))
        res.update(models=found, without_weights=missing, measures=measures)
    return res, c["data"].describe()


@register_summary("attribution")
def _summary(by_seed: dict, seeds: list, results: dict) -> dict:
    cnn = {s: by_seed[s]["audit_cnn"]["results"] for s in seeds}
    papers = {s: by_seed[s]["paper_cnns"]["results"] for s in seeds}
    uniform = {"audit_cnn": cnn[seeds[0]]["shares"]["uniform_share"]}
    uniform.update({m["record"]: m["shares"]["uniform_share"] for r in papers.values() for m in r["models"]})
    return {"uniform_share": uniform,
            "side": cnn[seeds[0]]["shares"]["side"],
            "audit_cnn_accuracy": {int(s): r["accuracy"] for s, r in cnn.items()},
            "agrees_with_shortcut_cnn": {int(s): r["agrees_with_shortcut_cnn"] for s, r in cnn.items()},
            "paper_models": sorted({m["record"] for r in papers.values() for m in r["models"]}),
            "paper_model_seeds": {name: [int(s) for s, r in papers.items() if any(m["record"] == name for m in r["models"])]
                                  for name in sorted({m["record"] for r in papers.values() for m in r["models"]})},
            "paper_models_without_weights": sorted({m["record"] for r in papers.values() for m in r["without_weights"]})}


@register_headline("attribution")
def _headline(res: dict) -> str:
    a, e = res["arms"], res["effects"]
    kept = ("paper-profile models with kept weights: " + ", ".join(
                f"{m} (seed {', '.join(map(str, res['paper_model_seeds'][m]))})" for m in res["paper_models"])
            if res["paper_models"] else
            f"no paper-profile weights on this machine ({len(res['paper_models_without_weights'])} records checked)")
    return (f"The audit CNN puts {pc_text(a['audit_cnn@bar'])} of its Grad-CAM mass in the scale-bar corner and "
            f"{pc_text(a['audit_cnn@control'])} in the control corner ({pp_text(e['audit_cnn'])}; a uniform map: "
            f"{100 * res['uniform_share']['audit_cnn']:.1f} % each); {kept} ({seeds_text(res)}).")

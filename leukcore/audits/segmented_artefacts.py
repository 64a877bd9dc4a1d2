"""The Segmented copies measured before they are used: how much of each image the dataset's segmentation kept
(the foreground fraction, per image and per class), how many copies are nearly empty, whether that one number
gives the class away, and the background-removed audit repeated without the nearly-empty copies."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import data as D
from .arms import (
    CONTEXTS,
    evaluation_block,
    measured,
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
from .base import NATIVE_SIZE, class_names_of, combined_fingerprint, row_index
from .inputs import foreground_fraction, full_proba
from .segmented import colour_fit_predict, segmented_images, segmented_table
from .training import predict_on


def native_segmented(ctx: dict, prof, data_root, seed: int) -> np.ndarray:
    """The Segmented copies of the context's images (same rows, same order) at :data:`NATIVE_SIZE`."""
    seg = segmented_table(ctx["table"], prof, data_root, seed)
    return D.load_images(seg, NATIVE_SIZE)[0]


def fractions_of(ctx: dict, prof, st: dict, data_root, seed: int) -> np.ndarray:
    """:func:`foreground_fraction` of every image of the context, at the native side; cached per process."""
    key = ("foreground-fractions", prof.name, str(data_root), int(seed), len(ctx["table"]))
    if key not in CONTEXTS:
        CONTEXTS[key] = {"f": foreground_fraction(native_segmented(ctx, prof, data_root, seed),
                                                  st["segmentation"]["threshold"])}
    return CONTEXTS[key]["f"]


def fraction_summary(fractions: np.ndarray, labels: np.ndarray, names: list[str], nearly_empty: float,
                     almost_black: float) -> dict:
    """Per class (and overall): images, the foreground fraction's median, quartiles, minimum and mean, and how
    many images fall below ``nearly_empty`` and ``almost_black``; plus how many keep no cell pixel at all."""
    out = {}
    for k, name in [(None, "all")] + list(enumerate(names)):
        f = fractions if k is None else fractions[labels == k]
        out[name] = {"n": int(len(f)), "median": float(np.median(f)) if len(f) else None,
                     "q1": float(np.quantile(f, 0.25)) if len(f) else None,
                     "q3": float(np.quantile(f, 0.75)) if len(f) else None,
                     "min": float(f.min()) if len(f) else None, "mean": float(f.mean()) if len(f) else None,
                     "nearly_empty": int((f < nearly_empty).sum()), "almost_black": int((f < almost_black).sum()),
                     "empty": int((f == 0).sum())}
    return out


def clean_context(c: dict, prof, st: dict, data_root, seed: int) -> dict:
    """The context restricted to the images whose Segmented copy is not nearly empty, split anew (stratified
    80/20, duplicate-aware, seeded): ``keep`` (their rows in the full context), ``table``, ``tr``, ``te``."""
    key = ("clean", prof.name, str(data_root), int(seed), len(c["table"]))
    if key not in CONTEXTS:
        keep = np.flatnonzero(fractions_of(c, prof, st, data_root, seed) >= st["segmentation"]["nearly_empty_fraction"])
        table = c["table"].iloc[keep].reset_index(drop=True)
        table.attrs = dict(c["table"].attrs)
        split = D.split_fractions(table, st["split"]["fractions"], seed=seed, group_by="duplicates")
        CONTEXTS[key] = {"keep": keep, "table": table, "tr": row_index(table, split["train"]),
                         "te": row_index(table, split["test"])}
    return CONTEXTS[key]


def fraction_fit_predict(f_train, y_train, f_test, n_classes: int, seed: int) -> np.ndarray:
    """The one-number classifier: a standardised logistic regression on the foreground fraction."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, random_state=seed))
    clf.fit(np.asarray(f_train).reshape(-1, 1), y_train)
    return full_proba(clf, np.asarray(f_test).reshape(-1, 1), n_classes)


def segmented_dataset(c: dict, prof, data_root, seed: int) -> dict:
    """The record's ``dataset``: the originals' description with the fingerprint of originals and Segmented copies."""
    ds = c["data"].describe()
    seg_fp = D.fingerprint(segmented_table(c["table"], prof, data_root, seed))
    return {**ds, "fingerprint": combined_fingerprint(ds["fingerprint"], seg_fp),
            "original_fingerprint": ds["fingerprint"], "segmented_fingerprint": seg_fp}


@register_arms("segmented_artefacts")
def _arm_segmented_artefacts(arm: str, prof, st, data_root, seed, device, progress) -> tuple[dict, dict]:
    c = taleqani_context("segmented_artefacts", prof, st, data_root, seed, device)
    names, sg = c["names"], st["segmentation"]
    frac = fractions_of(c, prof, st, data_root, seed)
    res: dict[str, Any] = {}
    if arm == "foreground_fraction":
        y, tr, te = c["y"], c["tr"], c["te"]
        ev = evaluation_block(y[te], fraction_fit_predict(frac[tr], y[tr], frac[te], len(names), seed), names, te)
        res.update(eval=ev, measures={arm: measured(ev)}, n_train=int(len(tr)), n_test=int(len(te)),
                   per_class=fraction_summary(frac, y, names, sg["nearly_empty_fraction"], sg["almost_black_fraction"]),
                   per_image={"id": list(c["table"]["id"]), "fraction": [round(float(v), 6) for v in frac]},
                   test_majority_rate=float(np.bincount(y[te], minlength=len(names)).max() / max(len(te), 1)))
        return res, segmented_dataset(c, prof, data_root, seed)
    cc = clean_context(c, prof, st, data_root, seed)
    keep, tr, te = cc["keep"], cc["tr"], cc["te"]
    key = ("segmented-images", prof.name, str(data_root), int(seed), st["image_size"])
    if key not in CONTEXTS:
        CONTEXTS[key] = dict(zip(("x", "ds"), segmented_images(c, prof, st, data_root, seed)))
    x, xs, y = c["x"][keep], CONTEXTS[key]["x"][keep], c["y"][keep]
    res.update(n_images=int(len(keep)), n_left_out=int(len(c["table"]) - len(keep)), n_train=int(len(tr)),
               n_test=int(len(te)), counts={n: int((y == k).sum()) for k, n in enumerate(class_names_of(cc["table"]))})
    if arm in ("original", "segmented"):
        src = x if arm == "original" else xs
        model, info, cached = train_audit_cnn(st, c, src[tr], y[tr], seed, device, progress)
        ev = evaluation_block(y[te], predict_on(model, src[te], device), names, keep[te])
        res.update(eval=ev, training=training_block(info, cached), measures={arm: measured(ev)})
        if arm == "original":
            e = evaluation_block(y[te], predict_on(model, xs[te], device), names, keep[te])
            res["test_time"] = {"segmented": e}
            res["measures"]["original@segmented"] = measured(e)
    else:
        src = x if arm == "colour_hist_original" else xs
        ev = evaluation_block(y[te], colour_fit_predict(st, src[tr], y[tr], src[te], len(names), seed), names, keep[te])
        res.update(eval=ev, measures={arm: measured(ev)})
    return res, segmented_dataset(c, prof, data_root, seed)


@register_summary("segmented_artefacts")
def _summary(by_seed: dict, seeds: list, results: dict) -> dict:
    first = by_seed[seeds[0]]
    ff = first["foreground_fraction"]["results"]
    return {"per_class": ff["per_class"], "segmentation": by_seed[seeds[0]]["foreground_fraction"]["settings"]["segmentation"],
            "n_images": first["segmented"]["results"]["n_images"],
            "n_left_out": first["segmented"]["results"]["n_left_out"], "counts": first["segmented"]["results"]["counts"],
            "test_majority_rate": float(np.mean([by_seed[s]["foreground_fraction"]["results"]["test_majority_rate"]
                                                 for s in seeds]))}


@register_headline("segmented_artefacts")
def _headline(res: dict) -> str:
    a, e, pc = res["arms"], res["effects"], res["per_class"]
    worst = max((k for k in pc if k != "all"), key=lambda k: pc[k]["nearly_empty"])
    return (f"{pc[worst]['nearly_empty']} of {pc[worst]['n']} {worst} copies are nearly empty "
            f"({pc['all']['nearly_empty']} of {pc['all']['n']} in all; {pc[worst]['almost_black']} {worst} copies almost "
            f"black); the foreground fraction alone classifies {pc_text(a['foreground_fraction'])}; without the nearly-"
            f"empty copies the CNN on segmented images changes by {pp_text(e['segmented'])} against the originals "
            f"({seeds_text(res)}).")

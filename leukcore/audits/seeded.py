"""Seeded audits: one record per arm and seed (written at once, reused when its key matches), and
the audit's summary over seeds: means with t-intervals, paired differences, McNemar per seed."""
from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np

from .. import data as D
from ..runs.records import (
    check_record,
    code_block,
    code_snapshot,
    current_code_state,
    device_description,
    git_commit,
    library_versions,
    read_complete,
    read_record,
    settings_hash,
    write_record,
)
from ..runs.records import results_dir as results_root
from .base import (
    ARMS,
    AUDIT_MODEL,
    AUDIT_BUDGET,
    AUDITS,
    MIN_ORIGINAL_ACCURACY,
    PAPER,
    PAPER_AUGMENTED_PER_CLASS,
    SEEDED_AUDITS,
    audit_data,
    audit_profile,
    audit_settings,
    cap_per_class,
    check_audit,
    combined_fingerprint,
    default_seeds,
    resolve_audit_device,
    taleqani_data,
)
from .arms import (
    ARM_FUNCTIONS,
    EFFECTS,
    EXTERNAL_METRICS,
    HEADLINES,
    MEASURE_NAMES,
    OOD_AUROC_SEPARATES,
    SUMMARY_EXTRAS,
    arm_record_path,
    check_arm,
    pc_text,
    pp_text,
    seeds_text,
)
from .segmented import segmented_table


def find_arm_record(audit_id: str, arm: str, profile: str = "smoke", *, seed: int = 0, results_dir=None,
                    data_root=None, fingerprint: str | None = None) -> dict | None:
    """The complete record of one arm and seed with the same key, else ``None``.

    Key: paper ``"audits"``, audit, arm, profile, seed, settings hash (:func:`audit_settings`) and
    the data fingerprint the audit would use now (:func:`audit_fingerprint`; pass ``fingerprint``
    to skip recomputing it).
    """
    check_arm(audit_id, arm)
    rec = read_complete(arm_record_path(audit_id, arm, profile, seed, results_dir), seed)
    if rec is None or rec.get("arm") != arm:
        return None
    if rec.get("settings_hash") != settings_hash(audit_settings(audit_id, profile)):
        return None
    fp = fingerprint if fingerprint is not None else audit_fingerprint(audit_id, profile, data_root, seed)
    if rec.get("dataset", {}).get("fingerprint") != fp:
        return None
    rec["_path"] = str(arm_record_path(audit_id, arm, profile, seed, results_dir))
    return rec


def run_arm(audit_id: str, arm: str, profile: str = "smoke", *, seed: int = 0, data_root=None, results_dir=None,
            device: str = "auto", progress: bool = False, write: bool = True) -> dict:
    """Train (or evaluate) one arm of a seeded audit for one seed; write its record at once and return it."""
    check_arm(audit_id, arm)
    prof = audit_profile(profile)
    st = audit_settings(audit_id, profile)
    dev = resolve_audit_device(device)
    with code_snapshot(profile):
        t0 = time.perf_counter()
        results, ds = ARM_FUNCTIONS[audit_id](arm, prof, st, data_root, seed, dev, progress)
        extra = ds if "dataset" in ds else {"dataset": ds}
        code = current_code_state()
        rec = {"status": "complete", "paper": PAPER, "experiment": audit_id, "arm": arm,
               "title": AUDITS[audit_id]["title"], "profile": prof.name, "seed": int(seed), "settings": st,
               "settings_hash": settings_hash(st), **extra, "results": results,
               "commit": git_commit(state=code), "code": code_block(code)[0], "_diff": code_block(code)[1],
               "versions": library_versions(), "device": device_description(dev),
               "wall_time_s": round(time.perf_counter() - t0, 2)}
    if write:
        path = arm_record_path(audit_id, arm, prof.name, seed, results_dir)
        rec["_path"] = str(write_record(rec, path=path))
    return rec


def get_or_run_arm(audit_id: str, arm: str, profile: str = "smoke", *, seed: int = 0, force: bool = False,
                   data_root=None, results_dir=None, device: str = "auto", progress: bool = False) -> dict:
    """The arm's record with the same key (:func:`find_arm_record`), else :func:`run_arm`."""
    if not force:
        rec = find_arm_record(audit_id, arm, profile, seed=seed, results_dir=results_dir, data_root=data_root)
        if rec is not None:
            return rec
    return run_arm(audit_id, arm, profile, seed=seed, data_root=data_root, results_dir=results_dir, device=device,
                   progress=progress)


def arm_records(audit_id: str, profile: str, results_dir=None) -> dict[int, dict[str, dict]]:
    """``{seed: {arm: record}}`` of the complete arm records on disk with the current settings hash
    (a damaged or self-contradicting one raises :class:`leukcore.runs.records.RecordError`)."""
    h = settings_hash(audit_settings(audit_id, profile))
    folder = results_root(results_dir) / PAPER / profile / audit_id
    out: dict[int, dict[str, dict]] = {}
    for p in sorted(folder.glob("*.seed*.json")) if folder.is_dir() else []:
        rec = read_record(p)  # a damaged record stops the summary (RecordError), never drops a seed
        if rec.get("status") != "complete" or rec.get("settings_hash") != h or rec.get("arm") not in ARMS[audit_id]:
            continue
        check_record(rec)
        rec["_path"] = str(p)
        out.setdefault(int(rec["seed"]), {})[rec["arm"]] = rec
    return out


def measure_value(m: dict) -> float:
    """A measure's number: its accuracy, or its ``value`` when it is no accuracy (``attribution``'s shares)."""
    return m["accuracy"] if "accuracy" in m else m["value"]


def effect_list(audit_id: str, measures: dict) -> list[tuple[str, str, str, str]]:
    """The contrasts of :data:`EFFECTS`, plus, for ``attribution``, one per paper-profile model with kept weights
    (scale-bar corner over control corner, as for the audit CNN)."""
    out = list(EFFECTS[audit_id])
    if audit_id == "attribution":
        for name in sorted(n[:-len("@bar")] for n in measures if n.endswith("@bar") and not n.startswith("audit_cnn")):
            out.append((name, f"{name}@bar", f"{name}@control",
                        f"{name}'s Grad-CAM share in the scale-bar corner over its share in the control corner"))
    return out


def mcnemar_common(ma: dict, mb: dict) -> dict | None:
    """McNemar of two measures on the test images both share (``None`` when they share none, or when the measures
    are no accuracies)."""
    from .stats import from_bits, mcnemar_correct

    if "correct" not in ma or "correct" not in mb:
        return None
    ca, cb = from_bits(ma["correct"]), from_bits(mb["correct"])
    ia, ib = ma.get("test_index"), mb.get("test_index")
    if ia is None or ib is None:
        return None
    common, pa, pb = np.intersect1d(np.asarray(ia), np.asarray(ib), return_indices=True)
    if not len(common):
        return None
    out = mcnemar_correct(ca[pa], cb[pb])
    out["n_common"] = int(len(common))
    return out


def headline(audit_id: str, res: dict) -> str:
    if audit_id in HEADLINES:
        return HEADLINES[audit_id](res)
    a, e = res["arms"], res["effects"]
    seeds = seeds_text(res)
    if audit_id == "shortcut_cnn":
        return (f"Audit CNN on the original images {pc_text(a['original'])} ({seeds}); grey {pp_text(e['grey'])}, "
                f"stain-normalised {pp_text(e['reinhard'])}; scale-bar mask vs control mask {pp_text(e['scale_bar'])} "
                f"trained, {pp_text(e['test_scale_bar'])} at test time only.")
    if audit_id == "segmented":
        return (f"Trained and tested on the background-free images: {pc_text(a['segmented'])}, {pp_text(e['segmented'])} "
                f"against the original images; the original model on them {pp_text(e['test_segmented'])}; the colour "
                f"histogram on them {pc_text(a['colour_hist_segmented'])} ({seeds}).")
    if audit_id == "acquisition_groups":
        g = res.get("groups") or {}
        return (f"{g.get('n_groups')} acquisition groups (all {g.get('duplicate_pairs_together')} duplicate pairs "
                f"inside one group, class purity {100 * (g.get('class_purity') or math.nan):.1f} %); group-disjoint "
                f"split vs random split {pp_text(e['group_disjoint'])} ({seeds}).")
    if audit_id == "leakage_duplicates":
        return (f"Random split vs duplicate-aware split {pp_text(e['random'])} ({seeds}); at most "
                f"{res.get('max_test_with_twin')} test images have a byte-identical twin in training.")
    if audit_id == "leakage_augment":
        return (f"Augment-then-split vs split-then-augment: {pp_text(e['leak_own_test'])} on their own test sets, "
                f"{pp_text(e['leak_unseen'])} on originals neither saw ({seeds}).")
    if audit_id == "external_pbc":
        r = res["ranges"]
        return (f"Across {len(res['models'])} models trained on taleqani-all, {100 * r['benign_fraction']['min']:.1f}-"
                f"{100 * r['benign_fraction']['max']:.1f} % of the PBC lymphocytes are called Benign, with an OOD "
                f"AUROC of {r['ood_auroc']['min']:.2f}-{r['ood_auroc']['max']:.2f} (0.5 = PBC no less familiar "
                f"than Taleqani's own test images) ({seeds}).")
    return ""


def summary_deviations(audit_id: str, st: dict) -> list[str]:
    """The interpretations a seeded audit's summary states: how its models were trained (or that none was)."""
    t = st.get("train") or {}
    if audit_id == "choices":
        first = (f"interpretation: Kaur's models rerun at {st['image_size']} px, from scratch, Adam lr {t['lr']}, "
                 f"batch {t['batch_size']}, {t['loss']} loss, no augmentation, {t['epochs']} epochs, the last epoch's "
                 f"weights; the paper's 224 px and {AUDIT_BUDGET['paper']['choices_epochs']} epochs are left to a GPU")
    elif "patience" in t:
        first = (f"interpretation: audit CNN = {AUDIT_MODEL} (leukcore.models), {st['image_size']} px, Adam lr "
                 f"{t['lr']} with cosine decay, crop and flips only (no colour jitter: colour is what the audits "
                 f"vary), at most {t['epochs']} epochs, early stopping on {t['val_fraction']:.0%} of the "
                 f"training part (patience {t['patience']}, never before epoch {t['stop_from_epoch']})")
    else:
        first = "interpretation: no network is trained; each seed fits the classifier on its own split"
    return [first, "interpretation: intervals are Student-t intervals over seeds; effects are paired by seed (same "
                   "split, initial weights and data order within a seed)"]


def names_of_benign(arm_records: dict) -> str:
    """The name of the Benign class in an ``external_pbc`` arm record set (the first class)."""
    rec = next(iter(arm_records.values()))
    return list(rec["results"]["predicted_counts"])[rec["settings"]["benign_label"]]


def summarise_audit(audit_id: str, profile: str = "smoke", *, results_dir=None, write: bool = True) -> dict | None:
    """Pool the arm records of ``audit_id`` at ``profile`` into its summary record (``None`` when no seed
    has every arm).

    ``results``: ``seeds`` (those with every arm); ``arms``: per measure, its mean over every seed whose
    arm record holds it (``seeds``; a grid cut short still counts where it ran) with a t-interval
    (:func:`leukcore.audits.stats.t_interval`); ``effects``: per contrast of :data:`EFFECTS`, the paired
    differences a - b on the seeds both measures have, with a t-interval over them, the seeds' McNemar
    tests on the test images both share, and what the contrast isolates; plus each audit's own numbers
    (over the seeds with every arm). ``wall_time_s`` is the sum over the arm records.
    """
    from .stats import paired_differences, t_interval

    check_audit(audit_id)
    if audit_id not in SEEDED_AUDITS:
        raise ValueError(f"{audit_id!r} writes one record and needs no summary")
    prof = audit_profile(profile)
    st = audit_settings(audit_id, profile)
    by_seed = arm_records(audit_id, prof.name, results_dir)
    seeds = sorted(s for s, arms in by_seed.items() if set(ARMS[audit_id]) <= set(arms))
    if not seeds:
        return None
    for s in by_seed:  # the arms of one seed must have seen the same data (seeds may differ: capped profiles)
        fps = {r["dataset"].get("fingerprint") for r in by_seed[s].values()}
        if len(fps) > 1:
            raise ValueError(f"{audit_id}: the arm records of seed {s} at {profile} come from different data "
                             f"({sorted(map(str, fps))}); rerun the stale ones")
    # each measure over every seed that has its arm (a seed without every arm still counts for the arms it has);
    # each effect over the seeds both its measures have
    measures: dict[str, dict[int, dict]] = {}
    for s in sorted(by_seed):
        for a in ARMS[audit_id]:
            for name, m in (by_seed[s][a]["results"]["measures"].items() if a in by_seed[s] else ()):
                measures.setdefault(name, {})[s] = m
    arms = {name: {**t_interval([measure_value(per[s]) for s in sorted(per)], bounds=(0.0, 1.0)),
                   "seeds": sorted(int(s) for s in per),
                   "n_images": int(np.median([per[s]["n"] for s in per]))} for name, per in measures.items()}
    effects = {}
    for eff, a, b, what in effect_list(audit_id, measures):
        if a not in measures or b not in measures:
            continue
        d = paired_differences({s: measure_value(v) for s, v in measures[a].items()},
                               {s: measure_value(v) for s, v in measures[b].items()}, bounds=(-1.0, 1.0))
        mc = {int(s): mcnemar_common(measures[a][s], measures[b][s]) for s in d["seeds"]}
        effects[eff] = {**d, "a": a, "b": b, "isolates": what,
                        "mcnemar": {s: v for s, v in mc.items() if v is not None} or None}
    results: dict[str, Any] = {"seeds": seeds, "arms": arms, "effects": effects}
    first = by_seed[seeds[0]]
    train_info = [r["results"].get("training") for s in sorted(by_seed) for r in by_seed[s].values()
                  if r["results"].get("training")]
    fresh = [t for t in train_info if not t.get("from_cache")]
    results["training"] = {"models": len(train_info),
                           "epochs_run": [t["epochs_run"] for t in train_info],
                           "best_epochs": [t["best_epoch"] for t in train_info],
                           # early = before the last epoch (a stop signalled at the last epoch skips nothing)
                           "stopped_early": int(sum(t["epochs_run"] < st["train"]["epochs"] for t in train_info)),
                           "trained_here": len(fresh)}
    if audit_id == "shortcut_cnn":
        results["mask_boxes_px"] = first["original"]["results"]["mask_boxes_px"]
        results["min_original_accuracy"] = MIN_ORIGINAL_ACCURACY
        results["original_meets_minimum"] = bool(arms["original"]["mean"] >= MIN_ORIGINAL_ACCURACY)
    elif audit_id == "acquisition_groups":
        results["groups"] = first["group_disjoint"]["results"]["groups"]
        results["groups_in_test"] = [by_seed[s]["group_disjoint"]["results"]["groups_in_test"] for s in seeds]
    elif audit_id == "leakage_duplicates":
        tw = [by_seed[s]["random"]["results"]["test_with_twin"] for s in seeds]
        results.update(test_with_twin=dict(zip(map(int, seeds), tw)), max_test_with_twin=int(max(tw)),
                       duplicate_groups=first["random"]["results"]["duplicate_groups"],
                       max_effect=t_interval([by_seed[s]["random"]["results"]["max_effect"] for s in seeds]))
    elif audit_id == "leakage_augment":
        r0 = first["augment_then_split"]["results"]
        results.update(per_class=r0["per_class"], paper_per_class=PAPER_AUGMENTED_PER_CLASS, originals_used=r0["originals_used"], n_fresh=r0["n_fresh"],
                       test_source_in_train=t_interval([by_seed[s]["augment_then_split"]["results"]["test_source_in_train"]
                                                        for s in seeds]),
                       n_train={a: first[a]["results"]["n_train"] for a in ARMS[audit_id]})
    elif audit_id == "external_pbc":
        models = {}
        for a in ARMS[audit_id]:
            row = {}
            for k in EXTERNAL_METRICS:
                vals = [by_seed[s][a]["results"][k] for s in seeds]
                vals = [v["point"] if isinstance(v, dict) else v for v in vals]
                row[k] = t_interval(vals, bounds=(0.0, 1.0))  # fractions, confidences, AUROCs
            row["predicted_counts"] = {c: int(sum(by_seed[s][a]["results"]["predicted_counts"][c] for s in seeds))
                                       for c in first[a]["results"]["predicted_counts"]}
            models[a] = row
        results["models"] = models
        results["n_external"] = first["original"]["results"]["n_external"]
        results["ranges"] = {k: {"min": float(min(m[k]["mean"] for m in models.values())),
                                 "max": float(max(m[k]["mean"] for m in models.values())),
                                 "argmin": min(models, key=lambda n: models[n][k]["mean"]),
                                 "argmax": max(models, key=lambda n: models[n][k]["mean"])}
                             for k in EXTERNAL_METRICS}
        results["ood_auroc_separates"] = OOD_AUROC_SEPARATES
        results["ood_separating_models"] = [a for a, m in models.items() if m["ood_auroc"]["mean"] >= OOD_AUROC_SEPARATES]
        results["benign_majority_models"] = [a for a, m in models.items() if m["benign_fraction"]["mean"] > 0.5]
        groups = {}
        for g, names in (("separating", results["ood_separating_models"]),
                         ("others", [a for a in models if a not in results["ood_separating_models"]])):
            if not names:
                groups[g] = None
                continue
            counts: dict[str, int] = {}
            for a in names:
                for c, k in models[a]["predicted_counts"].items():
                    counts[c] = counts.get(c, 0) + k
            other = {c: k for c, k in counts.items() if c != names_of_benign(first)}
            groups[g] = {"models": names,
                         **{k: {"min": float(min(models[a][k]["mean"] for a in names)),
                                "max": float(max(models[a][k]["mean"] for a in names))}
                            for k in ("benign_fraction", "ood_auroc", "taleqani_benign_recall")},
                         "top_other_class": max(other, key=other.get) if other else None}
        results["ood_groups"] = groups
        spread = {a: (min(m["benign_fraction"]["values"]), max(m["benign_fraction"]["values"])) for a, m in models.items()}
        widest = max(spread, key=lambda a: spread[a][1] - spread[a][0])
        results["benign_fraction_seed_spread"] = {"model": widest, "min": spread[widest][0], "max": spread[widest][1]}
        cnn = {a: m for a, m in models.items() if a != "colour_hist"}
        results["cnn_ranges"] = {k: {"min": float(min(m[k]["mean"] for m in cnn.values())),
                                     "max": float(max(m[k]["mean"] for m in cnn.values()))} for k in EXTERNAL_METRICS}
    if audit_id in SUMMARY_EXTRAS:
        results.update(SUMMARY_EXTRAS[audit_id](by_seed, seeds, results))
    rows = []
    what = MEASURE_NAMES.get(audit_id, "accuracy")
    for name, d in arms.items():
        rows.append({"arm": name, "metric": f"{what}, mean over {d['n']} seeds", "point": d["mean"], "low": d["low"],
                     "high": d["high"], "n": d["n_images"], "note": "t-interval over seeds"})
    for eff, d in effects.items():
        ps = ", ".join(f"{v['p_value']:.2g}" for v in (d["mcnemar"] or {}).values())
        rows.append({"arm": f"{d['a']} - {d['b']}", "metric": "paired difference", "point": d["mean"], "low": d["low"],
                     "high": d["high"], "n": d["n"], "note": (f"McNemar p per seed: {ps}; " if ps else "") + d["isolates"]})
    if audit_id == "external_pbc":
        for a, m in results["models"].items():
            for k in ("benign_fraction", "ood_auroc", "taleqani_benign_recall"):
                rows.append({"arm": a, "metric": k.replace("_", " "), "point": m[k]["mean"], "low": m[k]["low"],
                             "high": m[k]["high"], "n": len(seeds), "note": "t-interval over seeds"})
    all_recs = [r for s in sorted(by_seed) for r in by_seed[s].values()]
    commits = sorted({str(r.get("commit")) for r in all_recs})
    devs = summary_deviations(audit_id, st)
    rec = {"status": "complete", "paper": PAPER, "experiment": audit_id, "title": AUDITS[audit_id]["title"],
           "question": AUDITS[audit_id]["question"], "profile": prof.name, "seed": int(seeds[0]), "seeds": seeds,
           "settings": st, "settings_hash": settings_hash(st), "dataset": first[ARMS[audit_id][0]]["dataset"],
           "results": results, "rows": rows, "headline": headline(audit_id, results), "deviations": devs,
           # the newest arm's commit (a string, as in every record); all of them, same settings hash, in arm_commits
           "commit": max(all_recs, key=lambda r: str(r.get("written_at", "")))["commit"], "arm_commits": commits,
           "code": first[ARMS[audit_id][0]].get("code"), "versions": first[ARMS[audit_id][0]].get("versions"),
           "device": first[ARMS[audit_id][0]].get("device"),
           "wall_time_s": round(float(sum(r.get("wall_time_s") or 0 for r in all_recs)), 2),
           "arm_records": [os.path.relpath(r["_path"], results_root(results_dir)) for r in all_recs]}
    if audit_id == "external_pbc":
        rec["external_dataset"] = first["original"].get("external_dataset")
    if write:
        rec["_path"] = str(write_record(rec, root=results_dir))
    return rec


def run_seeded_audit(audit_id: str, profile: str = "smoke", *, seeds=None, data_root=None, results_dir=None,
                     device: str = "auto", force: bool = False, progress: bool = False, log=None) -> dict | None:
    """Every arm of ``audit_id`` for every seed (each reused when its record exists), then the summary."""
    seeds = tuple(default_seeds(profile) if seeds is None else seeds)
    for s in seeds:
        fp = audit_fingerprint(audit_id, profile, data_root, s)
        for arm in ARMS[audit_id]:
            have = None if force else find_arm_record(audit_id, arm, profile, seed=s, results_dir=results_dir,
                                                      fingerprint=fp)
            if have is None:
                t0 = time.perf_counter()
                rec = run_arm(audit_id, arm, profile, seed=s, data_root=data_root, results_dir=results_dir,
                              device=device, progress=progress)
                if log:
                    acc = rec["results"]["measures"].get(arm, {}).get("accuracy")
                    log(f"{audit_id}/{arm} seed {s}: {time.perf_counter() - t0:.0f} s"
                        + (f", accuracy {acc:.3f}" if acc is not None else ""))
            elif log:
                log(f"{audit_id}/{arm} seed {s}: reused")
    return summarise_audit(audit_id, profile, results_dir=results_dir)


def audit_fingerprint(audit_id: str, profile: str = "smoke", data_root=None, seed: int = 0) -> str | None:
    """The data fingerprint ``audit_id`` would record now (``None`` when its data are absent and it would not run)."""
    check_audit(audit_id)
    prof = audit_profile(profile)
    if audit_id == "leakage_subject":
        try:
            return audit_data("cnmc-2019", prof, data_root, seed=seed, synthetic_fallback=prof.name == "smoke",
                              split="train").describe()["fingerprint"]
        except D.DataError:
            return None
    if audit_id == "leakage_duplicates":
        return taleqani_data(prof, data_root, seed, prefer_duplicates=True).describe()["fingerprint"]
    if audit_id == "loss_equivalence":
        st = audit_settings(audit_id, profile)
        data = taleqani_data(prof, data_root, seed, cap=False)
        per_class = max(1, st["n_images"] // max(data.table["label"].nunique(), 1))
        return D.fingerprint(cap_per_class(data.table, per_class, seed))
    orig = taleqani_data(prof, data_root, seed)
    fp = orig.describe()["fingerprint"]
    if audit_id in ("segmented", "background_alone", "segmented_artefacts"):
        return combined_fingerprint(fp, D.fingerprint(segmented_table(orig.table, prof, data_root, seed)))
    if audit_id == "external_pbc":
        ext = audit_data("pbc-lymphocytes", prof, data_root, seed=seed, cap=False)
        efp = D.fingerprint(cap_per_class(ext.table, audit_settings(audit_id, profile)["external_max_per_class"], seed))
        return combined_fingerprint(fp, efp)
    return fp

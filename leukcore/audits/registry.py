"""Every audit by id: the functions that run them, their fingerprints, and reuse before rerun."""
from __future__ import annotations

from typing import Callable

from ..runs.records import check_record, code_snapshot, read_complete, read_record, record_path, settings_hash
from .base import (
    ARMS,
    PAPER,
    SEEDED_AUDITS,
    audit_settings,
    check_audit,
)
from . import acquisition_groups as _acquisition_groups_arms  # noqa: F401 - each audit module registers its arms
from . import attribution as _attribution_arms  # noqa: F401
from . import background_alone as _background_alone_arms  # noqa: F401
from . import choices as _choices_arms  # noqa: F401
from . import external_pbc as _external_pbc_arms  # noqa: F401
from . import leakage_augment as _leakage_augment_arms  # noqa: F401
from . import leakage_duplicates as _leakage_duplicates_arms  # noqa: F401
from . import scale_bar_alone as _scale_bar_alone_arms  # noqa: F401
from . import segmented as _segmented_arms  # noqa: F401
from . import segmented_artefacts as _segmented_artefacts_arms  # noqa: F401
from . import shortcut_cnn as _shortcut_cnn_arms  # noqa: F401
from .shortcut_colour import shortcut_colour
from .leakage_subject import leakage_subject
from .loss_equivalence import loss_equivalence
from .seeded import audit_fingerprint, find_arm_record, get_or_run_arm, run_arm, run_seeded_audit, summarise_audit


def seeded_function(audit_id: str) -> Callable[..., dict]:
    def run(profile: str = "smoke", data_root=None, seed: int = 0, results_dir=None, device: str = "auto", *,
            progress: bool = False, write: bool = True) -> dict:
        for arm in ARMS[audit_id]:
            if write:
                get_or_run_arm(audit_id, arm, profile, seed=seed, data_root=data_root, results_dir=results_dir,
                               device=device, progress=progress)
            else:
                run_arm(audit_id, arm, profile, seed=seed, data_root=data_root, results_dir=results_dir,
                        device=device, progress=progress, write=False)
        return summarise_audit(audit_id, profile, results_dir=results_dir, write=write)

    run.__name__ = audit_id
    run.__doc__ = (f"Every arm of ``{audit_id}`` for ``seed`` (:func:`run_arm`; existing arm records are reused), "
                   f"then its summary over all seeds on disk (:func:`summarise_audit`).")
    return run


shortcut_cnn = seeded_function("shortcut_cnn")
segmented = seeded_function("segmented")
acquisition_groups = seeded_function("acquisition_groups")
leakage_duplicates = seeded_function("leakage_duplicates")
leakage_augment = seeded_function("leakage_augment")
external_pbc = seeded_function("external_pbc")
scale_bar_alone = seeded_function("scale_bar_alone")
background_alone = seeded_function("background_alone")
attribution = seeded_function("attribution")
segmented_artefacts = seeded_function("segmented_artefacts")
choices = seeded_function("choices")


AUDIT_FUNCTIONS: dict[str, Callable[..., dict]] = {
    "shortcut_colour": shortcut_colour, "shortcut_cnn": shortcut_cnn, "segmented": segmented,
    "acquisition_groups": acquisition_groups, "leakage_duplicates": leakage_duplicates,
    "leakage_augment": leakage_augment, "leakage_subject": leakage_subject, "loss_equivalence": loss_equivalence,
    "external_pbc": external_pbc, "scale_bar_alone": scale_bar_alone, "background_alone": background_alone,
    "attribution": attribution, "segmented_artefacts": segmented_artefacts, "choices": choices,
}


def run_audit(audit_id: str, profile: str = "smoke", **kw) -> dict:
    """Run one audit by id (keyword arguments as the audit functions); write and return its record."""
    check_audit(audit_id)
    with code_snapshot(profile, kw.pop("allow_dirty", None)):  # the code, read before training
        return AUDIT_FUNCTIONS[audit_id](profile, **kw)


def find_audit_record(audit_id: str, profile: str = "smoke", *, results_dir=None, seed: int = 0,
                      data_root=None) -> dict | None:
    """The existing complete record of ``audit_id`` for ``seed`` with the same key, else ``None``.

    Key (as :func:`leukcore.runs.experiments.find_record`): paper ``"audits"``, audit id, profile,
    seed, settings hash (:func:`audit_settings`) and the fingerprint of the data the audit
    would use now (:func:`audit_fingerprint`). A seeded audit has it when every arm has a record
    for ``seed`` with that key; the summary over all its seeds on disk is returned.
    """
    check_audit(audit_id)
    if audit_id in SEEDED_AUDITS:
        fp = audit_fingerprint(audit_id, profile, data_root, seed)
        if any(find_arm_record(audit_id, a, profile, seed=seed, results_dir=results_dir, fingerprint=fp) is None
               for a in ARMS[audit_id]):
            return None
        path = record_path(PAPER, profile, audit_id, results_dir)
        rec = read_record(path) if path.is_file() else None  # a damaged summary raises: it is not absent
        if rec is not None and seed in rec.get("seeds", []) and rec.get("settings_hash") == settings_hash(
                audit_settings(audit_id, profile)) and rec.get("dataset", {}).get("fingerprint") == fp:
            rec["_path"] = str(path)
            return rec
        return summarise_audit(audit_id, profile, results_dir=results_dir, write=False)
    rec = read_complete(record_path(PAPER, profile, audit_id, results_dir), seed)
    if rec is None:
        return None
    if rec.get("settings_hash") != settings_hash(audit_settings(audit_id, profile)):
        return None
    if rec.get("dataset", {}).get("fingerprint") != audit_fingerprint(audit_id, profile, data_root, seed):
        return None
    return rec


def get_or_run_audit(audit_id: str, profile: str = "smoke", *, force: bool = False, data_root=None, seed: int = 0,
                     seeds=None, results_dir=None, device: str = "auto", progress: bool = False, log=None) -> dict:
    """An existing complete record with the same key (:func:`find_audit_record`), else run the audit.

    Seeded audits (:data:`SEEDED_AUDITS`) run every arm for each of ``seeds`` (default: ``seed``),
    reusing arm records with the same key, and return the summary over every seed on disk.
    ``force`` reruns. A ``"not run"`` record (``leakage_subject`` without C-NMC) is never
    reused: the audit is asked again, so it runs as soon as the data appear.
    """
    check_audit(audit_id)
    if audit_id in SEEDED_AUDITS:
        return run_seeded_audit(audit_id, profile, seeds=(seed,) if seeds is None else seeds, data_root=data_root,
                                results_dir=results_dir, device=device, force=force, progress=progress, log=log)
    if not force:
        rec = find_audit_record(audit_id, profile, results_dir=results_dir, seed=seed, data_root=data_root)
        if rec is not None:
            return rec
    return run_audit(audit_id, profile, data_root=data_root, seed=seed, results_dir=results_dir, device=device,
                     progress=progress)


def load_summary(audit_id: str, profile: str = "audit", results_dir=None) -> dict | None:
    """The audit's record at ``profile`` as written (the summary of a seeded audit), without running anything."""
    check_audit(audit_id)
    path = record_path(PAPER, profile, audit_id, results_dir)
    if not path.is_file():
        return None
    return check_record(read_record(path))  # a damaged record raises RecordError: it is not absent


def summarise_all(profile: str = "audit", results_dir=None) -> dict[str, dict | None]:
    """:func:`summarise_audit` for every seeded audit at ``profile`` (``None`` where no seed has every arm)."""
    return {a: summarise_audit(a, profile, results_dir=results_dir) for a in SEEDED_AUDITS}

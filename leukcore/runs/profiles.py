"""Run profiles, defined once: ``smoke`` (CI), ``cpu`` (real data, reduced), ``audit`` (the audits'
own budget, :mod:`leukcore.audits`), ``paper`` (the protocol).

A profile never changes *what* an experiment is (model, loss, augmentation, split rule); it
caps *how much* is run: image size, images per class, epochs, folds.  ``None`` means "as the
paper's protocol says".  Only a ``paper``-profile run on the paper's own dataset can be a
reproduction (see :func:`leukcore.evaluation.verdicts.decide`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Profile:
    """How much of a protocol to run."""

    name: str
    description: str
    image_size: int | None        #: square input size; None = the protocol's / model's paper size
    max_per_class: int | None     #: stratified cap on images per class (seeded); None = all
    epochs: int | None            #: cap on epochs; None = the protocol's
    max_folds: int | None         #: cap on cross-validation folds run; None = all
    batch_size: int | None        #: None = the protocol's
    bootstrap: int                #: bootstrap resamples for 95 % intervals
    synthetic_per_class: int      #: images per class of the synthetic stand-in when data are absent
    device: str                   #: the device the profile is meant for
    checkpoints: bool = True      #: write a training checkpoint every epoch (resumable runs)
    min_image_size: int = 32      #: floor for models that need a minimum input (inception: 75)
    threads: int | None = None    #: torch / OpenCV threads while an experiment runs; None = the machine's

    def settings(self) -> dict:
        """What the profile computes, as a plain dict (shown in the book, stored in records and
        hashed into their key). ``threads`` is left out: it changes how fast a run is, not what it
        computes (on the CPU the same seed gives the same numbers at any thread count up to float
        summation order)."""
        d = asdict(self)
        d.pop("threads")
        return d


PROFILES: dict[str, Profile] = {
    # smoke runs on one thread: its 32 px tensors are too small for a second thread to pay for the
    # synchronisation, which on a busy 2-core machine costs up to 15x (see leukcore.bench)
    "smoke": Profile(
        "smoke", "seconds on a CPU: a few dozen images (synthetic when the data are absent), tiny "
                 "inputs, one epoch; for CI and nbval. Its numbers mean nothing.",
        image_size=32, max_per_class=10, epochs=1, max_folds=2, batch_size=16, bootstrap=200,
        synthetic_per_class=10, device="cpu", checkpoints=False, threads=1),
    "cpu": Profile(
        "cpu", "real data at reduced size on 2 CPU cores: at most 200 images per class (seeded, "
               "stratified), 48x48 inputs (raised to a model's minimum), 2 epochs, the first fold only; "
               "minutes per experiment. Indicative only.",
        image_size=48, max_per_class=200, epochs=2, max_folds=1, batch_size=32, bootstrap=1000,
        synthetic_per_class=60, device="cpu"),
    "audit": Profile(
        "audit", "the audits' budget (leukcore.audits, not a paper's protocol): every image of taleqani-all "
                 "at 64x64, the audits' own CNN (audit_cnn) for at most 12 epochs with early stopping on a "
                 "validation part, 3 seeds per arm; about an hour for all audits on 2 CPU cores.",
        image_size=64, max_per_class=None, epochs=12, max_folds=1, batch_size=32, bootstrap=1000,
        synthetic_per_class=60, device="cpu"),
    "paper": Profile(
        "paper", "the paper's own protocol (image size, epochs, folds, batch size); meant for a GPU.",
        image_size=None, max_per_class=None, epochs=None, max_folds=None, batch_size=None, bootstrap=1000,
        synthetic_per_class=200, device="cuda"),
}

#: The one profile order, lowest first, as :data:`PROFILES` lists them: a run or page of a higher
#: profile may replace one of a lower, and the book cites the highest it has. ``audit`` sits between
#: ``cpu`` and ``paper``: only the audits run at it, and a paper's runs never do.
PROFILE_RANK = {name: rank for rank, name in enumerate(PROFILES)}


def best_profile(names) -> str | None:
    """The highest of the profile names in ``names`` (unknown names ignored; None when none is known)."""
    known = [n for n in names if n in PROFILE_RANK]
    return max(known, key=PROFILE_RANK.__getitem__) if known else None


def get_profile(name: str) -> Profile:
    """The profile called ``name``; unknown names raise a ValueError listing the valid ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; valid: {', '.join(PROFILES)}") from None


def list_profiles() -> list[str]:
    """The profile names, lowest first."""
    return list(PROFILES)

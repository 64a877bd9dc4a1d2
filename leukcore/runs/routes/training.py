"""What the training routes share: the model a run builds, its training configuration, the
classifier probabilities over every class, and where a CNN's final weights are kept."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..records import run_name

#: Final weights of a CNN's first fold (kept for Grad-CAM when the model is small enough).
FINAL_WEIGHTS = "final.pt"
MAX_SAVED_PARAMS = 30_000_000


def new_model(name: str, n_classes: int, settings: dict, **kw):
    """Build a model for the run; models whose head depends on the input (ALNet's flatten) get its size.

    Returns ``(model, model_lines)``: the model's own interpretation lines (``leukcore_deviations``).
    """
    import inspect

    from ... import models
    from ...models import create_model

    ctor = getattr(models, name, None)
    if ctor is not None and "input_size" in inspect.signature(ctor).parameters:
        kw.setdefault("input_size", settings["image_size"])
    pretrained = "if-available" if settings["pretrained"] else False
    model = create_model(name, num_classes=n_classes, pretrained=pretrained, **kw)
    return model, list(getattr(model, "leukcore_deviations", []) or [])


def train_config(settings: dict, *, seed: int, device: str, progress: bool):
    """The run's training configuration: the settings' ``train`` block as it is (one set of defaults, TrainConfig's)."""
    from ...engine import TrainConfig

    return TrainConfig.from_protocol(settings["train"], seed=seed, device=device, progress=progress)


def fit_on(model, inputs, *, test: bool = False):
    """``fit`` ``model`` on the fold's training part (validating on its validation part); with
    ``test``, it also predicts the test part. Resumes from the fold's checkpoint when there is one."""
    from ...engine import fit

    tr, te = inputs.train, inputs.test
    cfg = train_config(inputs.settings, seed=inputs.seed, device=inputs.device, progress=inputs.progress)
    return fit(model, (inputs.x[tr], inputs.y[tr]), inputs.validation(),
               (inputs.x[te], inputs.y[te], inputs.test_ids) if test else None, config=cfg,
               checkpoint_dir=inputs.checkpoint_dir, resume=inputs.checkpoint_dir is not None)


def n_params(model) -> int:
    """Trainable parameters of ``model``."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def classify_features(classifier: str, model, inputs) -> np.ndarray:
    """Fit ``classifier`` on ``model``'s features of the training part; its probabilities on the
    test part over every class (columns of classes absent from the training part stay 0)."""
    from ...engine import extract_features, make_classifier

    f_tr = extract_features(model, inputs.x[inputs.train], device=inputs.device)
    f_te = extract_features(model, inputs.x[inputs.test], device=inputs.device)
    clf = make_classifier(classifier, seed=inputs.seed)
    clf.fit(f_tr, inputs.y[inputs.train])
    p = clf.predict_proba(f_te)
    classes = getattr(clf, "classes_", np.arange(p.shape[1]))
    out = np.zeros((len(f_te), inputs.n_classes))
    out[:, np.asarray(classes, dtype=int)] = p
    return out


def final_weights_path(rec: dict) -> Path:
    """Where a CNN record's trained weights are kept (fold 0; beside the record, not committed)."""
    return (Path(rec["_path"]).parent / "checkpoints" / run_name(rec["experiment"], rec.get("seed") or 0) / "fold0"
            / FINAL_WEIGHTS)

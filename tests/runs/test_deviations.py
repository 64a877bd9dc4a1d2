"""leukcore.runs.deviations: a run's deviation lines, generated from its settings."""
from __future__ import annotations


from leukcore.runs import protocols, profiles
from leukcore.runs.deviations import deviation_lines
from leukcore.runs.routes import get_route

PAPERS = ["alnet_jawahar2022", "dscnet_kaur2023", "dscnet_vijayalakshmi", "logmh_haque2024", "xincept_khan2024"]


def _lines(paper, exp_id, profile="paper", overrides=None, model_lines=()):
    exp = protocols.get_experiment(paper, exp_id)
    st = protocols.experiment_settings(paper, exp, profiles.get_profile(profile), overrides)
    return deviation_lines(paper, exp, st, model_lines=list(model_lines))

def test_deviation_lines_follow_the_settings_not_fixed_text():
    from leukcore.models import create_model

    exp = protocols.get_experiment("dscnet_vijayalakshmi", "dscnet")
    model = create_model("dscnet", num_classes=4, **exp.model_kw)
    assert any("0.3 / 0.2" in d for d in model.leukcore_deviations)  # the model's own (Kaur's) text
    paper = _lines("dscnet_vijayalakshmi", "dscnet", model_lines=model.leukcore_deviations)
    assert not any("0.3 / 0.2" in d for d in paper)  # it trained with 0.1: no line may say otherwise
    assert any("dropout 0.1 / 0.1" in d and "leaky_relu" in d for d in paper)
    assert any("input 224x224" in d for d in paper)  # true at the paper profile ...
    smoke = _lines("dscnet_vijayalakshmi", "dscnet", "smoke", model_lines=model.leukcore_deviations)
    assert not any("input 224x224" in d for d in smoke)  # ... not at 32 px
    assert "Input size 32x32 px (smoke profile, or the model's minimum); the protocol's is 224x224." in smoke
    assert "Epochs: 1 (smoke profile); the protocol's are 20." in smoke
    # the baselines' lines name the model they apply to, and only to it
    assert _lines("dscnet_vijayalakshmi", "vgg16")[-1] == "ImageNet weights are unavailable; vgg16 trains from scratch."
    assert not any("Darknet-53" in d for d in _lines("dscnet_vijayalakshmi", "vgg16"))

def test_deviation_lines_take_overrides_and_profiles():
    assert "Batch size: not stated; 32." in _lines("alnet_jawahar2022", "alnet-fold0")
    smoke = _lines("alnet_jawahar2022", "alnet-fold0", "smoke")
    assert "Batch size: not stated; 16." in smoke and "Batch size: 16 (smoke profile); the protocol's is 32." in smoke
    assert "Dropout: 0.2 (Section 4.3; the model text also says 30 %)." in smoke
    assert not any(d.startswith("Dropout") for d in _lines("alnet_jawahar2022", "vgg16"))
    lr = _lines("dscnet_kaur2023", "dscnet-kl-aug", overrides={"train": {"lr": 0.01}})
    assert "Optimizer: not stated; adam (lr 0.01 as printed)." in lr
    assert "Cross-validation: 2 of the 10 folds run (smoke profile, max_folds 2); the protocol runs all 10." \
        in _lines("xincept_khan2024", "vgg16", "smoke")
    assert not any(d.startswith("Cross-validation") for d in _lines("xincept_khan2024", "vgg16"))

def test_every_deviation_template_applies_somewhere_and_fills():
    """No template is silently dropped: each fills for at least one experiment, with no brace left."""
    for paper in PAPERS:
        entries = protocols.load_protocol(paper)["deviations"]
        filled = {p: [] for p in ("paper", "smoke")}
        for prof in filled:
            for e in protocols.list_experiments(paper, prof):
                if get_route(e.route).trains:
                    filled[prof] += _lines(paper, e.id, prof)
        for entry in entries:
            text = entry if isinstance(entry, str) else entry["text"]
            stem = text.split("{")[0].strip()
            assert any(line.startswith(stem) for lines in filled.values() for line in lines), (paper, text)
        assert not any("{" in d or "}" in d for lines in filled.values() for d in lines)

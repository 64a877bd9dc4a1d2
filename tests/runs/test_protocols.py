"""leukcore.runs.protocols: protocol files, experiments, settings and where each setting comes from."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from leukcore.runs import protocols, profiles, records
from leukcore.evaluation.claims import load_claims

PAPERS = ["alnet_jawahar2022", "dscnet_kaur2023", "dscnet_vijayalakshmi", "logmh_haque2024", "xincept_khan2024"]


def test_every_paper_has_protocol_and_ledger():
    assert protocols.list_papers() == PAPERS
    assert sorted(load_claims()["paper"].unique()) == PAPERS

@pytest.mark.parametrize("paper,n", [("dscnet_kaur2023", 24), ("dscnet_vijayalakshmi", 3), ("logmh_haque2024", 20),
                                     ("alnet_jawahar2022", 8), ("xincept_khan2024", 7)])
def test_experiment_counts(paper, n):
    exps = protocols.list_experiments(paper)
    assert len(exps) == n and len({e.id for e in exps}) == n

def test_every_claimed_experiment_exists():
    """A claim that names an experiment must name one the protocol defines (else it can never be measured)."""
    c = load_claims()
    for paper, g in c.groupby("paper"):
        ids = {e.id for e in protocols.list_experiments(paper)}
        named = set(g["experiment"].dropna())
        assert named <= ids, f"{paper}: claims name unknown experiments {sorted(named - ids)}"

def test_grid_expansion_kaur():
    e = protocols.get_experiment("dscnet_kaur2023", "vgg16-kl-aug")
    assert (e.model, e.loss, e.augment) == ("vgg16", "kl", "dscnet")
    assert protocols.get_experiment("dscnet_kaur2023", "dscnet-mce-noaug").augment == "none"
    f = protocols.get_experiment("logmh_haque2024", "multiclass-rf")
    assert (f.route, f.classifier, f.backbone, f.task) == ("features", "rf", "alexnet", "multiclass")

def test_unknown_names_list_valid_ones():
    with pytest.raises(ValueError, match="valid: alnet_jawahar2022"):
        protocols.load_protocol("resnet_paper")
    with pytest.raises(ValueError, match="dscnet, vgg16, darknet53"):
        protocols.get_experiment("dscnet_vijayalakshmi", "yolo")
    with pytest.raises(ValueError, match="valid: smoke, cpu, audit, paper"):
        profiles.get_profile("huge")

def test_settings_apply_profile_caps_and_overrides():
    exp = protocols.get_experiment("alnet_jawahar2022", "alnet-fold0")
    paper = protocols.experiment_settings("alnet_jawahar2022", exp, profiles.get_profile("paper"))
    cpu = protocols.experiment_settings("alnet_jawahar2022", exp, profiles.get_profile("cpu"))
    assert paper["train"]["epochs"] == 140 and paper["image_size"] == 224
    assert cpu["train"]["epochs"] == 2 and cpu["image_size"] == 136  # 48 px, raised to ALNet's minimum
    same = protocols.experiment_settings("alnet_jawahar2022", exp, profiles.get_profile("cpu"), {"models": {"alnet": {"dropout": 0.2}}})
    other = protocols.experiment_settings("alnet_jawahar2022", exp, profiles.get_profile("cpu"), {"models": {"alnet": {"dropout": 0.3}}})
    assert records.settings_hash(same) == records.settings_hash(cpu) != records.settings_hash(other)
    x = protocols.experiment_settings("xincept_khan2024", protocols.get_experiment("xincept_khan2024", "inception_v3"), profiles.get_profile("cpu"))
    assert x["image_size"] >= 75  # InceptionV3's minimum input
    with pytest.raises(ValueError, match="unknown override"):
        protocols.experiment_settings("alnet_jawahar2022", exp, profiles.get_profile("cpu"), {"lr": 1})

def test_profile_threads_are_not_part_of_the_record_key():
    smoke = profiles.get_profile("smoke")
    assert smoke.threads == 1 and "threads" not in smoke.settings()
    assert profiles.get_profile("cpu").threads is None
    import dataclasses

    other = dataclasses.replace(smoke, threads=2)
    exp = protocols.get_experiment("dscnet_vijayalakshmi", "dscnet")
    assert records.settings_hash(protocols.experiment_settings("dscnet_vijayalakshmi", exp, smoke)) == records.settings_hash(
        protocols.experiment_settings("dscnet_vijayalakshmi", exp, other))

def test_protocol_sources_cover_every_setting():
    import copy

    for paper in PAPERS:
        doc = protocols.load_protocol(paper)
        req, _ = protocols.setting_paths(doc)
        assert set(req) <= set(doc["sources"]) and len(req) >= 12
        bad = copy.deepcopy(doc)
        del bad["sources"][req[0]]
        with pytest.raises(ValueError, match="no annotation"):
            protocols.check_sources(bad, paper)
        bad = copy.deepcopy(doc)
        bad["sources"]["train.momentum"] = {"chosen": "x"}
        with pytest.raises(ValueError, match="not settings"):
            protocols.check_sources(bad, paper)
        bad = copy.deepcopy(doc)
        bad["sources"][req[0]] = {"stated": "Table 1", "chosen": "x"}
        with pytest.raises(ValueError, match="exactly one"):
            protocols.check_sources(bad, paper)
    # a new setting without an annotation is refused
    doc = protocols.load_protocol("xincept_khan2024")
    doc["train"]["momentum"] = 0.9
    with pytest.raises(ValueError, match="train.momentum"):
        protocols.check_sources(doc)

def test_protocol_sources_annotate_each_models_weights():
    """``pretrained`` is a per-model mapping, so each model it sets true has its own annotation."""
    import copy

    for paper in PAPERS:
        doc = protocols.load_protocol(paper)
        req, _ = protocols.setting_paths(doc)
        on = [m for m, v in doc["pretrained"].items() if v]
        assert on and [p for p in req if p.startswith("pretrained")] == [f"pretrained.{m}" for m in on]
    doc = protocols.load_protocol("xincept_khan2024")
    bad = copy.deepcopy(doc)
    del bad["sources"]["pretrained.resnet50"]
    with pytest.raises(ValueError, match=r"no annotation for \['pretrained.resnet50'\]"):
        protocols.check_sources(bad)
    bad = copy.deepcopy(doc)
    bad["sources"]["pretrained"] = {"stated": "Section 4.3", "quote": 'weights = "imagenet"'}  # one for all: refused
    with pytest.raises(ValueError, match=r"\['pretrained'\] are not settings"):
        protocols.check_sources(bad)
    bad = copy.deepcopy(doc)
    bad["sources"]["pretrained.cnn_lstm"] = {"chosen": "x"}  # cnn_lstm is not in the mapping
    with pytest.raises(ValueError, match=r"\['pretrained.cnn_lstm'\] are not settings"):
        protocols.check_sources(bad)
    scratch = copy.deepcopy(doc)  # a model set false needs no annotation, and may have one
    scratch["pretrained"]["resnet50"] = False
    del scratch["sources"]["pretrained.resnet50"]
    protocols.check_sources(scratch)
    scratch["sources"]["pretrained.resnet50"] = {"chosen": "from scratch"}
    protocols.check_sources(scratch)


def test_protocol_sources_say_what_the_issue_found():
    src = lambda paper, path: next(iter(protocols.load_protocol(paper)["sources"][path]))  # noqa: E731
    for path in ("train.optimizer", "train.lr", "train.batch_size", "train.loss"):
        assert src("xincept_khan2024", path) == "chosen"  # not in the thesis
    assert src("logmh_haque2024", "train.lr") == "chosen"
    assert src("dscnet_vijayalakshmi", "train.loss") == "chosen" and src("dscnet_vijayalakshmi", "train.augment") == "chosen"
    # XIncept's Section 4.3 (weights = "imagenet") states the weights of its own backbones only
    assert src("xincept_khan2024", "pretrained.xincept") == "stated"
    for m in ("resnet50", "googlenet", "vgg16", "inception_v3", "xception"):
        assert src("xincept_khan2024", f"pretrained.{m}") == "chosen"
    # a setting stated for the proposed model only, that the protocol also applies to the baselines, is
    # chosen for them (ALNet's rate: "stated" before the review of issue 23)
    for paper, path in (("alnet_jawahar2022", "train.lr"), ("alnet_jawahar2022", "train.epochs"),
                        ("xincept_khan2024", "train.epochs"), ("xincept_khan2024", "split.k"),
                        ("dscnet_kaur2023", "train.lr"), ("dscnet_vijayalakshmi", "train.optimizer"),
                        ("dscnet_vijayalakshmi", "image_size")):
        assert src(paper, path) == "chosen" and "Stated for" in protocols.setting_source(paper, path), (paper, path)
    # LoGMH's Section 3.6 states its training settings for all its transfer-learning models
    assert src("logmh_haque2024", "train.optimizer") == "stated"

def test_protocol_sources_are_where_the_paper_says_them():
    from leukcore.evaluation import claims as C

    papers_dir = Path(__file__).resolve().parents[2].parent / "shared" / "papers"
    if not papers_dir.is_dir():
        pytest.skip(f"papers not found at {papers_dir}")
    # a chosen setting cites what the paper does state as "(Section 4.3, 'words')"
    cited = re.compile(r"\(((?:Section|Table|Chapter) [\w.]+), '([^']+)'\)")
    n = n_cited = 0
    for paper in PAPERS:
        text = C.paper_source(paper, papers_dir).read_text(encoding="utf-8")
        for path, ann in protocols.load_protocol(paper)["sources"].items():
            for place, quote in cited.findall(ann.get("chosen", "")):
                assert C._norm(quote) in C._norm(C.region_text(text, place)), (paper, path, place, quote)
                n_cited += 1
            if "stated" not in ann:
                continue
            region = C.region_text(text, ann["stated"])
            assert region, (paper, path, ann["stated"])
            if "quote" in ann:
                assert C._norm(ann["quote"]) in C._norm(region), (paper, path)
                n += 1
    assert n >= 50 and n_cited >= 20

def test_protocol_table_has_a_source_column():
    from leukcore.book import pages as report

    t = report.protocol_table("xincept_khan2024").set_index("setting")
    assert list(t.columns) == ["value", "source"]
    assert t.loc["optimizer", "source"].startswith("chosen: Not in the thesis")
    assert t.loc["epochs", "source"].startswith("chosen: Stated for XIncept-ALL only (Chapter 5")
    t = t.reset_index()  # one weights row per source: the thesis states XIncept's own, not its baselines'
    w = t[t["setting"] == "ImageNet weights (paper)"].set_index("value")["source"]
    assert list(w.index) == ["xincept", "resnet50, googlenet, vgg16, inception_v3, xception"]
    assert w["xincept"] == "stated: Section 4.3" and w.iloc[1].startswith("chosen: Not stated")
    h = report.protocol_table("logmh_haque2024").set_index("setting")
    assert h.loc["lr", "source"].startswith("chosen:") and "cv" in h.loc["split", "value"]
    d = report.deviations_table("logmh_haque2024", "smoke")
    cv = d[d["deviation or interpretation"].str.startswith("Cross-validation: 2 of the 5")]
    assert len(cv) == 1 and "binary-rf" not in cv["applies to"].iloc[0]

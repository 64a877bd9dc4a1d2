"""Tests for leukcore.evaluation.claims: the ledger files, their schema and their transcription."""
from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import pytest
import yaml

from leukcore.evaluation import claims as C

PAPERS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "papers"


@pytest.fixture(scope="module")
def ledger():
    return C.load_claims()


def _doc(paper: str) -> dict:
    return yaml.load(C.ledger_path(paper).read_text(encoding="utf-8"), Loader=C._SAFE_LOADER)


def _good_claim(**kw) -> dict:
    c = {"id": "x-accuracy", "model": "alnet", "experiment": "alnet-fold0", "dataset": "cnmc-2019",
         "setting": {"task": "binary", "fold": 0}, "metric": "accuracy", "value": 92.2,
         "unit": "percent", "source": "Table 9"}
    c.update(kw)
    return c


def _wrap(*claims) -> dict:
    return {"paper": "alnet_jawahar2022", "title": "t", "source": "s", "claims": list(claims)}


# ------------------------------------------------------------------ loading and schema

def test_list_papers_and_files():
    assert C.list_papers() == ["dscnet_kaur2023", "dscnet_vijayalakshmi", "logmh_haque2024",
                               "alnet_jawahar2022", "xincept_khan2024"]
    for p in C.list_papers():
        assert C.ledger_path(p).is_file()


def test_unknown_paper_lists_valid_ids():
    with pytest.raises(ValueError) as e:
        C.load_claims("nope2024")
    for p in C.PAPERS:
        assert p in str(e.value)


def test_all_five_files_validate(ledger):
    for p in C.PAPERS:
        doc = _doc(p)
        assert C.validate(doc, filename=f"{p}.yaml") is doc
        assert doc["paper"] == p
        assert (PAPERS_DIR / doc["source"]).name == doc["source"]
    assert list(ledger.columns) == list(C.COLUMNS)
    assert set(ledger.paper) == set(C.PAPERS)
    assert not ledger.duplicated(["paper", "id"]).any()


def test_load_one_paper_returns_fresh_copy():
    a = C.load_claims("alnet_jawahar2022")
    a.loc[0, "value"] = -1
    a.loc[0, "setting"]["fold"] = 99
    b = C.load_claims("alnet_jawahar2022")
    assert b.loc[0, "value"] != -1
    assert b.loc[0, "setting"].get("fold") != 99


def test_value01_printed_and_resolution(ledger):
    k = ledger.set_index(["paper", "id"])
    r = k.loc[("dscnet_kaur2023", "resnet50-sparse_ce-aug-auc")]
    assert r.printed == "97.80" and r.value == pytest.approx(97.8)
    assert r.resolution == pytest.approx(0.01)          # trailing zero kept from the YAML text
    assert r.value01 == pytest.approx(0.978)
    r = k.loc[("alnet_jawahar2022", "alnet-fold1-accuracy-table9")]
    assert r.printed == "94" and r.resolution == pytest.approx(1.0)
    r = k.loc[("alnet_jawahar2022", "alnet-cv-f1")]
    assert r.unit == "fraction" and r.value01 == pytest.approx(0.96)
    r = k.loc[("alnet_jawahar2022", "alnet-params")]
    assert r.value == 535010 and math.isnan(r.value01)
    r = k.loc[("alnet_jawahar2022", "alnet-fold0-confusion_matrix")]
    assert r.value == [[180, 49], [6, 470]] and math.isnan(r.value01)
    rates = ledger[ledger.unit.isin(["percent", "fraction"])]
    assert rates.value01.between(0, 1).all()
    assert ledger[~ledger.unit.isin(["percent", "fraction"])].value01.isna().all()


def test_resolution_of():
    assert C.resolution_of("98.90") == pytest.approx(0.01)
    assert C.resolution_of("94") == 1.0
    assert C.resolution_of("1.8e+02") == pytest.approx(10.0)
    assert C.resolution_of(0.5) == pytest.approx(0.1)
    assert math.isnan(C.resolution_of("n/a"))


@pytest.mark.parametrize("mutate, field", [
    (lambda c: c.pop("source"), "source"),
    (lambda c: c.pop("unit"), "unit"),
    (lambda c: c.pop("model"), "model"),
    (lambda c: c.update(metric="kappa"), "metric"),
    (lambda c: c.update(unit="permille"), "unit"),
    (lambda c: c.update(averaging="geometric"), "averaging"),
    (lambda c: c.update(value="92.2"), "value"),
    (lambda c: c.update(value=True), "value"),
    (lambda c: c.update(value=[[1, 2]]), "value"),
    (lambda c: c.update(value=100.5), "value"),
    (lambda c: c.update(value=-0.1), "value"),
    (lambda c: c.update(unit="fraction", value=1.2), "value"),
    (lambda c: c.update(unit="fraction", value=-0.01), "value"),
    (lambda c: c.update(metric="confusion_matrix", unit="count", value=[[1, 2], [3]]), "value"),
    (lambda c: c.update(metric="confusion_matrix", unit="count", value=5), "value"),
    (lambda c: c.update(metric="count", unit="count", value=-3), "value"),
    (lambda c: c.update(std="big"), "std"),
    (lambda c: c.update(setting=[1, 2]), "setting"),
    (lambda c: c.update(colour="red"), "colour"),
    (lambda c: c.update(id="Bad Id"), "id"),
])
def test_validate_rejects_each_rule(mutate, field):
    c = _good_claim()
    mutate(c)
    with pytest.raises(ValueError) as e:
        C.validate(_wrap(c), filename="broken.yaml")
    msg = str(e.value)
    assert "broken.yaml" in msg
    assert f"field {field!r}" in msg
    if field != "id":
        assert "'x-accuracy'" in msg


def test_validate_rejects_duplicate_id_and_top_level():
    with pytest.raises(ValueError, match=r"claim 'x-accuracy'.*field 'id'.*duplicate"):
        C.validate(_wrap(_good_claim(), _good_claim(value=91.0)), filename="dup.yaml")
    with pytest.raises(ValueError, match="unknown paper id"):
        C.validate({"paper": "other", "claims": [_good_claim()]})
    with pytest.raises(ValueError, match="claims"):
        C.validate({"paper": "alnet_jawahar2022", "claims": []})
    with pytest.raises(ValueError, match="top level"):
        C.validate([1, 2])


def test_validate_accepts_good_claims():
    doc = _wrap(_good_claim(),
                _good_claim(id="cm", metric="confusion_matrix", unit="count", value=[[1, 2], [3, 4]]),
                _good_claim(id="f", unit="fraction", value=0.0, averaging="macro", std=0.01),
                _good_claim(id="n", metric="count", unit="count", value=0, model=None,
                            experiment=None, dataset=None, setting=None))
    assert C.validate(doc) is doc
    df = C.claims_frame(doc)
    assert list(df.id) == ["x-accuracy", "cm", "f", "n"]
    assert df.loc[0, "value01"] == pytest.approx(0.922)


def test_broken_file_is_reported_with_its_name(tmp_path, monkeypatch):
    bad = copy.deepcopy(_doc("alnet_jawahar2022"))
    bad["claims"][3]["metric"] = "kappa"
    (tmp_path / "alnet_jawahar2022.yaml").write_text(yaml.safe_dump(bad))
    monkeypatch.setattr(C, "LEDGER_DIR", tmp_path)
    C._load_one.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"alnet_jawahar2022\.yaml.*field 'metric'"):
            C.load_claims("alnet_jawahar2022")
    finally:
        C._load_one.cache_clear()


# ------------------------------------------------------------------ names used by the protocols

MODELS = {"dscnet", "alexnet", "vgg16", "resnet50", "googlenet", "inception_v3", "xception",
          "inception_resnet_v2", "darknet53", "retinanet_cls", "centernet_cls", "cnn_lstm",
          "alnet", "xincept", "xincept+xgboost"} | {f"alexnet+{c}" for c in ("mlp", "rf", "svm", "knn", "sgd")}
EXPERIMENTS = {
    "dscnet_kaur2023": re.compile(r"^(dscnet|alexnet|resnet50|vgg16)-(kl|sparse_ce|mce)-(aug|noaug)$"),
    "dscnet_vijayalakshmi": re.compile(r"^(dscnet|vgg16|darknet53)$"),
    "logmh_haque2024": re.compile(r"^(binary|multiclass)-(mlp|rf|svm|knn|sgd|inception_resnet_v2|"
                                  r"xception|alexnet|retinanet_cls|centernet_cls)$"),
    "alnet_jawahar2022": re.compile(r"^(alnet-fold[012]|alnet-cv|alexnet|vgg16|googlenet|resnet50)$"),
    "xincept_khan2024": re.compile(r"^(xincept-xgboost|cnn_lstm|resnet50|googlenet|vgg16|inception_v3|xception)$"),
}


def test_model_and_experiment_names(ledger):
    models = set(ledger.model.dropna())
    assert models <= MODELS, models - MODELS
    for _, r in ledger.dropna(subset=["experiment"]).iterrows():
        assert EXPERIMENTS[r.paper].match(r.experiment), (r.paper, r.id, r.experiment)
    # metric claims name a model; only dataset counts may leave it empty
    assert ledger[ledger.model.isna()].metric.eq("count").all()


# ------------------------------------------------------------------ counts derived from the papers

EXPECTED_COUNTS = {
    # Section 4.4.2 (augmented): 12 model/loss rows (4 models x 3 losses) x 5 metrics = 60, plus
    # the AUC 98.92 of the first copy of the repeated DSCNet-MCELoss sentence = 61;
    # Section 4.4.1 (no augmentation): 12 x 5 = 60; Abstract gains: 5 metrics = 5;
    # Section 4.1: 4 class counts + 1 total = 5.       61 + 60 + 5 + 5 = 131
    "dscnet_kaur2023": 131,
    # Table 2: 3 models x 4 metrics = 12; Section III.B values differing from the table
    # (VGG-16 F1 90.00, YOLO accuracy 90) = 2; Section III.C: train/val accuracy and loss 4 +
    # weighted precision/recall/F1 3 = 7; Abstract: 4 numbers = 4; Section V: 4 numbers, of which
    # 2 differ from Table 2 = 2; dataset counts: 4 classes + 3256 + 6512 + 89/64/25 subjects +
    # 20000 + 5000 + Table 1's 6875/256 = 13.        12 + 2 + 7 + 4 + 2 + 13 = 40
    "dscnet_vijayalakshmi": 40,
    # Table 1: 10 models x 4 metrics = 40; Table 2: 10 x 4 = 40; Section 4.1 per-class recall and
    # F1 of Inception-ResNet for 2 classes = 4; Section 4.2 per-class error of RF and
    # Inception-ResNet for 5 classes = 10, the RF range (11.2, 12) = 2, reductions 5 classes = 5;
    # Section 3.1 counts: C-NMC 14 (15114, 118, 1867/1219/648, 13/15, 10661/7272/3389, 47/26,
    # 2133/8528) + Leukemia 0.2 2 (20000, 4000) = 16.   40 + 40 + 4 + 10 + 2 + 5 + 16 = 117
    "logmh_haque2024": 117,
    # Table 8: 5 models x (params + 4 metrics) = 25; Section 4.7.1 ResNet-50 87% = 1; Table 9:
    # 4 rows (3 folds + average) x (train, test) = 8; Section 4.7.3 91.3 and Table 10 99.73 = 2;
    # Section 3.1.3 accuracy/specificity/sensitivity = 3; Table 7 / Section 4.7.1: 3 confusion
    # matrices + 2 AUCs = 5; Table 6: 3 confusion matrices = 3; Table 2: 10 layers with
    # parameters = 10; counts: Section 4.2 15 + Table 3 12 (3 x 3 cells + 3 totals) + Section 4.3
    # augmented 6 + Section 4.6 645 = 34.       25 + 1 + 8 + 2 + 3 + 5 + 3 + 10 + 34 = 91
    "alnet_jawahar2022": 91,
    # Table 5.1: 7 models x 5 metrics = 35; Table 5.2: 7 x 5 stages = 35; Section 5.1 overall
    # times 7; Table 5.3: 5 rows (4 classes + average) x 5 columns = 25; Chapter 5 F1 at epoch 20
    # and training accuracy at epoch 10 = 2; Experiment 2: 4; Experiment 4: 3 per-class + 1
    # average bound + 2 counts = 6; Table 6.1 second column 1; 'over 10%' gain 1; Table 3.1: 4
    # classes + total = 5; 89 subjects 1.    35 + 35 + 7 + 25 + 2 + 4 + 6 + 1 + 1 + 5 + 1 = 122
    "xincept_khan2024": 122,
}


def test_claim_counts_per_paper(ledger):
    counts = ledger.groupby("paper").size().to_dict()
    assert counts == EXPECTED_COUNTS


def _first_source(s: str) -> str:
    return re.sub(r"\s*\(.*$", "", s.split(";")[0].strip())


@pytest.mark.parametrize("paper, source, n", [
    ("dscnet_kaur2023", "Section 4.4.2", 61),   # 12 rows x 5 metrics + the repeated AUC
    ("dscnet_kaur2023", "Section 4.4.1", 60),   # 12 rows x 5 metrics
    ("dscnet_vijayalakshmi", "Table 2", 12),    # 3 models x 4 metrics
    ("logmh_haque2024", "Table 1", 40),         # 10 models x 4 metrics
    ("logmh_haque2024", "Table 2", 40),         # 10 models x 4 metrics
    ("alnet_jawahar2022", "Table 8", 25),       # 5 models x 5 columns
    ("alnet_jawahar2022", "Table 9", 8),        # 4 rows x 2 columns
    ("alnet_jawahar2022", "Table 3", 12),       # 3 x 3 cells + 3 totals
    ("alnet_jawahar2022", "Table 2", 10),       # layers with parameters
    ("xincept_khan2024", "Table 5.1", 35),      # 7 models x 5 metrics
    ("xincept_khan2024", "Table 5.2", 35),      # 7 models x 5 stages
    ("xincept_khan2024", "Table 5.3", 25),      # 5 rows x 5 columns
])
def test_claims_per_table(ledger, paper, source, n):
    sub = ledger[(ledger.paper == paper) & (ledger.source.map(_first_source) == source)]
    assert len(sub) == n


def test_table_grids_are_complete(ledger):
    k = ledger[ledger.paper == "dscnet_kaur2023"].dropna(subset=["experiment"])
    grid = k[k.setting.map(lambda s: "statistic" not in s)].groupby("experiment").metric.apply(set)
    assert len(grid) == 24
    assert all(m == {"accuracy", "sensitivity", "specificity", "f1", "auc"} for m in grid)
    h = ledger[(ledger.paper == "logmh_haque2024") & ledger.source.str.match(r"Table [12]")]
    assert h.groupby("experiment").size().eq(4).all() and h.experiment.nunique() == 20


# ------------------------------------------------------------------ transcription against the papers

@pytest.fixture(scope="module")
def paper_text():
    if not PAPERS_DIR.is_dir():
        pytest.skip(f"papers not found at {PAPERS_DIR}")
    return {p: (PAPERS_DIR / _doc(p)["source"]).read_text(encoding="utf-8") for p in C.PAPERS}


def test_every_printed_value_occurs_in_its_paper(ledger, paper_text):
    numbers = {p: set(re.findall(r"\d+(?:,\d{3})*(?:\.\d+)?", t)) for p, t in paper_text.items()}
    missing = []
    for r in ledger[ledger.metric != "confusion_matrix"].itertuples():
        forms = {r.printed}
        if re.fullmatch(r"\d{4,}", r.printed):
            forms.add(f"{int(r.printed):,}")
        if not forms & numbers[r.paper]:
            missing.append((r.paper, r.id, r.printed))
    assert not missing


def _vals(ledger, paper, ids):
    k = ledger[ledger.paper == paper].set_index("id")
    return [k.loc[i, "printed"] for i in ids]


def test_spot_check_table_rows(ledger, paper_text):
    # each expected line is rebuilt from the ledger and must occur verbatim in the flattened table
    h = _vals(ledger, "logmh_haque2024", [f"binary-mlp-{m}" for m in ("accuracy", "precision", "sensitivity", "f1")])
    assert "MLP\t" + "\t".join(v + "%" for v in h) in paper_text["logmh_haque2024"]
    h = _vals(ledger, "logmh_haque2024", [f"multiclass-knn-{m}" for m in ("accuracy", "precision", "sensitivity", "f1")])
    assert "KNN\t" + "\t".join(v + "%" for v in h) in paper_text["logmh_haque2024"]
    a = _vals(ledger, "alnet_jawahar2022", ["alnet-params"] + [f"alnet-cv-{m}" for m in ("sensitivity", "precision", "accuracy", "f1")])
    a[0] = f"{int(a[0]):,}"
    assert "Proposed ALNet\t" + "\t".join(a) in paper_text["alnet_jawahar2022"]
    a = _vals(ledger, "alnet_jawahar2022", ["alnet-fold2-train_accuracy", "alnet-fold2-accuracy-table9"])
    assert "Fold 2\t" + "\t".join(a) in paper_text["alnet_jawahar2022"]
    x = _vals(ledger, "xincept_khan2024", [f"xincept-xgboost-time-{s}" for s in
                                           ("preprocessing", "feature_extraction", "training", "prediction", "overall")])
    assert "XIncept-ALL\t" + "\t".join(x) in paper_text["xincept_khan2024"]
    x = _vals(ledger, "xincept_khan2024", [f"vgg16-{m}" for m in ("sensitivity", "specificity", "accuracy", "precision", "f1")])
    assert "VGGNet\t" + "\t".join(x) in paper_text["xincept_khan2024"]
    v = _vals(ledger, "dscnet_vijayalakshmi", [f"dscnet-{m}" for m in ("accuracy", "precision", "sensitivity", "f1")])
    assert "Proposed model\t" + "\t".join(v) in paper_text["dscnet_vijayalakshmi"]
    assert "Total (Fold)\t3527\t3581\t3554\t10662" in paper_text["alnet_jawahar2022"]


def test_spot_check_sentences(ledger, paper_text):
    t = re.sub(r"\s+", " ", paper_text["dscnet_kaur2023"])
    k = ledger[ledger.paper == "dscnet_kaur2023"].set_index("id")
    for exp, name in (("dscnet-kl-aug", "DSCNet with KLLoss"), ("vgg16-sparse_ce-noaug", "VGG-16 with SMLoss"),
                      ("alexnet-mce-aug", "AlexNet with MCELoss")):
        acc, sens, spec, f1, auc = (k.loc[f"{exp}-{m}", "printed"] for m in
                                    ("accuracy", "sensitivity", "specificity", "f1", "auc"))
        pattern = (re.escape(name) + r"[^.]*?accuracy of " + re.escape(acc) + r"%, sensitivity of "
                   + re.escape(sens) + r"%, specificity of " + re.escape(spec) + r"%, F-score of "
                   + re.escape(f1) + r"%, and an AUC of " + re.escape(auc) + "%")
        assert re.search(pattern, t), exp
    assert k.loc["dscnet-kl-aug-accuracy", "std"] == pytest.approx(0.40)
    assert r"\textbf{99.37} \pm \textbf{0.40}" in t
    x = re.sub(r"\s+", " ", paper_text["xincept_khan2024"])
    assert "total processing time of approximately 184.5 seconds" in x
    v = paper_text["dscnet_vijayalakshmi"]
    assert "overall weighted average precision of 98.5, an overall recall of 97.5, and an average F1-score of 98.2" in v
    a = re.sub(r"\s+", " ", paper_text["alnet_jawahar2022"])
    assert "170 images as true positive, 450 as true negative, 46 images as false-positive and 45 images as a false negative" in a
    cm2 = ledger[(ledger.paper == "alnet_jawahar2022") & (ledger.id == "alnet-fold2-confusion_matrix")].value.iloc[0]
    assert cm2 == [[170, 46], [45, 450]]


def test_known_paper_discrepancies_are_recorded(ledger):
    k = ledger.set_index(["paper", "id"])
    # Kaur: the DSCNet-MCELoss sentence is printed twice, with AUC 98.92 and 98.99
    assert k.loc[("dscnet_kaur2023", "dscnet-mce-aug-auc-first"), "value"] == pytest.approx(98.92)
    assert k.loc[("dscnet_kaur2023", "dscnet-mce-aug-auc"), "value"] == pytest.approx(98.99)
    # XIncept: overall time 187.5 in Table 5.2 and 184.5 in the text
    assert k.loc[("xincept_khan2024", "xincept-xgboost-time-overall"), "value"] == pytest.approx(187.5)
    assert k.loc[("xincept_khan2024", "xincept-xgboost-time-overall-text"), "value"] == pytest.approx(184.5)
    # ALNet: Table 3's total 10662 vs 10661 in Section 4.2
    assert k.loc[("alnet_jawahar2022", "count-images-training-table3"), "value"] == 10662
    assert k.loc[("alnet_jawahar2022", "count-images-training"), "value"] == 10661


# ------------------------------------------------------------------ values at their stated source location

def _cells(r):
    if r.metric == "confusion_matrix":
        return [(x, str(int(x)) if float(x).is_integer() else str(x)) for row in r.value for x in row]
    return [(r.value, r.printed)]


def test_every_value_is_at_its_stated_location(ledger, paper_text):
    """Each value is printed in the table / section its ``source`` names (first location: as
    printed; further locations: the same number, possibly as a percentage), and each quoted
    passage of a source is in that location; not merely somewhere in the paper."""
    problems = []
    for r in ledger.itertuples():
        text = paper_text[r.paper]
        for k, loc in enumerate(t.strip() for t in r.source.split(";") if t.strip()):
            region = C.region_text(text, loc)
            if not region:
                problems.append((r.paper, r.id, loc, "location not found"))
                continue
            miss = [p for v, p in _cells(r) if not C.value_in(region, v, p, first=k == 0)]
            quotes = [q for q in C.quotes_of(loc) if C._norm(q) not in C._norm(region)]
            if miss or quotes:
                problems.append((r.paper, r.id, loc, miss, quotes))
    assert not problems


def test_locations_are_regions_not_the_whole_paper(paper_text):
    v, h, a = paper_text["dscnet_vijayalakshmi"], paper_text["logmh_haque2024"], paper_text["alnet_jawahar2022"]
    # Section V prints 98.87 and 96.65; Table 2 prints 96.55 (the recall) and not the misprint
    assert C.printed_in(C.region_text(v, "Section V"), "96.65")
    assert not C.printed_in(C.region_text(v, "Section V"), "96.55")
    assert C.printed_in(C.region_text(v, "Table 2"), "96.55")
    assert not C.printed_in(C.region_text(v, "Table 2"), "96.65")
    # "Section III.B" is the evaluation-criteria subsection: VGG-16's '90.00 each', not Table 1's batch size
    assert "90.00 each" in C.region_text(v, "Section III.B")
    assert "Batch size" not in C.region_text(v, "Section III.B")
    # Haque's binary table (Table 1) does not reach the multi-class one (Table 2: 95.79)
    assert C.printed_in(C.region_text(h, "Table 1"), "96.89")
    assert not C.printed_in(C.region_text(h, "Table 1"), "95.79")
    # a numbered section includes its subsections and stops at the next one outside it
    s47 = C.region_text(a, "Section 4.7.3")
    assert "99.73" in s47 and "Grid search" not in s47
    assert C.locate(a, "Table 42") == [] and C.locate(a, "Section 9.9") == []
    # thousands separators and limited-digit printings
    assert C.printed_in("has 535,010 trainable", "535010") and not C.printed_in("5350101", "535010")
    assert C.value_in("<td>1.8e+02</td>", 180, "180") and not C.value_in("<td>1.9e+02</td>", 180, "180")
    assert C.value_in("about 90% of", 0.90, "0.90", first=False)
    assert not C.value_in("about 90% of", 0.90, "0.90", first=True)

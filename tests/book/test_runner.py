"""leukcore.book.runner: papermill pages keep no machine path and never replace a better page."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_scrub_paths_removes_machine_paths():
    from leukcore.book.runner import machine_paths, scrub_paths
    from leukcore.files import PROJECT_ROOT

    nb = {"cells": [{"outputs": [{"text": f"read {PROJECT_ROOT}/results/x.json and /data/dl/cnmc"}]}],
          "metadata": {"papermill": {"parameters": {"data_root": "/data/dl"}}}}
    out = scrub_paths(nb, machine_paths("/data/dl"))
    text = json.dumps(out)
    assert str(PROJECT_ROOT) not in text and "/data/dl" not in text and "<data_root>/cnmc" in text


def test_page_rank_never_downgrades():
    from leukcore.book.runner import page_rank

    assert page_rank({"profile": "cpu", "real_data": True}) > page_rank({"profile": "smoke", "real_data": True})
    assert page_rank({"profile": "cpu", "real_data": True}) > page_rank({"profile": "cpu", "real_data": False})
    assert page_rank(None) < page_rank({"profile": "smoke", "real_data": False})


@pytest.mark.parametrize("paper", ["dscnet_kaur2023", "dscnet_vijayalakshmi", "logmh_haque2024", "alnet_jawahar2022",
                                   "xincept_khan2024"])
def test_papermill_sees_every_parameter_of_a_paper_notebook(paper):
    """A researcher's `papermill --help-notebook` lists the parameters (one assignment per line, as papermill reads them)."""
    import papermill

    from leukcore.book.evidence import PARAMETERS

    found = papermill.inspect_notebook(str(ROOT / "notebooks" / f"{paper}.ipynb"))
    assert set(PARAMETERS) <= set(found), sorted(set(PARAMETERS) - set(found))

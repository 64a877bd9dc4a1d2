"""leukcore.book.runner: papermill pages keep no machine path and never replace a better page."""
from __future__ import annotations

import json


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

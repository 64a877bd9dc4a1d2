"""CITATION.cff, LICENSE and the citation page's generated parts agree with pyproject.toml and git."""
from __future__ import annotations

import re

import pytest
import yaml

from leukcore.book import citation
from leukcore.data import DATASETS
from leukcore.files import PROJECT_ROOT


def test_citation_cff_matches_pyproject():
    cff = yaml.safe_load((PROJECT_ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors"):
        assert cff[key], key
    assert str(cff["version"]) == citation.version()
    pyproject = (PROJECT_ROOT / "pyproject.toml").read_text()
    assert re.search(r'license\s*=\s*\{text\s*=\s*"MIT"\}', pyproject) and cff["license"] == "MIT"
    assert (PROJECT_ROOT / "LICENSE").read_text().startswith("MIT License")


def test_citation_cff_is_valid_against_the_schema():
    validate = pytest.importorskip("cffconvert.cli.create_citation").create_citation
    validate(str(PROJECT_ROOT / "CITATION.cff"), None).validate()


def test_bibtex_and_page_name_this_build():
    c = citation.commit()
    md = citation.citation_markdown()
    assert f"version **{citation.version()}**" in md
    bib = citation.bibtex()
    assert bib.startswith("@software{") and "version = {" + citation.version() + "}" in bib
    if c["hash"]:  # inside a git checkout: the full commit is in the entry and its short form on the page
        assert c["hash"] in bib and c["hash"][:12] in md


def test_every_real_dataset_has_a_source_and_terms():
    table = citation.datasets_markdown()
    for ds_id in DATASETS:
        if ds_id != "synthetic":
            assert f"`{ds_id}`" in table
    assert "CC BY 4.0" in table

"""leukcore.cli: the one command; every command is one of its subcommands."""
from __future__ import annotations

import re

import pandas as pd
import pytest

SUBCOMMANDS = [["data", "verify", "ROOT"], ["experiments", "--paper", "alnet_jawahar2022"], ["reproduce"],
               ["claims", "--consistency"], ["book", "pages"], ["ray", "plan"], ["ray", "bench"], ["bench", "--quick"],
               ["figures", "gradcam", "--record", "r.json"], ["gpu", "collect", "SRC"],
               ["audits", "run", "--audit", "segmented"], ["audits", "summarise"]]


@pytest.mark.parametrize("argv", SUBCOMMANDS, ids=lambda a: " ".join(a[:2]))
def test_every_documented_command_parses(argv):
    from leukcore.cli import build_parser

    args = build_parser().parse_args(argv)
    assert callable(args.func)


def test_the_module_docstring_lists_every_subcommand():
    from leukcore import cli

    sub = next(a for a in cli.build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    for name in sub.choices:
        assert f"leukcore {name}" in cli.__doc__, name


def test_an_unknown_paper_is_one_line_and_exit_2(capsys):
    from leukcore.cli import main

    assert main(["experiments", "--paper", "no_such_paper"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "alnet_jawahar2022" in err


def test_cli_claims_prints_the_table(capsys):
    from leukcore.cli import main

    assert main(["claims", "--paper", "alnet_jawahar2022", "--format", "csv"]) == 0
    from io import StringIO

    df = pd.read_csv(StringIO(capsys.readouterr().out))
    from leukcore.evaluation.verdicts import COLUMNS

    assert list(df.columns) == list(COLUMNS)
    for col in ("reasons", "collapsed", "same_as", "dataset", "paper_dataset", "note"):
        assert col in df.columns
    assert df.set_index("claim").loc["alnet-params", "verdict"] == "reproduced"


def test_cli_seeds_are_parsed_and_checked():
    from leukcore.cli import _parse_seeds, build_parser

    assert _parse_seeds("0,1,2") == [0, 1, 2] and _parse_seeds(None) is None
    for bad in ("0,0", "a,b", "-1", ""):
        with pytest.raises(ValueError):
            _parse_seeds(bad)
    args = build_parser().parse_args(["reproduce", "--seeds", "0,1,2"])
    assert args.seeds == "0,1,2" and args.seed == 0


def test_plan_command_prints_markdown(capsys):
    from leukcore.cli import main

    assert main(["ray", "plan", "--bench", "/nonexistent/bench.json"]) == 0
    out = capsys.readouterr().out
    assert out.split("|")[1:4] == [" paper ", " experiments ", " trainings_smoke "] or \
        [c.strip() for c in out.splitlines()[0].split("|")[1:4]] == ["paper", "experiments", "trainings_smoke"]
    assert re.search(r"^\|\s*total\s*\|", out, flags=re.M) and "assumed H100 rates" in out

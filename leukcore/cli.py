"""The ``leukcore`` command line.

    leukcore data verify ROOT [--dataset ID] [--json]
    leukcore data fetch ID --to DIR
    leukcore experiments --paper ID --profile P
    leukcore reproduce [--paper ID|all] [--profile P] [--data-root DIR] [--device D] ...
    leukcore claims [--paper ID|all] [--format csv|json|md] [--consistency]
    leukcore findings [--format json|md] [--page P]   (our conclusions, each a declared test with its status)
    leukcore records verify [--paper ID|audits]  (every record checked; exit 1 on an error)
    leukcore book pages                 (the generated pages the book includes; `make book` runs it)
    leukcore figures gradcam --record R
    leukcore audits run [--audit ID[,ID...]] [--seeds 0,1,2] [--profile audit] ...
    leukcore audits summarise [--profile audit]
    leukcore bench [--quick]
    leukcore ray plan [--bench FILE] | ray bench [--paper ID] [--num-cpus N]
    leukcore gpu pack|unpack|check-data|run|grid|pool|collect   (a lent GPU: see README)
"""
from __future__ import annotations

import argparse
import os
import json
import sys


def _cmd_verify(args: argparse.Namespace) -> int:
    from .data import DataError, verify

    try:
        report = verify(args.root, args.dataset)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({k: v for k, v in report.items()}, indent=1, default=str))
        return 0 if report["ok"] else 1
    print(f"{report['dataset']} at {report['root']}")
    for part in report["parts"]:
        counts = ", ".join(f"{k} {v}" for k, v in part["counts"].items())
        print(f"  {part['name']}: {part['n']} images ({counts}); {part['duplicate_groups']} duplicate groups")
    if report["bad"]:
        print(f"{len(report['bad'])} bad or misplaced files:")
        for b in report["bad"]:
            print(f"  {b['path']}: {b['reason']}")
        return 1
    print("ok: every file decodes and sits in its class folder")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from .data import DataError, fetch_dataset

    try:
        dest = fetch_dataset(args.dataset, args.to)
    except (DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{args.dataset} downloaded to {dest}; use it with LEUKCORE_DATA={args.to}")
    return 0


def _cmd_experiments(args: argparse.Namespace) -> int:
    from .runs.protocols import list_experiments, list_papers

    papers = list_papers() if args.paper == "all" else [args.paper]
    for paper in papers:
        exps = list_experiments(paper, args.profile)
        print(f"{paper}: {len(exps)} experiments at profile {args.profile}")
        for e in exps:
            what = ", ".join(f"{k}={v}" for k, v in e.spec().items() if k not in ("paper", "id"))
            print(f"  {e.id:32s} {what}")
    return 0


def _parse_seeds(text: str | None) -> list[int] | None:
    """``"0,1,2"`` -> ``[0, 1, 2]`` (None when not given)."""
    if text is None:
        return None
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--seeds takes comma-separated integers, e.g. 0,1,2; got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"--seeds needs distinct non-negative integers, got {text!r}")
    return seeds


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from .runs.profiles import get_profile
    from .book.runner import list_notebooks, reproduce

    get_profile(args.profile)
    if getattr(args, "allow_dirty", False):  # paper-profile runs on uncommitted code record its diff
        from .runs.records import ALLOW_DIRTY_ENV

        os.environ[ALLOW_DIRTY_ENV] = "1"
    papers = list_notebooks() if args.paper == "all" else [args.paper]
    for p in papers:
        if p not in list_notebooks():
            print(f"error: unknown paper {p!r}; valid: {', '.join(list_notebooks())}", file=sys.stderr)
            return 2
    seeds = _parse_seeds(args.seeds)
    s = reproduce(papers, args.profile, data_root=args.data_root, device=args.device, seed=args.seed, seeds=seeds,
                  results_dir=args.results_dir, executor=args.executor, address=args.address, force=args.force,
                  progress=not args.no_progress, train=not args.no_train)
    g = s.grid
    if g is not None:
        print(f"\nexperiments: {len(g.records)} run, {len(g.failures)} failed ({g.wall_time_s:.0f} s)")
        for (p, e), err in g.failures.items():
            print(f"  FAILED {p}/{e}: {err}")
    for r in s.runs:
        extra = f" ({r.error})" if r.error else ""
        print(f"notebook {r.paper}: {r.status} in {r.seconds:.0f} s{extra}")
    return 0 if s.ok else 1


def _cmd_claims(args: argparse.Namespace) -> int:
    """The claims table (or, with --consistency, the consistency checks' findings) to standard output."""
    paper = None if args.paper == "all" else args.paper
    if args.consistency:
        from .evaluation.consistency import consistency_findings

        df = consistency_findings(paper=paper)
    else:
        from .evaluation.verdicts import claims_table

        df = claims_table(args.paper)
    if args.format == "csv":
        sys.stdout.write(df.to_csv(index=False))
    elif args.format == "json":
        sys.stdout.write(df.to_json(orient="records", indent=1, default_handler=str) + "\n")
    else:
        sys.stdout.write(df.to_markdown(index=False) + "\n")
    return 0


def _cmd_findings(args: argparse.Namespace) -> int:
    """Our own conclusions, each a declared test with the status its records give it."""
    from .book.findings import findings_table

    rows = findings_table(page=args.page)
    if args.format == "json":
        sys.stdout.write(json.dumps(rows, indent=1, default=str) + "\n")
        return 0
    import pandas as pd

    df = pd.DataFrame([{"id": r["id"], "page": r["page"], "status": r["status"], "statement": r["statement"],
                        "runs per side": " / ".join(map(str, r["runs_per_side"])), "test": r["test"]["quantity"],
                        "records": len(r["records"])} for r in rows])
    sys.stdout.write(df.to_markdown(index=False) + "\n")
    return 0


def _cmd_records_verify(args: argparse.Namespace) -> int:
    """Check every record against itself and its surroundings; one line per problem, exit 1 on an error."""
    from .verify import verify_records

    rep = verify_records(args.paper, root=args.results_dir, data_root=args.data_root)
    for p in rep.problems:
        print(p.line())
    print(rep.summary())
    return 1 if rep.errors else 0


def _cmd_book_pages(args: argparse.Namespace) -> int:
    """Write the generated pages the book includes (tables, legends, findings)."""
    from .book.pages import build_pages
    from .files import PROJECT_ROOT

    for p in build_pages():
        print(f"wrote {os.path.relpath(p, PROJECT_ROOT)}")
    return 0


def _cmd_ray_plan(args: argparse.Namespace) -> int:
    """Experiments per paper and profile with their estimated H100 GPU-hours, as markdown."""
    from .runs.distributed import load_bench_record, planning_table

    bench = load_bench_record(args.bench)
    print(planning_table(bench).to_markdown(index=False))
    print()
    print("Throughput: " + ("measured images/s from the benchmark record where it has the model, "
                            "assumed H100 rates otherwise" if bench else
                            "assumed H100 rates (no benchmark record at results/bench/latest.json)"))
    return 0


def _cmd_ray_bench(args: argparse.Namespace) -> int:
    """The smoke grid's wall time, executor local vs Ray, written as JSON."""
    from .bench.grid import bench_ray_vs_local

    print(json.dumps(bench_ray_vs_local(args.paper, args.profile, num_cpus=args.num_cpus, out=args.out,
                                        keep_dir=args.keep_dir), indent=1))
def _cmd_audits_run(args: argparse.Namespace) -> int:
    """Run the audits (each arm and seed reused when its record exists), then write their summaries."""
    from . import audits as A

    ids = A.list_audits() if args.audit in (None, "all") else [a.strip() for a in args.audit.split(",") if a.strip()]
    for a in ids:
        if a not in A.list_audits():
            print(f"error: unknown audit {a!r}; valid: {', '.join(A.list_audits())}", file=sys.stderr)
            return 2
    seeds = _parse_seeds(args.seeds) or list(A.default_seeds(args.profile))

    def log(msg: str) -> None:
        print(msg, flush=True)

    for a in ids:
        if a in A.SEEDED_AUDITS:
            rec = A.get_or_run_audit(a, args.profile, seeds=seeds, data_root=args.data_root, device=args.device,
                                     results_dir=args.results_dir, force=args.force, log=log)
        else:  # one record, deterministic given its data (colour baselines, loss equivalence) or not run
            rec = A.get_or_run_audit(a, args.profile, seed=seeds[0], data_root=args.data_root, device=args.device,
                                     results_dir=args.results_dir, force=args.force)
        log(f"== {a}: {rec['headline'] if rec else 'no seed has every arm yet'}")
    return 0


def _cmd_audits_summarise(args: argparse.Namespace) -> int:
    """Pool the arm records of every seeded audit into its summary record."""
    from . import audits as A

    for a, rec in A.summarise_all(args.profile, results_dir=args.results_dir).items():
        print(f"{a}: {rec['headline'] if rec else 'no seed has every arm yet'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``leukcore`` command."""
    from .runs.profiles import list_profiles

    p = argparse.ArgumentParser(prog="leukcore", description="Reproduction of deep-learning ALL classifiers")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("data", help="verify or download datasets")
    dsub = d.add_subparsers(dest="data_command", required=True)
    v = dsub.add_parser("verify", help="counts, duplicates and bad files of a dataset folder (exit 1 if any bad)")
    v.add_argument("root")
    v.add_argument("--dataset", default=None, help="dataset id (default: detected from the layout)")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.set_defaults(func=_cmd_verify)
    f = dsub.add_parser("fetch", help="download a dataset through kagglehub (needs credentials and internet)")
    f.add_argument("dataset")
    f.add_argument("--to", required=True, help="data root to place <dataset> under")
    f.set_defaults(func=_cmd_fetch)

    e = sub.add_parser("experiments", help="list a paper's experiments")
    e.add_argument("--paper", default="all")
    e.add_argument("--profile", default="smoke", choices=list_profiles())
    e.set_defaults(func=_cmd_experiments)

    r = sub.add_parser("reproduce", help="run pending experiments, then execute notebooks into the book")
    r.add_argument("--paper", default="all", help="paper id, audits_beyond, or 'all' (every paper, then the audits)")
    r.add_argument("--profile", default="smoke", choices=list_profiles())
    r.add_argument("--data-root", default=None)
    r.add_argument("--device", default="auto", help="auto | cpu | cuda")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--seeds", default=None,
                   help="comma-separated seeds, e.g. 0,1,2: train and record every experiment once per seed "
                        "(a firm verdict needs 3 runs)")
    r.add_argument("--results-dir", default=None, help="where run records go (default: results/)")
    r.add_argument("--executor", default="local", choices=["local", "ray"])
    r.add_argument("--address", default=None, help="Ray cluster address (executor ray); default: a local instance")
    r.add_argument("--force", action="store_true", help="retrain, and replace higher-profile pages")
    r.add_argument("--no-train", action="store_true",
                   help="render pages from existing records only; experiments without one show as 'not run'")
    r.add_argument("--no-progress", action="store_true")
    r.add_argument("--allow-dirty", action="store_true",
                   help="let paper-profile runs use uncommitted code; its diff is stored beside each record")
    r.set_defaults(func=_cmd_reproduce)

    from .evaluation.verdicts import COLUMN_DICTIONARY

    columns = "\n".join(f"  {k:18s} {v}" for k, v in COLUMN_DICTIONARY.items())
    c = sub.add_parser("claims", help="every ledger claim beside our measurement, verdict and reasons",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="columns of the claims table (--format csv|json|md):\n" + columns)
    c.add_argument("--paper", default="all", help="paper id or 'all'")
    c.add_argument("--format", default="md", choices=["csv", "json", "md"])
    c.add_argument("--consistency", action="store_true",
                   help="print the consistency checks' findings (rule, paper, claims, printed, implication, "
                        "severity, kind, label); kind: impossible (no reading makes the printed numbers all "
                        "true), disagrees (two places print different values for one quantity), mislabelled "
                        "(a number under a wrong name), typo (a digit left out or two swapped, intended value "
                        "evident), implausible (true only under an unstated reading: a warning)")
    c.set_defaults(func=_cmd_claims)

    fi = sub.add_parser("findings", help="our own conclusions, each a declared test with its status "
                                         "(supported / inconclusive / not supported) computed from the records")
    fi.add_argument("--format", default="md", choices=["json", "md"])
    fi.add_argument("--page", default=None, help="only the conclusions of one page (landing, audits, a paper id)")
    fi.set_defaults(func=_cmd_findings)

    rc = sub.add_parser("records", help="the run records under results/: verify")
    rcsub = rc.add_subparsers(dest="records_command", required=True)
    rv = rcsub.add_parser("verify", help="check every record against itself, its predictions, settings, data and "
                                         "commit; one line per problem, exit 1 on any error")
    rv.add_argument("--paper", default=None, help="one paper id, or 'audits' (default: every record)")
    rv.add_argument("--results-dir", default=None, help="default: results/")
    rv.add_argument("--data-root", default=None, help="where the datasets are (default: the usual search)")
    rv.set_defaults(func=_cmd_records_verify)

    au = sub.add_parser("audits", help="the audits beyond the papers (leukcore.audits): run, summarise")
    asub = au.add_subparsers(dest="audits_command", required=True)
    ar = asub.add_parser("run", help="run the audits' arms for each seed (reusing records), then summarise")
    ar.add_argument("--audit", default="all", help="audit id, comma-separated ids, or 'all'")
    ar.add_argument("--profile", default="audit", choices=list_profiles())
    ar.add_argument("--seeds", default=None, help="comma-separated seeds (default: the profile's, 0,1,2 at audit)")
    ar.add_argument("--data-root", default=None)
    ar.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ar.add_argument("--results-dir", default=None, help="where records go (default: results/)")
    ar.add_argument("--force", action="store_true", help="rerun even where a record with the same key exists")
    ar.set_defaults(func=_cmd_audits_run)
    asu = asub.add_parser("summarise", help="pool the arm records into one summary per audit")
    asu.add_argument("--profile", default="audit", choices=list_profiles())
    asu.add_argument("--results-dir", default=None)
    asu.set_defaults(func=_cmd_audits_summarise)

    try:
        from .bench.cli import register_cli
    except ImportError:
        register_cli = None
    if register_cli is not None:
        register_cli(sub)
    bk = sub.add_parser("book", help="the book's generated pages")
    bsub = bk.add_subparsers(dest="book_command", required=True)
    bsub.add_parser("pages", help="write book/_generated/ (tables, legends, findings) from the records") \
        .set_defaults(func=_cmd_book_pages)
    ray = sub.add_parser("ray", help="plan or benchmark the Ray executor")
    rsub = ray.add_subparsers(dest="ray_command", required=True)
    plan = rsub.add_parser("plan", help="experiments per paper and profile, estimated H100 GPU-hours")
    plan.add_argument("--bench", default=None, help="benchmark record (default: results/bench/latest.json)")
    plan.set_defaults(func=_cmd_ray_plan)
    rb = rsub.add_parser("bench", help="smoke grid wall time, executor local vs ray (written as JSON)")
    rb.add_argument("--paper", default="dscnet_vijayalakshmi")
    rb.add_argument("--profile", default="smoke")
    rb.add_argument("--num-cpus", type=int, default=2, help="CPUs (workers) of the local Ray instance")
    rb.add_argument("--out", default=None, help="default: results/bench/ray_vs_local.json")
    rb.add_argument("--keep-dir", default=None, help="keep the two results folders here")
    rb.set_defaults(func=_cmd_ray_bench)
    from .gpu_lease import register_cli as register_gpu

    register_gpu(sub)
    from .book.figures import register_cli as register_figures

    register_figures(sub)  # leukcore figures gradcam
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``leukcore`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as e:  # unknown names and bad settings: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""``leukcore bench``: the command, and the plain-text table of a record it prints."""
from __future__ import annotations

import argparse

from .record import PARTS, run_bench, study_blocks, study_label


def bench_table_text(record: dict) -> str:
    """A plain-text table of the record's main figures (what ``leukcore bench`` prints)."""
    rows = []
    dp = record.get("data_path")
    if dp:
        for key in [k for k in dp if k.startswith("leukcore")] + ["naive"]:
            b = dp.get(key)
            if isinstance(b, dict) and "images_per_s" in b:
                rows.append((f"data path: {key}", f"{b['images_per_s']:.1f} img/s",
                             f"{b['images_per_s_min']:.1f}-{b['images_per_s_max']:.1f}",
                             f"{b['cpu_ms_per_image']:.2f} CPU-ms/img"))
        rows.append(("data path: ratio", f"{dp['ratio']:.1f}x", f"{dp['ratio_range'][0]:.1f}-{dp['ratio_range'][1]:.1f}",
                     f"CPU-time ratio {dp['cpu_ratio']:.1f}x"
                     + (f" (1 thread: {dp['cpu_ratio_1thread']:.1f}x)" if dp.get("cpu_ratio_1thread") else "")))
        rows.append(("data path: first decode", f"{dp['warmup']['first_decode_s']:.1f} s",
                     f"{dp['warmup']['first_decode_images_per_s']:.0f} img/s", "excluded"))
    for dev, blk in (record.get("train_step") or {}).items():
        if "error" in blk:
            rows.append((f"train {dev}", "failed", "", blk["error"][:120]))
        for row in blk.get("models", []):
            tag = f"train {row['model']}@{row['image_size']} {dev}"
            rows.append((f"{tag}: leukcore", f"{row['leukcore']['images_per_s']:.1f} img/s",
                         f"{row['leukcore']['images_per_s_min']:.1f}-{row['leukcore']['images_per_s_max']:.1f}", ""))
            rows.append((f"{tag}: plain", f"{row['plain']['images_per_s']:.1f} img/s",
                         f"{row['plain']['images_per_s_min']:.1f}-{row['plain']['images_per_s_max']:.1f}", ""))
            extra = ""
            if row.get("leukcore_peak_fraction") is not None:
                extra = f"{100 * row['leukcore_peak_fraction']:.1f}% of bf16 peak"
            rr = row.get("ratio_range")
            rows.append((f"{tag}: ratio", f"{row['ratio']:.2f}x", f"{rr[0]:.2f}-{rr[1]:.2f}" if rr else "", extra))
    for _, st in study_blocks(record):
        lab = study_label(st)
        rows.append((f"study: smoke reproduce{lab}", f"{st['reproduce']['wall_s']:.0f} s", "",
                     "ok" if st["reproduce"].get("ok") else "failures"))
        rows.append((f"study: book build{lab}", f"{st['book']['seconds']:.0f} s", "",
                     "ok" if st["book"]["ok"] else "failed"))
        rows.append((f"study: total{lab}", f"{st['total_s']:.0f} s", "", ""))
    cr = record.get("cpu_runs") or {}
    rows.append(("cpu-profile runs", f"{cr.get('n', 0)} runs", f"{cr.get('total_s', 0):.0f} s", ""))
    au = record.get("audit_runs") or {}
    for dev, secs in (au.get("by_device") or {}).items():
        rows.append((f"audit profile ({dev})", f"{au.get('n', 0)} records", f"{secs:.0f} s", ""))
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    text = "\n".join("  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip() for r in rows)
    ld = record.get("load", {})
    text += f"\nload: {ld.get('note', '')}"
    for t in record.get("targets", []):
        text += f"\ntarget {t['name']}: {t['target']}, measured {t['measured']}: {'met' if t['met'] else 'NOT MET'}"
    return text


def _cmd_bench(args: argparse.Namespace) -> int:
    threads = [None if t.strip() in ("", "default") else int(t) for t in (args.study_threads or "default").split(",")]
    parts = [p.strip() for p in (args.parts or ",".join(PARTS)).split(",") if p.strip()]
    rec = run_bench(quick=args.quick, reps=args.reps, skip_study=args.skip_study, device=args.device,
                    compile=args.compile, study_threads=threads, out=args.out, parts=parts,
                    cpu_train=not args.no_cpu_train)
    print()
    print(bench_table_text(rec))
    print(f"\nrecord: {rec['_path']}")
    return 0


def register_cli(subparsers) -> None:
    """Add ``leukcore bench [--quick] [--out PATH] [--reps N] [--skip-study]`` to the CLI."""
    b = subparsers.add_parser("bench", help="benchmark the data path, training steps and the whole study")
    b.add_argument("--quick", action="store_true", help="a tiny version (a few batches; for CI); no study")
    b.add_argument("--out", default=None,
                   help="record path (default results/bench/latest.json; quick.json with --quick)")
    b.add_argument("--reps", type=int, default=None, help="timed repetitions after the warm-up (default 3; 2 quick)")
    b.add_argument("--skip-study", action="store_true", help="skip the smoke reproduction + book build timing")
    b.add_argument("--device", default="auto", help="auto | cpu | cuda (training step; data path also on cuda)")
    b.add_argument("--compile", action="store_true",
                   help="on CUDA also time fit with torch.compile (default mode and reduce-overhead)")
    b.add_argument("--parts", default=None,
                   help=f"comma-separated subset of {','.join(PARTS)} (default: all)")
    b.add_argument("--no-cpu-train", action="store_true",
                   help="skip the CPU training step (on a GPU machine)")
    b.add_argument("--study-threads", default=None,
                   help="torch intra-op threads for the study's subprocesses (OMP_NUM_THREADS), comma-separated to "
                        "time several settings, e.g. 'default,1' (default: torch's own)")
    b.set_defaults(func=_cmd_bench)

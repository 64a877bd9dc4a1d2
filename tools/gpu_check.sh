#!/usr/bin/env bash
# The GPU benchmark of this study, in one call on a lent GPU machine (see DEVELOPERS.md, "GPU").
# For paper-profile records use tools/gpu_lease.sh (README, "The next GPU lease, step by step"):
# it carries the full dataset, runs the pending work in the study's order and packs it as it goes.
#
#   bash tools/gpu_check.sh OUT_DIR [DATA_ROOT] [SECONDS]
#
# 1. `leukcore bench --device cuda --compile --parts data,train --no-cpu-train`: the training step of
#    alnet@224 and dscnet@224 with fit's defaults (bf16 autocast, channels-last, fused Adam,
#    deterministic), without deterministic algorithms, with torch.compile and with its CUDA-graph mode,
#    each against the plain fp32 eager loop; the data path on the GPU (synthetic stand-in unless
#    LEUKCORE_DATA holds taleqani-all). Record: OUT_DIR/bench_gpu.json.
# 2. When DATA_ROOT holds taleqani-all: the `paper` profile of dscnet_vijayalakshmi, then of
#    dscnet_kaur2023, as far as SECONDS (default 540) allows; each complete experiment writes its
#    record, so a run stopped by the time limit keeps the finished ones. Records: OUT_DIR/paper_results.tgz.
set -u -o pipefail
OUT=${1:?usage: gpu_check.sh OUT_DIR [DATA_ROOT] [SECONDS]}
DATA=${2:-}
BUDGET=${3:-540}
T0=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD CUBLAS_WORKSPACE_CONFIG=:4096:8
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee "$OUT/env.txt"
python3 -c "import sys, torch, torchvision; print(sys.version.split()[0], torch.__version__, torchvision.__version__, torch.cuda.get_device_name(0))" 2>&1 | tee -a "$OUT/env.txt"

# 1. benchmark (its record is saved after each part and variant)
[ "${SKIP_BENCH:-0}" = 1 ] || timeout $(( $(left) < 300 ? $(left) : 300 )) python3 -m leukcore.cli bench --device cuda --compile \
  --parts data,train --no-cpu-train --reps 5 --out "$OUT/bench_gpu.json" 2>&1 | tee "$OUT/bench.log" | grep -v Warning
echo "bench rc=$? after $(( $(date +%s) - T0 )) s"

# 2. paper profile, as far as the time allows
if [ -n "$DATA" ] && [ "$(find "$DATA/taleqani-all/Original" -type f 2>/dev/null | wc -l)" = 3256 ]; then
  RES=/tmp/leukcore-paper-results
  for paper in dscnet_vijayalakshmi dscnet_kaur2023; do
    t=$(( $(left) - 20 ))
    [ "$t" -gt 30 ] || { echo "no time left for $paper"; break; }
    timeout "$t" python3 - "$paper" "$DATA" "$RES" <<'PY' 2>&1 | tee -a "$OUT/paper.log" | grep -v Warning
import sys, time
from leukcore.runs.experiments import get_or_run
from leukcore.runs.protocols import list_experiments
paper, data, res = sys.argv[1:]
for e in list_experiments(paper, "paper"):
    t0 = time.perf_counter()
    try:
        r = get_or_run(paper, e.id, "paper", data_root=data, device="cuda", results_dir=res, progress=False)
        print(f"{paper}/{e.id}: accuracy {r['metrics']['accuracy']:.4f} in {time.perf_counter() - t0:.0f} s "
              f"({r['dataset']['id']}, {r['device']})", flush=True)
    except Exception as err:  # noqa: BLE001
        print(f"{paper}/{e.id}: FAILED {type(err).__name__}: {err}", flush=True)
PY
  done
  (cd "$RES" && tar czf "$OUT/paper_results.tgz" --exclude=checkpoints .) && ls -la "$OUT"
else
  echo "no complete taleqani-all under '$DATA': paper profile not run"
fi
echo "done after $(( $(date +%s) - T0 )) s"

#!/usr/bin/env bash
# One lease of a lent GPU machine, in one call (README, "Performance and GPU runs").
#
#   bash tools/gpu_lease.sh OUT [BUDGET_SECONDS] [WORKERS]
#
# 1. Installs the carried wheels (.whl/, e.g. xgboost-cpu for XIncept) into /tmp/site.
# 2. Stops unless the tree is clean (`git status --porcelain` empty; ALLOW_DIRTY=1 runs anyway and
#    saves the diff in OUT): every record names the commit that made it.
# 3. Adds the carried dataset parts (.gpu-pack/) to $DATA (default /tmp/leukcore-data, kept between
#    back-to-back calls) and refuses to train unless the assembled dataset matches its manifest.
# 4. GRID_EPOCHS>0 (default 10): the grid throughput of Kaur's six DSCNet experiments at that many
#    epochs, one at a time against WORKERS at once, into OUT/bench_gpu.json (a copy of
#    results/bench/gpu.json with a `grid` block).
# 5. `leukcore gpu run`: pending work in order (Vijayalakshmi seeds 0-2, audits, XIncept fold by
#    fold, Kaur seed 0) within what is left of BUDGET (default 540 s), WORKERS at once (default 3),
#    packed into OUT/<stage>.tar.gz after every finished run. OUT/lease.json says what ran.
# At most 8 files come back: up to 4 stage tars, lease.json, lease.log, bench_gpu.json, lease.diff.
set -u -o pipefail
OUT=${1:?usage: gpu_lease.sh OUT [BUDGET_SECONDS] [WORKERS]}
BUDGET=${2:-540}
WORKERS=${3:-3}
DATA=${DATA:-/tmp/leukcore-data}
PROFILE=${PROFILE:-paper}
DEVICE=${DEVICE:-cuda}
GRID_EPOCHS=${GRID_EPOCHS:-10}
T0=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
mkdir -p "$OUT"
exec > >(tee -a "$OUT/lease.log") 2>&1
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD CUBLAS_WORKSPACE_CONFIG=:4096:8
PY=${PYTHON:-python3}

if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PYTHONPATH || echo "wheels in .whl/ did not install"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
$PY -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.version.cuda, torch.cuda.is_available())"
echo "commit $(git rev-parse HEAD 2>&1)"

changes=$(git status --porcelain 2>&1)
if [ -n "$changes" ] && [ "${ALLOW_DIRTY:-0}" != 1 ]; then
  echo "REFUSED: the working tree has changes (git status --porcelain):"; echo "$changes"
  echo "commit them first (records must name the code that made them), or set ALLOW_DIRTY=1"
  exit 3
fi
DIRTY=(); [ -n "$changes" ] && DIRTY=(--allow-dirty)

REQ=()
if [ "$PROFILE" = paper ] || [ -d .gpu-pack ]; then
  [ -d .gpu-pack ] && $PY -m leukcore.cli gpu unpack --src .gpu-pack --dest "$DATA"
  $PY -m leukcore.cli gpu check-data --root "$DATA" || { echo "REFUSED: no complete dataset at $DATA"; exit 4; }
  DATA_ARGS=(--data-root "$DATA")
  REQ=(--require-data)
else
  REQ=()
  DATA_ARGS=()
fi

if [ "$GRID_EPOCHS" -gt 0 ] && [ "$(left)" -gt 200 ]; then
  cp results/bench/gpu.json "$OUT/bench_gpu.json" 2>/dev/null || true
  G=dscnet_kaur2023
  timeout $(( $(left) / 3 )) $PY -m leukcore.cli gpu grid --profile "$PROFILE" --device "$DEVICE" --workers "$WORKERS" \
    --epochs "$GRID_EPOCHS" "${DATA_ARGS[@]}" --bench-out "$OUT/bench_gpu.json" \
    --experiments $G/dscnet-kl-aug,$G/dscnet-kl-noaug,$G/dscnet-sparse_ce-aug,$G/dscnet-sparse_ce-noaug,$G/dscnet-mce-aug,$G/dscnet-mce-noaug \
    | grep -v Warning
  echo "grid rc=$? after $(( $(date +%s) - T0 )) s"
fi

timeout $(( $(left) - 5 )) $PY -m leukcore.cli gpu run --budget $(( $(left) - 15 )) --out "$OUT" --profile "$PROFILE" \
  --device "$DEVICE" --workers "$WORKERS" "${DATA_ARGS[@]}" "${REQ[@]}" "${DIRTY[@]}" ${LEASE_ARGS:-} | grep -v Warning
echo "lease rc=$? after $(( $(date +%s) - T0 )) s"; ls -la "$OUT"

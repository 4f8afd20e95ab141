#!/usr/bin/env bash
# The GPU checks in one call, under 8 minutes: every `gpu`- and `keops`-marked
# test, then Sinkhorn (otgen against GeomLoss) and training on CUDA.
#
#   bash benchmarks/device_check.sh          # from the repository root
#
# Results go to $OUT (the device tool's folder) or benchmarks/results/device.
# The device machine reaches no package index: this script installs nothing
# and says which import is missing instead. Exit status: 0 all ran and
# passed, 1 a step failed, 2 no CUDA device (nothing was checked).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/device}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
{ date -u; git rev-parse --short HEAD 2>/dev/null; cat /proc/loadavg; nvidia-smi 2>&1 | head -15; } | tee "$OUT/machine.txt"
for mod in torch numpy scipy ot geomloss pykeops numba; do
    python -c "import $mod" 2>/dev/null || echo "missing module: $mod" | tee -a "$OUT/machine.txt"
done
if ! python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "device_check: no CUDA device visible to torch: nothing checked" | tee -a "$OUT/machine.txt"
    exit 2
fi
status=0
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log, keep going
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit} s)"
    local t0=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 25 "$OUT/$name.log"
    echo "== $name: exit $rc in $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
    [ "$rc" -eq 0 ] || status=1
}
step tests 240 python -m pytest -q -m "gpu or keops" -p no:cacheprovider tests
step sinkhorn 120 python benchmarks/bench_sinkhorn.py --device cuda \
    --sizes 10000 100000 --dims 3 --modes fwd+bwd --repeats 3 --limit 30 \
    --peers geomloss-online geomloss-multiscale --name "$PWD/$OUT/bench_sinkhorn_cuda"
step train 90 python benchmarks/bench_train.py --devices cuda --steps 500
cat "$OUT/summary.txt"
exit $status

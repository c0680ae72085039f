#!/usr/bin/env bash
# GPU check: builds funnel with the wgpu backend, then runs the same work on the CPU (flex) and
# on the GPU (wgpu) and prints the times and how far the numbers agree:
#   1. the quickstart (training, capture, every estimator of a run);
#   2. a large metrics job: kNN KL on N points per side in D dimensions, and Sinkhorn W1 on
#      SINKHORN_N points per side (its default cap), with `funnel estimate`.
# Usage: scripts/gpu-check.sh [--device N]   (env: N=100000 D=256 SINKHORN_N=5000 SKIP_CPU=0)
# Needs a Vulkan driver (NVIDIA's, or Debian's mesa-vulkan-drivers for a software check).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-100000}"; D="${D:-256}"; SINKHORN_N="${SINKHORN_N:-5000}"; SKIP_CPU="${SKIP_CPU:-0}"
device_args=("$@")
export CARGO_TERM_COLOR=never
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT

# the feature set CI's equivalence tests use, so a machine that ran CI has it compiled already
echo "== build (features flex, ndarray, wgpu)"
cargo build --release --features wgpu,ndarray --bin funnel --example clouds 2>&1 | tail -1
target="${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps | sed 's/.*"target_directory":"\([^"]*\)".*/\1/')}"
funnel="$target/release/funnel"
"$funnel" devices

# seconds a command takes; its stdout goes to $work/$1.out
timed() {
  local name="$1"; shift
  local t0; t0=$(date +%s%N)
  "$@" > "$work/$name.out" 2> "$work/$name.err" || { echo "FAILED: $*" >&2; tail -5 "$work/$name.err" >&2; return 1; }
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

# largest relative difference between the numeric cells of two CSVs (timing columns left out)
compare_csv() {
  python3 - "$1" "$2" <<'PY' 2>/dev/null || awk 'BEGIN{print "n/a (python3 missing)"}'
import csv, sys, math
a, b = (list(csv.DictReader(open(p))) for p in sys.argv[1:3])
worst, where = 0.0, ""
for i, (ra, rb) in enumerate(zip(a, b)):
    for k in ra:
        if "seconds" in k: continue
        try: x, y = float(ra[k]), float(rb[k])
        except ValueError: continue
        if math.isnan(x) and math.isnan(y): continue
        d = abs(x - y) / max(abs(x), abs(y), 1e-12)
        if d > worst: worst, where = d, f"row {i} {k}: {x} vs {y}"
print(f"{worst:.2e}  ({where})" if where else "0")
PY
}

# one estimate of `funnel estimate --json` output: value [lo, hi], null, estimator, points
show() {
  python3 - "$1" "$2" <<'PY' 2>/dev/null || echo "(python3 missing: see $1)"
import json, sys
e = json.load(open(sys.argv[1]))[sys.argv[2]]
print(f"{e['value']:.6g} [{e['lo']:.6g}, {e['hi']:.6g}] null {e['null']:.6g} · {e['estimator']} · {e['points']['p']}+{e['points']['q']} points")
PY
}
reldiff() {
  python3 - "$1" "$2" "$3" <<'PY' 2>/dev/null || echo "n/a"
import json, sys
a, b = (json.load(open(p))[sys.argv[3]]["value"] for p in sys.argv[1:3])
print(f"{abs(a - b) / max(abs(a), abs(b), 1e-12):.2e}")
PY
}

# The quickstart twice per backend: as configured (timing), and with its dropout off, because
# dropout masks come from each backend's own random generator (README, Backends) while a
# deterministic network must give the same numbers everywhere.
echo "== 1. quickstart"
for b in flex wgpu; do
  if [ "$b" = flex ] && [ "$SKIP_CPU" = 1 ]; then continue; fi
  extra=(); [ "$b" = wgpu ] && extra=("${device_args[@]}")
  s=$(timed "qs-$b" "$funnel" run configs/quickstart.toml --out "$work/qs-$b" --backend "$b" "${extra[@]}")
  d=$(timed "qd-$b" "$funnel" run configs/quickstart.toml --out "$work/qd-$b" --backend "$b" "${extra[@]}" \
        --set 'model.regularizer={kind="none"}')
  echo "quickstart on $b: ${s} s (without dropout: ${d} s)"
done
if [ "$SKIP_CPU" != 1 ]; then
  echo "quickstart without dropout, flex vs wgpu, largest relative difference in training.csv: $(compare_csv "$work"/qd-flex/quickstart/*/training.csv "$work"/qd-wgpu/quickstart/*/training.csv)"
  echo "  and in layers.csv: $(compare_csv "$work"/qd-flex/quickstart/*/layers.csv "$work"/qd-wgpu/quickstart/*/layers.csv)"
fi

echo "== 2. metrics: kNN KL, N=$N, D=$D; Sinkhorn W1 on $SINKHORN_N per side"
"$target/release/examples/clouds" "$work/p.npy" "$N" "$D" 0 1
"$target/release/examples/clouds" "$work/q.npy" "$N" "$D" 0.05 2
for b in flex wgpu; do
  if [ "$b" = flex ] && [ "$SKIP_CPU" = 1 ]; then continue; fi
  extra=(); [ "$b" = wgpu ] && extra=("${device_args[@]}")
  s=$(timed "knn-$b" "$funnel" estimate --p "$work/p.npy" --q "$work/q.npy" --kl knn --w1 sliced \
        --max-points "$N" --bootstrap 2 --json --backend "$b" "${extra[@]}")
  echo "kNN KL + sliced W1 on $b: ${s} s   KL $(show "$work/knn-$b.out" kl)"
  s=$(timed "sk-$b" "$funnel" estimate --p "$work/p.npy" --q "$work/q.npy" --kl gaussian --w1 sinkhorn \
        --max-points "$SINKHORN_N" --bootstrap 2 --json --backend "$b" "${extra[@]}")
  echo "Sinkhorn W1 on $b: ${s} s   W1 $(show "$work/sk-$b.out" w1)"
done
if [ "$SKIP_CPU" != 1 ]; then
  echo "flex vs wgpu, relative difference: kNN KL $(reldiff "$work/knn-flex.out" "$work/knn-wgpu.out" kl), sliced W1 $(reldiff "$work/knn-flex.out" "$work/knn-wgpu.out" w1), Sinkhorn W1 $(reldiff "$work/sk-flex.out" "$work/sk-wgpu.out" w1)"
fi
echo "== done"

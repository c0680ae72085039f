#!/usr/bin/env bash
# Reruns every study of issue 4 and copies what the write-ups cite into experiments/:
# summary.csv, aggregate.csv and the figures of each sweep; gibbs.csv, fits.csv, report.md and
# the figure of the exact Gibbs enumeration. About 18 minutes on 2 cores once built (most of it
# the permutation nulls of contraction/noise). The depth sweep runs separately (README there).
#   scripts/studies.sh [FUNNEL_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
funnel=${1:-}
if [[ -z "$funnel" ]]; then
    cargo build --release
    funnel="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/funnel"
fi
out=results/studies
copy_sweep() { # sweep name, study folder
    rm -rf "$2/plots"
    cp "$out/$1/summary.csv" "$out/$1/aggregate.csv" "$2/"
    cp -r "$out/$1/plots" "$2/plots"
}
for study in linear-gaussian/study.toml contraction/dropout/study.toml contraction/noise/study.toml \
             deeper-narrower/study.toml funnel/study.toml gibbs-rate/sgld/study.toml; do
    name=$(grep -m1 "^name = " "experiments/$study" | sed "s/^name = \"\(.*\)\"/\1/")
    rm -rf "${out:?}/$name"
    "$funnel" sweep "experiments/$study" --out "$out" --jobs 2 | tail -1
    copy_sweep "$name" "experiments/$(dirname "$study")"
done
rm -rf "$out/gibbs-rate"
"$funnel" gibbs experiments/gibbs-rate/gibbs.toml --out "$out"
run=$(ls -d "$out"/gibbs-rate/*/ | tail -1)
rm -rf experiments/gibbs-rate/plots
cp "$run/gibbs.csv" "$run/fits.csv" "$run/report.md" "$run/summary.json" experiments/gibbs-rate/
cp -r "$run/plots" experiments/gibbs-rate/plots

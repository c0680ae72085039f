#!/usr/bin/env bash
# Reruns every study of the paper's results and copies what the write-ups cite into
# experiments/: summary.csv, aggregate.csv, rankings.csv and the figures of each sweep; the
# outputs of the exact Gibbs enumerations. About 27 minutes on 2 cores once built (timings per
# study in each README). experiments/estimator-calibration (`funnel selftest`, 7.5 min) is not
# rerun here: run `funnel selftest > experiments/estimator-calibration/selftest.txt`.
#   scripts/studies.sh [FUNNEL_BINARY] [STUDY_FOLDER...]   (default: every study)
set -euo pipefail
cd "$(dirname "$0")/.."
funnel=${1:-}
if [[ -z "$funnel" ]]; then
    cargo build --release
    funnel="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/funnel"
fi
shift || true
sweeps=(depth-sweep/study.toml funnel/study.toml contraction/dropout/study.toml
        contraction/noise/study.toml linear-gaussian/study.toml deeper-narrower/study.toml
        digits/study.toml gibbs-rate/sgld/study.toml)
gibbs=(gibbs-rate/gibbs.toml deeper-narrower-gibbs/gibbs.toml)
if [[ $# -gt 0 ]]; then # only the named study folders
    keep() { local f; for f in "$@"; do [[ "$f" == "$pick"/* ]] && echo "$f"; done; }
    s=(); g=()
    for pick in "$@"; do
        pick=${pick%/}; pick=${pick#experiments/}
        mapfile -t -O "${#s[@]}" s < <(keep "${sweeps[@]}")
        mapfile -t -O "${#g[@]}" g < <(keep "${gibbs[@]}")
    done
    sweeps=("${s[@]}"); gibbs=("${g[@]}")
fi
out=results/studies
for study in "${sweeps[@]}"; do
    name=$(grep -m1 "^name = " "experiments/$study" | sed "s/^name = \"\(.*\)\"/\1/")
    dest="experiments/$(dirname "$study")"
    rm -rf "${out:?}/$name"
    "$funnel" sweep "experiments/$study" --out "$out" --jobs 2 | tail -1
    rm -rf "$dest/plots"
    cp "$out/$name/summary.csv" "$out/$name/aggregate.csv" "$dest/"
    [[ -f "$out/$name/rankings.csv" ]] && cp "$out/$name/rankings.csv" "$dest/"
    # the figures as `funnel report` draws them from the committed study.toml (the sweep's own
    # plots/ follow the study file frozen into its sweep.json)
    "$funnel" report "$dest" > /dev/null
done
for file in "${gibbs[@]}"; do
    [[ -f "experiments/$file" ]] || { echo "skipping $file (not there)"; continue; }
    name=$(grep -m1 "^name = " "experiments/$file" | sed "s/^name = \"\(.*\)\"/\1/")
    dest="experiments/$(dirname "$file")"
    rm -rf "${out:?}/$name"
    "$funnel" gibbs "experiments/$file" --out "$out" | tail -1
    run=$(ls -d "$out/$name"/*/ | tail -1)
    rm -rf "$dest/plots"
    for f in "$run"/*.csv "$run/report.md" "$run/summary.json"; do cp "$f" "$dest/"; done
    cp -r "$run/plots" "$dest/plots"
done

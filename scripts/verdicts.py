#!/usr/bin/env python3
"""Prints the numbers the study write-ups under experiments/ cite, from the committed
summary.csv files (funnel's own output), with Student-t 95% intervals over seeds.

    python3 scripts/verdicts.py depth-sweep|funnel|contraction|linear-gaussian|digits|deeper-narrower

Standard library only. A value written `m [lo, hi]` is the mean over the seeds of one
configuration and its Student-t 95% interval (NaN entries dropped; `n` says how many remain);
`k/N` counts runs. Paired differences across layers are taken within each run first.
"""
import csv
import math
import os
import sys
from collections import OrderedDict
from pathlib import Path

ROOT = Path(os.environ.get("FUNNEL_EXPERIMENTS", Path(__file__).resolve().parent.parent / "experiments"))
# two-sided 95% Student-t quantiles t_{0.975, df}, df = 1..30 (standard table values)
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
NOT_AXES = {"cell", "status", "reason", "seed"}


def num(s):
    try:
        v = float(s)
    except (TypeError, ValueError):
        return math.nan
    return v


def finite(values):
    return [x for x in values if math.isfinite(x)]


def mean_ci(values):
    v = [x for x in values if not math.isnan(x)]
    n = len(v)
    if n == 0:
        return (math.nan, math.nan, math.nan, 0)
    m = sum(v) / n
    if n == 1:
        return (m, math.nan, math.nan, 1)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (n - 1))
    t = T975[n - 2] if n - 2 < len(T975) else 1.96
    h = t * sd / math.sqrt(n)
    return (m, m - h, m + h, n)


def fmt(ci, digits=3):
    m, lo, hi, n = ci
    if math.isnan(m):
        return "NaN (n=0)"
    g = lambda x: f"{x:.{digits}g}"
    if math.isnan(lo):
        return f"{g(m)} (n={n})"
    return f"{g(m)} [{g(lo)}, {g(hi)}]" + ("" if n >= 10 else f" (n={n})")


def load(study):
    path = ROOT / study / "summary.csv"
    rows = [r for r in csv.DictReader(open(path)) if r["status"] == "ok"]
    header = list(rows[0].keys())
    axes = [c for c in header[: header.index("gap_zero_one")] if c not in NOT_AXES]
    groups = OrderedDict()
    for r in rows:
        groups.setdefault(tuple(r[a] for a in axes), []).append(r)
    return axes, groups


def layers(r):
    return int(num(r["hidden_layers"])) + 2  # input, hidden layers, logits


def col(rs, name):
    return [num(r.get(name)) for r in rs]


def resolved(rs, kind, l):
    return f"{sum(1 for r in rs if r.get(f'{kind}_resolved_l{l}') == '1')}/{len(rs)}"


def per_layer_table(axes, groups, columns, title):
    print(f"\n## {title}")
    for key, rs in groups.items():
        print("\n" + ", ".join(f"{a} = {k}" for a, k in zip(axes, key)) + f"  ({len(rs)} runs)")
        print("layer | " + " | ".join(c for c, _ in columns))
        for l in range(layers(rs[0])):
            cells = []
            for _, f in columns:
                cells.append(f(rs, l))
            print(f"{l} | " + " | ".join(cells))


def kl_cols():
    return [
        ("KL estimate", lambda rs, l: fmt(mean_ci(col(rs, f"kl_l{l}")))),
        ("KL null", lambda rs, l: fmt(mean_ci(col(rs, f"kl_null_l{l}")))),
        ("KL resolved", lambda rs, l: resolved(rs, "kl", l)),
        ("D_l − D_{l−1} (paired)", lambda rs, l: "" if l == 0 else fmt(mean_ci(
            [num(r[f"kl_l{l}"]) - num(r[f"kl_l{l-1}"]) for r in rs]))),
        ("KL bound (0-1)", lambda rs, l: fmt(mean_ci(col(rs, f"kl_bound_l{l}")))),
        ("W1 resolved", lambda rs, l: resolved(rs, "w1", l)),
    ]


def gaps(axes, groups):
    print("\n## Gaps and the tightest resolved KL bound per configuration")
    print("config | runs | test 0-1 error | 0-1 gap | tightest resolved KL bound | runs with a resolved KL layer | bound ≥ gap (of those)")
    for key, rs in groups.items():
        b = col(rs, "kl_bound_min")
        g = col(rs, "gap_zero_one")
        have = [(x, y) for x, y in zip(b, g) if not math.isnan(x)]
        print(", ".join(f"{a}={k}" for a, k in zip(axes, key)) + f" | {len(rs)} | "
              f"{fmt(mean_ci(col(rs, 'test_zero_one')))} | {fmt(mean_ci(g))} | {fmt(mean_ci(b))} | "
              f"{len(have)}/{len(rs)} | {sum(1 for x, y in have if x >= y)}/{len(have)}")


def rises(axes, groups):
    print("\n## Consecutive-layer rises of the KL estimate (DPI: the truth never rises)")
    print("config | pairs | estimate rises | paired mean rise's interval above 0 (layer pairs)")
    for key, rs in groups.items():
        n_layers = layers(rs[0])
        pairs = rise = 0
        above = []
        for l in range(1, n_layers):
            diffs = [num(r[f"kl_l{l}"]) - num(r[f"kl_l{l-1}"]) for r in rs]
            pairs += sum(1 for d in diffs if not math.isnan(d))
            rise += sum(1 for d in diffs if d > 0)
            m, lo, hi, n = mean_ci(diffs)
            if lo > 0:
                above.append(f"{l-1}→{l}")
        print(", ".join(f"{a}={k}" for a, k in zip(axes, key)) + f" | {pairs} | {rise} | {', '.join(above) or 'none'}")


def w1_cols():
    c = lambda name, d=3: (lambda rs, l: fmt(mean_ci(col(rs, f"{name}_l{l}")), d))
    return [
        ("W_l", c("w1")),
        ("W1 null", c("w1_null")),
        ("W1 resolved", lambda rs, l: resolved(rs, "w1", l)),
        ("ρ product", c("lipschitz")),
        ("ρ CP", c("lipschitz_cp")),
        ("ρ box", c("lipschitz_box")),
        ("ρ̂ empirical", c("lipschitz_local")),
        ("bound, product", c("w1_bound")),
        ("bound, certified", c("w1_bound_cert")),
        ("ρ̂·W + c·TV", c("w1_bound_local")),
        ("ρ_cert·(W − null)", c("w1_debiased_cert")),
    ]


def funnels(axes, groups):
    print("\n## Where each curve is smallest (runs per layer)")
    from collections import Counter
    for key, rs in groups.items():
        print("\n" + ", ".join(f"{a} = {k}" for a, k in zip(axes, key)) + f"  ({len(rs)} runs)")
        for c in ["w1_min_layer", "funnel_layer", "funnel_layer_cert", "funnel_layer_cert_any",
                  "funnel_layer_local", "funnel_layer_debiased_cert"]:
            counts = Counter(r.get(c, "") for r in rs)
            print(f"  {c}: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
        deb = Counter()
        margins = []
        for r in rs:
            n = layers(r)
            res = [l for l in range(n) if r.get(f"w1_resolved_l{l}") == "1"]
            if res:
                deb[min(res, key=lambda l: num(r[f"w1_debiased_cert_l{l}"]))] += 1
            w = sorted(num(r[f"w1_l{l}"]) for l in range(n))
            margins.append(w[1] / w[0])
        print("  argmin of ρ_cert·(W − null) over resolved layers: "
              + (", ".join(f"{k}: {v}" for k, v in sorted(deb.items())) or "no resolved layer"))
        margins.sort()
        print(f"  second-smallest W_l / smallest W_l: min {margins[0]:.2f}, median "
              f"{margins[len(margins) // 2]:.2f}, max {margins[-1]:.2f} (a rescaling of the "
              "argmin layer by more than this moves the raw-W1 argmin)")


def contraction(axes, groups):
    print("\n## Measured contraction D_l/D_{l-1} against η_l (means over seeds; vs η: runs whose"
          " interval lies below / contains / lies above η_l; runs with an unbounded upper end)")
    from collections import Counter
    for key, rs in groups.items():
        print("\n" + ", ".join(f"{a} = {k}" for a, k in zip(axes, key)) + f"  ({len(rs)} runs)")
        print("layer | D_l estimate (truth at 0: 0.5) | KL resolved | η_l | Π η | measured ratio"
              " | ratio interval low / high (finite) | below / contains / above η | unbounded")
        for l in range(layers(rs[0])):
            vs = Counter(r.get(f"kl_ratio_vs_eta_l{l}", "") for r in rs)
            unb = sum(1 for r in rs if r.get(f"kl_ratio_unbounded_l{l}") == "1")
            print(f"{l} | {fmt(mean_ci(col(rs, f'kl_l{l}')))} | {resolved(rs, 'kl', l)} | "
                  f"{fmt(mean_ci(col(rs, f'eta_l{l}')))} | {fmt(mean_ci(col(rs, f'eta_product_l{l}')))} | "
                  + ("" if l == 0 else
                     f"{fmt(mean_ci(col(rs, f'kl_ratio_l{l}')))} | "
                     f"{fmt(mean_ci(col(rs, f'kl_ratio_lo_l{l}')))} / {fmt(mean_ci(finite(col(rs, f'kl_ratio_hi_l{l}'))))} | "
                     f"{vs.get('-1', 0)} / {vs.get('0', 0)} / {vs.get('1', 0)} | {unb}"))


def linear_gaussian(axes, groups):
    print("\n## Closed forms against estimates (means over seeds)")
    for key, rs in groups.items():
        print("\n" + ", ".join(f"{a} = {k}" for a, k in zip(axes, key)) + f"  ({len(rs)} runs)")
        print("layer | rank | E D_l (closed form) | per-run D_l (exact), mean | estimate | null |"
              " excess | KL resolved | estimate − per-run D_l (paired)")
        for l in range(layers(rs[0])):
            print(f"{l} | {rs[0].get(f'closed_rank_l{l}')} | {fmt(mean_ci(col(rs, f'kl_expected_l{l}')), 4)} | "
                  f"{fmt(mean_ci(col(rs, f'kl_closed_l{l}')), 4)} | {fmt(mean_ci(col(rs, f'kl_l{l}')), 4)} | "
                  f"{fmt(mean_ci(col(rs, f'kl_null_l{l}')), 4)} | {fmt(mean_ci(col(rs, f'kl_excess_l{l}')), 4)} | "
                  f"{resolved(rs, 'kl', l)} | "
                  f"{fmt(mean_ci([num(r[f'kl_l{l}']) - num(r[f'kl_closed_l{l}']) for r in rs]), 4)}")


def main():
    study = sys.argv[1] if len(sys.argv) > 1 else ""
    if study == "funnel":
        axes, groups = load(study)
        gaps(axes, groups)
        per_layer_table(axes, groups, w1_cols(), "W1 per layer (means over seeds)")
        funnels(axes, groups)
    elif study.startswith("contraction"):
        for sub in ("dropout", "noise"):
            axes, groups = load(f"contraction/{sub}")
            print(f"\n# contraction/{sub}")
            gaps(axes, groups)
            contraction(axes, groups)
    elif study == "linear-gaussian":
        axes, groups = load(study)
        linear_gaussian(axes, groups)
    elif study == "deeper-narrower":
        axes, groups = load(study)
        gaps(axes, groups)
        contraction(axes, groups)
    elif study in ("depth-sweep", "digits"):
        axes, groups = load(study)
        gaps(axes, groups)
        rises(axes, groups)
        per_layer_table(axes, groups, kl_cols(), "Per layer (means over seeds)")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Peer timings for `cargo bench --bench peers` (funnel-metrics/benches/peers.rs).

Usage: peers.py CASE X.npy Y.npy [ARGS...]; prints one JSON object on stdout:
{"seconds": wall time of the timed call, "value": the estimate, ...}.

  emd    X Y               exact W1: M = ot.dist(X, Y, 'euclidean'); ot.emd2(uniform, uniform, M)
                           (timed together; numItermax raised so the simplex reaches optimality)
  knn    X Y K             Wang-Kulkarni-Verdu KL(P||Q), distances from scipy cKDTree.query
                           (trees built and queried inside the timed part, workers=-1)
  sliced X Y K SEED        ot.sliced_wasserstein_distance(X, Y, n_projections=K, p=1, seed=SEED)
Exits 3 when POT or scipy is missing.
"""
import json
import sys
import time

import numpy as np

try:
    import ot
    from scipy.spatial import cKDTree
except ImportError as e:  # pragma: no cover
    print(json.dumps({"error": f"missing peer library: {e}"}))
    sys.exit(3)


def main():
    case, xf, yf = sys.argv[1:4]
    x = np.load(xf)
    y = np.load(yf)
    out = {}
    if case == "emd":
        a = np.full(x.shape[0], 1.0 / x.shape[0])
        b = np.full(y.shape[0], 1.0 / y.shape[0])
        t = time.perf_counter()
        m = ot.dist(x, y, metric="euclidean")
        value, log = ot.emd2(a, b, m, numItermax=100_000_000, log=True)
        out["seconds"] = time.perf_counter() - t
        out["value"] = float(value)
        out["warning"] = log.get("warning")
        out["result_code"] = int(log.get("result_code", -1))
    elif case == "knn":
        k = int(sys.argv[4])
        n, d = x.shape
        m = y.shape[0]
        workers = int(sys.argv[5]) if len(sys.argv) > 5 else -1
        t = time.perf_counter()
        # k + 1: the nearest point of x in its own tree is itself (no duplicates in the inputs)
        rho = cKDTree(x).query(x, k=k + 1, workers=workers)[0][:, k]
        nu = cKDTree(y).query(x, k=k, workers=workers)[0][:, k - 1]
        value = d * np.mean(np.log(nu / rho)) + np.log(m / (n - 1))
        out["seconds"] = time.perf_counter() - t
        out["value"] = float(value)
        out["workers"] = workers
    elif case == "sliced":
        k = int(sys.argv[4])
        seed = int(sys.argv[5])
        t = time.perf_counter()
        value, log = ot.sliced_wasserstein_distance(
            x, y, n_projections=k, p=1, seed=seed, log=True
        )
        out["seconds"] = time.perf_counter() - t
        out["value"] = float(value)
        # p = 1: the result is the plain mean of the K one-dimensional W1s; their spread gives
        # the Monte Carlo standard error of the mean
        per = np.asarray(log["projected_emds"], dtype=float)
        out["direction_sd"] = float(per.std(ddof=1))
    else:
        raise SystemExit(f"unknown case {case}")
    out["pot"] = ot.__version__
    print(json.dumps(out))


if __name__ == "__main__":
    main()

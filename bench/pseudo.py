"""Pseudo-likelihood against PCD on the same model and data: a fully visible Boltzmann machine
of 6 units (every pair coupled, so Gibbs needs a block per unit), 2,000 exact draws.

    python bench/pseudo.py            # about a minute; --reps N, --units N, --rows N

Prints, for each method, the median seconds per epoch over the epochs of `--reps` interleaved
fits (20 epochs, batch size 10, ebmlang's defaults otherwise), the whole fit, and the final
exact log-likelihood; it times the ebmlang of its own checkout (put first on sys.path).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's ebmlang
import ebmlang  # noqa: E402

MODEL = """model bm
const N = {n}
var x[i in 0..N-1] : bool
param W[i in 0..N-1, j in 0..N-1] = 0
param b[i in 0..N-1] = 0
factor pair[i in 0..N-1, j in 0..N-1 where i < j] : W[i, j] * x[i] * x[j]
factor bias[i in 0..N-1] : b[i] * x[i]
"""


def exact_draws(n: int, rows: int, seed: int = 0) -> np.ndarray:
    """Rows drawn exactly (by enumeration) from a machine with random couplings."""
    rng = np.random.default_rng(seed)
    W = np.triu(rng.normal(0, 1, (n, n)), 1)
    b = rng.normal(0, 0.5, n)
    states = np.array(list(itertools.product([0.0, 1.0], repeat=n)))
    lp = np.einsum("si,ij,sj->s", states, W, states) + states @ b
    p = np.exp(lp - lp.max())
    return states[rng.choice(len(states), size=rows, p=p / p.sum())]


def one_fit(n: int, data: np.ndarray, method: str) -> tuple[list[float], float, float]:
    model = ebmlang.compile(MODEL.format(n=n))
    start = time.perf_counter()
    result = model.fit({"x": data}, method=method, epochs=20, batch_size=10, seed=0)
    total = time.perf_counter() - start
    return [e["seconds"] for e in result.history], total, result.history[-1]["value"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--units", type=int, default=6)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    data = exact_draws(args.units, args.rows)
    one_fit(args.units, data[:20], "pcd")  # compile and warm the numba cache first
    epochs = {"pcd": [], "pl": []}
    totals = {"pcd": [], "pl": []}
    ll = {}
    for _ in range(args.reps):
        for method in ("pcd", "pl"):
            e, t, ll[method] = one_fit(args.units, data, method)
            epochs[method] += e[1:]  # the first epoch also builds the sampler
            totals[method].append(t)
    print(f"ebmlang from {Path(ebmlang.__file__).parent}")
    print(f"{args.units} units, {args.rows} rows, 20 epochs, batch size 10, {args.reps} reps")
    print("| method | median s / epoch | median fit s | final LL |")
    print("|---|---:|---:|---:|")
    for method in ("pcd", "pl"):
        print(f"| {method} | {statistics.median(epochs[method]):.4f} | "
              f"{statistics.median(totals[method]):.2f} | {ll[method]:.4f} |")


if __name__ == "__main__":
    main()

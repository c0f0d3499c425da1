"""The free-energy RBM (examples/rbm_free_energy.ebm: softplus of a sum inside each hidden
unit's factor) against the latent-h RBM (examples/rbm.ebm) with the same N x M: compile time
(`ebmlang.load`, private empty cache; derivation is partly lazy, so the first sample call is
timed too) and visible-variable sweeps a second of `model.sample`
on the default backend, after one warm-up call. The free-energy model runs single-site Gibbs
with every energy difference recomputed from scratch (O(N M) per site; no incremental
pre-activations yet); the latent RBM its fused block sweep. Medians of interleaved reps.

    python bench/nested_sums.py [--sizes 16x10,64x100] [--chains 10] [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))   # this checkout's ebmlang, not an installed one
os.environ["EBMLANG_CACHE"] = tempfile.mkdtemp(prefix="ebm_nested_")
import ebmlang  # noqa: E402


def load(name: str, n: int, m: int):
    t = time.perf_counter()
    model = ebmlang.load(ROOT / "examples" / name, N=n, M=m)
    return model, time.perf_counter() - t


def rate(model, sweeps: int, chains: int) -> float:
    t = time.perf_counter()
    model.sample(draws=sweeps, chains=chains, burn_in=0, seed=0, keep=False)
    return sweeps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="16x10,64x100")
    ap.add_argument("--chains", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.chains} chains")
    print("| N x M | compile free-energy (s) | compile latent (s) | first sample call "
          "free-energy (s) | sweeps/s free-energy | sweeps/s latent | latent / free-energy |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        n, m = map(int, size.split("x"))
        free, tf = load("rbm_free_energy.ebm", n, m)
        latent, tl = load("rbm.ebm", n, m)
        sweeps = max(2, int(20000 / (n * m)))
        t = time.perf_counter()
        rate(free, 1, args.chains)
        first = time.perf_counter() - t
        rate(latent, 1, args.chains)
        rf, rl = [], []
        for _ in range(args.reps):
            rf.append(rate(free, sweeps, args.chains))
            rl.append(rate(latent, 50 * sweeps, args.chains))
        a, b = statistics.median(rf), statistics.median(rl)
        print(f"| {n} x {m} | {tf:.2f} | {tl:.2f} | {first:.2f} | {a:,.1f} | {b:,.1f} | {b / a:,.0f}x |",
              flush=True)


if __name__ == "__main__":
    main()

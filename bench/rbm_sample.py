"""`model.sample` on the RBM of examples/rbm.ebm at 64 x 100 and 784 x 500, 100 chains: block
sweeps a second by backend, `auto` (the default: the fused matrix-product sweep), `numba` (the
per-instance compiled kernel, the default before) and `numpy` (the reference). Wall time of a
sample call with keep=False and no burn-in, after one warm-up call per backend (compilation
and planning excluded); medians of interleaved repetitions.

    python bench/rbm_sample.py [--reps 5] [--chains 100]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))   # this checkout's ebmlang, not an installed one
import ebmlang  # noqa: E402

SIZES = [(64, 100), (784, 500)]
BACKENDS = ("auto", "numba", "numpy")
SWEEPS = {"auto": 200, "numpy": 200, "numba": 40}     # per call, at 64 x 100
BIG_SWEEPS = {"auto": 40, "numpy": 40, "numba": 4}    # at 784 x 500


def rate(model, backend: str, sweeps: int, chains: int) -> float:
    t = time.perf_counter()
    model.sample(draws=sweeps, chains=chains, burn_in=0, seed=0, backend=backend, keep=False)
    return sweeps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--chains", type=int, default=100)
    args = ap.parse_args()
    rows = []
    for n, m in SIZES:
        model = ebmlang.load(ROOT / "examples" / "rbm.ebm", N=n, M=m)
        sweeps = SWEEPS if n < 500 else BIG_SWEEPS
        for b in BACKENDS:
            rate(model, b, 2, args.chains)                  # compile, plan
        got: dict[str, list[float]] = {b: [] for b in BACKENDS}
        for _ in range(args.reps):
            for b in BACKENDS:
                got[b].append(rate(model, b, sweeps[b], args.chains))
        rows.append((f"{n} x {m}", got))
    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.chains} chains, "
          f"{args.reps} interleaved reps\n")
    print("| RBM | " + " | ".join(f"{b} sweeps/s" for b in BACKENDS) + " | auto / numpy |")
    print("|---|" + "---:|" * (len(BACKENDS) + 1))
    for name, got in rows:
        med = {b: sorted(v)[len(v) // 2] for b, v in got.items()}
        print(f"| {name} | " + " | ".join(f"{med[b]:,.1f}" for b in BACKENDS) +
              f" | {med['auto'] / med['numpy']:.2f} |")


if __name__ == "__main__":
    main()

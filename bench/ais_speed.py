"""AIS speed: particles x steps per second of `ais_weights` with the sampler's kernels at beta
(compiled tables at beta, the fused sweep's fields scaled by beta, the compiled energy: what
`logz --method ais` runs now) against the numpy tempered steps and numpy energy it ran before
(`backend="numpy"`, kept as the reference), side by side in one run, the two interleaved over
--reps repetitions (median), both under the BLAS thread limit `ais_weights` now sets (it did
not before: on a loaded machine the RBM's products ran several times slower without it).
Markdown on stdout.

    PYTHONPATH=. python bench/ais_speed.py [--reps 3] [--particles 100] [--steps 200]

Site updates / s = particles x steps x sampled variables / s. Each estimate's log Z is printed
with its SE, so the two paths are also seen to agree.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ebmlang  # noqa: E402
from ebmlang.infer.logz import ais_weights, weight_summary  # noqa: E402

EX = ROOT / "examples"


def models():
    return {
        "Ising L = 32 (compiled tables)": ebmlang.load(EX / "ising.ebm", L=32),
        "Ising L = 64 (compiled tables)": ebmlang.load(EX / "ising.ebm", L=64),
        "Potts L = 32, cat(3) (compiled tables)": ebmlang.load(EX / "potts.ebm", L=32),
        "RBM 784 x 100 (fused matrix products)": ebmlang.load(EX / "rbm.ebm", N=784, M=100),
    }


def run(model, particles, steps, backend, seed):
    x0 = np.zeros((1, model.checked.n_state))
    t = time.perf_counter()
    logw = ais_weights(model, x0, seed, particles, steps, backend=backend)
    return time.perf_counter() - t, weight_summary(logw)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--particles", type=int, default=100)
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args(argv)
    print(f"Command: `python bench/ais_speed.py {' '.join(sys.argv[1:])}`; load average at the "
          f"start {', '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs\n")
    print("| model | kernels | s / run (median) | particles x steps / s | M site updates / s | "
          "log Z +- SE | speed-up |")
    print("|---|---|---:|---:|---:|---|---:|")
    for name, model in models().items():
        sites = len(model.state_ids())
        for backend in ("numpy", None):               # compile and warm both first
            run(model, 4, 3, backend, 0)
        times = {"numpy": [], None: []}
        est = {}
        for r in range(args.reps):
            for backend in ("numpy", None):
                t, est[backend] = run(model, args.particles, args.steps, backend, r)
                times[backend].append(t)
        med = {b: float(np.median(v)) for b, v in times.items()}
        for backend, label in (("numpy", "numpy tempered steps, numpy F (before)"),
                               (None, "sampler's kernels at beta, compiled F (now)")):
            work = args.particles * args.steps
            value, se, _ = est[backend]
            print(f"| {name} | {label} | {med[backend]:.2f} | {work / med[backend]:,.0f} | "
                  f"{work * sites / med[backend] / 1e6:.1f} | {value:.2f} +- {se:.2f} | "
                  f"{med['numpy'] / med[backend]:.1f}x |")


if __name__ == "__main__":
    main()

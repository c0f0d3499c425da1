"""Line timing of one PCD minibatch update on the RBM (SGD, batch 10, 10 chains), before and
after the in-place update: the generic fused path's statements (learn/fit.py's old inner loop)
and the in-place one's (`BipartitePCD.gap` + `ProvedSteps.apply`), ms per minibatch, medians
over --reps minibatches, each statement timed alone on the same states.

    python bench/pcd_lines.py [--reps 200] [--size 784x500]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ebmlang  # noqa: E402
from ebmlang.backends.resources import blas_threads, product_flops  # noqa: E402
from ebmlang.io.data import load_data  # noqa: E402
from ebmlang.learn.fit import FitOptions, _Phases  # noqa: E402
from ebmlang.learn.optim import ProvedSteps  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=200)
    p.add_argument("--size", default="784x500")
    args = p.parse_args(argv)
    n, m = (int(s) for s in args.size.split("x"))
    model = ebmlang.load(ROOT / "examples" / "rbm.ebm", N=n, M=m)
    x = (np.random.default_rng(0).random((600, n)) < 0.13).astype(float)
    opts = FitOptions(method="pcd", optimizer="sgd", momentum=0.0, lr=0.06, batch_size=10,
                      chains=10, schedule="constant")
    phases = _Phases(model, load_data(model, {"v": x}), opts, np.random.default_rng(0))
    theta, rng = model.params.theta, np.random.default_rng(1)
    steps = ProvedSteps(opts, theta, 1.0, False)
    gap_sum, zero = np.zeros(len(theta)), np.zeros(len(theta))
    old = {
        "positive (summed_stats)": lambda b: phases.positive(b),
        "negative (sweep + stats)": lambda b: phases.negative(b),
        "gap = pos - neg": None,
        "good = theta.copy()": lambda b: theta.copy(),
        "optimizer.step (lr * gap)": lambda b: 0.06 * zero,
        "theta += step": lambda b: np.add(theta, zero, out=theta),
        "isfinite(theta).all()": lambda b: np.isfinite(theta).all(),
        "gap_sum += gap": lambda b: gap_sum.__iadd__(gap_sum),
    }
    new = {
        "BipartitePCD.gap": lambda b: phases.bipartite.gap(b, theta, rng),
        "ProvedSteps.apply + gap_sum (one pass; zero gap: nothing changes)":
            lambda b: steps.apply(theta, zero, 0.0, gap_sum),
    }
    pos, neg = phases.positive(np.arange(10)), phases.negative(np.arange(10))
    old["gap = pos - neg"] = lambda b: pos - neg
    print(f"- {n} x {m}, batch 10, 10 chains, {args.reps} reps; BLAS threads by the policy")
    print("| path | statement | ms per minibatch |\n|---|---|---:|")
    with blas_threads(product_flops(model, 10)):
        for label, table in (("before", old), ("after", new)):
            total = 0.0
            for name, fn in table.items():
                times = []
                for r in range(args.reps):
                    batch = np.arange(r * 10 % 590, r * 10 % 590 + 10)
                    t0 = time.perf_counter()
                    fn(batch)
                    times.append(time.perf_counter() - t0)
                med = 1e3 * statistics.median(times)
                total += med
                print(f"| {label} | {name} | {med:.3f} |")
            print(f"| {label} | **total** | **{total:.3f}** |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""PCD epoch at MNIST size (784 x 500) and at digits size (64 x 100): ebmlang vs scikit-learn's
BernoulliRBM at matched settings (SGD lr 0.06, batch 10, 10 persistent chains, one epoch), each
library with its default threading (ebmlang: its BLAS thread policy, `resources.blas_threads`;
sklearn: threadpoolctl untouched). Repetitions interleave the libraries; medians and ratios.

The 784 x 500 rows are synthetic, not MNIST (no download): 6,000 binary rows, each one of 10
random prototypes (about 13% of pixels on, as in MNIST) with 5% of its pixels flipped.

    python bench/pcd_sklearn.py [--reps 5] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ebmlang  # noqa: E402

MODEL = ROOT / "examples" / "rbm.ebm"
DIGITS = ROOT / "examples" / "data" / "digits.csv"
LR, BATCH = 0.06, 10
MATCHED = {"method": "pcd", "optimizer": "sgd", "momentum": 0.0, "lr": LR,
           "schedule": "constant", "batch_size": BATCH, "chains": BATCH}


def synthetic(rows: int = 6000, n: int = 784, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    protos = rng.random((10, n)) < 0.13
    x = protos[rng.integers(0, 10, rows)]
    return (x ^ (rng.random((rows, n)) < 0.05)).astype(float)


def cases():
    digits = np.loadtxt(DIGITS, delimiter=",", skiprows=1)
    return [("64 x 100 (digits, 1797 rows, 20 epochs)", digits, 100, 20),
            ("784 x 500 (synthetic, 6000 rows, 1 epoch)", synthetic(), 500, 1)]


def sk_fit(x, hidden, epochs, seed):
    from sklearn.neural_network import BernoulliRBM
    BernoulliRBM(n_components=hidden, learning_rate=LR, batch_size=BATCH, n_iter=epochs,
                 random_state=seed).fit(x)


def ebm_fit(model, x, epochs, seed):
    model.fit({"v": x}, seed=seed, epochs=epochs, **MATCHED)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def profile(model, x, epochs, top=14) -> str:
    prof = cProfile.Profile()
    prof.enable()
    ebm_fit(model, x, epochs, 0)
    prof.disable()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).strip_dirs().sort_stats("tottime").print_stats(top)
    return "\n".join(ln for ln in text.getvalue().splitlines() if ln.strip())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--profile", action="store_true")
    args = p.parse_args(argv)
    print(f"- CPUs: {len(os.sched_getaffinity(0))}; load average: "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}; "
          f"EBMLANG_BLAS_THREADS={os.environ.get('EBMLANG_BLAS_THREADS', '(unset)')}")
    print(f"- command: `python bench/pcd_sklearn.py --reps {args.reps}`\n")
    print("| case | sklearn s/epoch | ebmlang s/epoch | ebmlang / sklearn |")
    print("|---|---:|---:|---:|")
    for label, x, hidden, epochs in cases():
        model = ebmlang.load(MODEL, N=x.shape[1], M=hidden)
        ebm_fit(model, x[:200], 1, 0)                           # warm-up: compile, caches
        sk, eb = [], []
        for rep in range(args.reps):
            sk.append(timed(sk_fit, x, hidden, epochs, rep) / epochs)
            eb.append(timed(ebm_fit, model, x, epochs, rep) / epochs)
        ms, me = statistics.median(sk), statistics.median(eb)
        ratios = [e / s for s, e in zip(sk, eb)]
        print(f"| {label} | {ms:.4f} | {me:.4f} | {me / ms:.2f} "
              f"(per rep {', '.join(f'{r:.2f}' for r in ratios)}) |")
        if args.profile:
            print(f"\nebmlang profile, {label}, by own time:\n```\n"
                  f"{profile(model, x, epochs)}\n```\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""HMC against random-walk MH and exact Gaussian Gibbs on the 50-dimensional Gaussian chain
(a = 1, c = 0.49: neighbours strongly correlated, condition number about 90), side by side
in one run (Markdown on stdout): bulk effective samples of x[0] per second of sampling, the
ratio to random-walk MH, and each sampler's worst relative error on Var(x[i]) against the
closed form (the inverse of the precision matrix).

    python bench/hmc_gaussian_chain.py            # about a minute on 2 shared cores
    python bench/hmc_gaussian_chain.py --quick    # a smoke run

All three are ebmlang's own samplers, chosen in the model: `sampler x : hmc(steps=10)`,
`sampler x : mh` (single-site random-walk Metropolis, vectorized over each colour, scale
adapted in burn-in) and the default exact Gaussian Gibbs update. Each runs 4 chains; the
time is the wall time of model.sample after a warm-up run (compilation excluded).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ebmlang  # noqa: E402
from ebmlang.infer.diagnostics import bulk_ess  # noqa: E402

N, C = 50, 0.49
MODEL = f"""model chain
const N = {N}
var x[i in 0..N-1] : real
param a = 1.0
param c = {C}
energy self[i in 0..N-1] : 0.5 * a * x[i] ^ 2
energy chain[i in 0..N-2] : -c * x[i] * x[i + 1]
"""
METHODS = {"HMC (10 leapfrog)": "sampler x : hmc(steps=10)\n",
           "random-walk MH": "sampler x : mh\n",
           "exact Gaussian Gibbs": ""}


def run(method: str, draws: int, seed: int):
    model = ebmlang.compile(MODEL + METHODS[method])
    model.sample(draws=20, chains=4, burn_in=20, seed=seed)          # warm-up
    t = time.perf_counter()
    s = model.sample(draws=draws, chains=4, burn_in=min(draws // 4, 2000), seed=seed)
    dt = time.perf_counter() - t
    x = s["x"]
    q = np.eye(N) - C * (np.eye(N, k=1) + np.eye(N, k=-1))
    var = np.diag(np.linalg.inv(q))
    err = np.max(np.abs((x ** 2).mean(axis=(0, 1)) - var) / var)
    acc = s.gradient.acceptance if s.gradient is not None else s.acceptance.get("x")
    return bulk_ess(x[:, :, 0]), dt, err, acc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    scale = 10 if args.quick else 1
    draws = {"HMC (10 leapfrog)": 8000 // scale, "random-walk MH": 40000 // scale,
             "exact Gaussian Gibbs": 40000 // scale}
    rows = {m: run(m, draws[m], args.seed) for m in METHODS}
    base = rows["random-walk MH"][0] / rows["random-walk MH"][1]
    print(f"50-D Gaussian chain, c = {C}, 4 chains, seed {args.seed}\n")
    print("| sampler | sweeps | seconds | ESS x[0] | ESS/s | vs MH | max rel. err Var | acceptance |")
    print("|---|---|---|---|---|---|---|---|")
    for m, (ess, dt, err, acc) in rows.items():
        a = "" if acc is None else f"{acc:.2f}"
        print(f"| {m} | {draws[m]:,} | {dt:.2f} | {ess:.0f} | {ess / dt:.0f} | "
              f"{ess / dt / base:.1f}x | {err:.3f} | {a} |")


if __name__ == "__main__":
    main()

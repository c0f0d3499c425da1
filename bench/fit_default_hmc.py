"""fit's persistent chains on a non-Gaussian real family, side by side in one run (Markdown
on stdout): fit's default now (each sweep the family's random-walk MH update, then a joint
HMC move of 10 leapfrog steps, as `sample` runs HMC), HMC alone (`sampler x : hmc`), and
random-walk MH alone (`sampler x : mh`, what fit ran before; its scale adapted by fit since
the MH scales adapt there too).

The models are exp(-a sum_i x_i^4) for N = 1 and N = 20 independent coordinates (one shared
a), whose maximum-likelihood a has the closed form 1 / (4 mean(x^4)) (d log Z / da =
-E[sum x^4] = -N / (4a)). Data: 1000 exact draws at a = 1 (|x|^4 ~ Gamma(1/4, 1)), and for
N = 1 the same draws times 10 (a = 1e-4: a scale fit's MH had to adapt to).

1. ESS/s: the PCD model phase (`learn.fit._Phases.negative`, 100 chains, one sweep per
   update) at a fixed a = the ML value, timed after a warm-up; bulk ESS of x[0]^4 (the
   sufficient statistic) per second, and the ratio HMC / MH.
2. The fit: `fit --method pcd` from a = 0.3 / scale^4, the same epochs for both, its wall
   time and the relative error of a against the closed form, over 3 seeds (Adam, lr 0.05
   / scale^4, batch 100).
3. ring8 (examples/ring8.ebm, 2-D, 32 tanh units; it declares hmc): PCD with HMC against
   the same model with `sampler x : mh`, MH given twice the epochs (about the same time),
   KL(data || model) by quadrature (bench/neural_energy.py's grid).

4. `sample` (its default is now MH then HMC too): exp(-50 x^4) from the N(0, 1) start,
   bulk ESS of x^4 per second and E[x^4] / (1 / 200), the closed form, for the three.
5. The full-batch quartic fit of tests/test_fit_gradient_moves.py over 8 seeds: the
   scatter of a's relative error (and HMC alone's runaways).

    python bench/fit_default_hmc.py            # a few minutes on 2 shared cores
    python bench/fit_default_hmc.py --quick
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
from ebmlang.io.data import load_data  # noqa: E402
from ebmlang.learn.fit import FitOptions, _Phases  # noqa: E402

MODEL = """const N = {n}
var x[i in 0..N-1] : real
param a = 0.3
energy q[i in 0..N-1] : a * x[i] ^ 4
"""
SAMPLERS = {"default: MH then HMC": "", "HMC only (sampler x : hmc)": "sampler x : hmc\n",
            "random-walk MH": "sampler x : mh\n"}


def draws(n: int, rows: int, scale: float) -> np.ndarray:
    rng = np.random.default_rng(7)
    return scale * rng.choice([-1.0, 1.0], (rows, n)) * rng.gamma(0.25, 1.0, (rows, n)) ** 0.25


def chains_ess(model, d, a: float, sweeps: int):
    model.params["a"] = a
    opts = FitOptions(method="pcd", chains=100, batch_size=len(d), seed=0)
    phases = _Phases(model, load_data(model, {"x": d}), opts, np.random.default_rng(0))
    batch = np.arange(len(d))
    for _ in range(200):                       # warm-up: compilation, the step's adaptation
        phases.negative(batch)
    out = np.empty((sweeps, 100))
    t = time.perf_counter()
    for s in range(sweeps):
        phases.negative(batch)
        out[s] = phases.chains[:, 0]
    dt = time.perf_counter() - t
    return bulk_ess(out.T ** 4), dt


def fit_error(model, d, exact: float, epochs: int, seed: int, scale: float):
    model.params["a"] = 0.3 / scale ** 4
    t = time.perf_counter()
    model.fit({"x": d}, method="pcd", epochs=epochs, batch_size=100, lr=0.05 / scale ** 4,
              seed=seed)
    return time.perf_counter() - t, abs(float(model.params["a"]) - exact) / exact


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sweeps, epochs = (300, 5) if args.quick else (3000, 40)
    print("| N, data scale | sampler | ESS of x[0]^4 | s | ESS/s | ratio | fit s (3 seeds) | "
          "rel. error of a (3 seeds) |")
    print("|---:|---|---:|---:|---:|---:|---:|---|")
    for n, scale in ((1, 1.0), (1, 10.0), (20, 1.0)):
        d = draws(n, 1000, scale)
        exact = 1.0 / (4.0 * np.mean(d ** 4))
        rows = {}
        for name, line in SAMPLERS.items():
            model = ebmlang.compile(MODEL.format(n=n) + line)
            ess, dt = chains_ess(model, d, exact, sweeps)
            fits = [fit_error(model, d, exact, epochs, seed, scale) for seed in range(3)]
            rows[name] = (ess, dt, fits)
        base = rows["random-walk MH"][0] / rows["random-walk MH"][1]
        for name, (ess, dt, fits) in rows.items():
            print(f"| {n}, {scale:g} | {name} | {ess:.0f} | {dt:.2f} | {ess / dt:.0f} | "
                  f"{ess / dt / base:.2f} | {np.mean([f[0] for f in fits]):.2f} | "
                  f"{', '.join(f'{f[1]:.3f}' for f in fits)} |")

    ring8(4 if args.quick else 30)
    stiff_sample(200 if args.quick else 2000)
    full_batch_scatter(2 if args.quick else 8)


def full_batch_scatter(seeds: int) -> None:
    """tests/test_fit_gradient_moves.py's quartic fit (500 draws, full batches, sgd lr 2, no
    momentum, 300 epochs from a = 0.3) over seeds: each seed's relative error of a."""
    rng = np.random.default_rng(2)
    d = rng.choice([-1.0, 1.0], 500) * rng.gamma(0.25, 1.0, 500) ** 0.25
    exact = 1.0 / (4.0 * np.mean(d ** 4))
    print(f"\n| full-batch PCD of exp(-a x^4), seeds 0-{seeds - 1} | relative errors of a | sd |")
    print("|---|---|---:|")
    for name, line in SAMPLERS.items():
        model = ebmlang.compile("var x : real\nparam a = 0.3\nenergy q : a * x ^ 4\n" + line)
        errs = []
        for seed in range(seeds):
            model.params["a"] = 0.3
            model.fit({"x": d}, method="pcd", epochs=300, batch_size=500, lr=2.0,
                      optimizer="sgd", momentum=0.0, seed=seed)
            errs.append(float(model.params["a"]) / exact - 1)
        print(f"| {name} | {', '.join(f'{e:.3g}' for e in errs)} | {np.std(errs):.3g} |")


def stiff_sample(draws: int) -> None:
    print("\n| sample exp(-50 x^4), 100 chains | ESS of x^4 | s | ESS/s | E[x^4] / exact |")
    print("|---|---:|---:|---:|---:|")
    for name, line in SAMPLERS.items():
        model = ebmlang.compile("var x : real\nparam a = 50.0\nenergy q : a * x ^ 4\n" + line)
        model.sample(draws=10, chains=100, burn_in=10, seed=0)           # warm-up
        t = time.perf_counter()
        v = model.sample(draws=draws, chains=100, burn_in=draws // 2, seed=0)["x"] ** 4
        dt = time.perf_counter() - t
        print(f"| {name} | {bulk_ess(v):.0f} | {dt:.2f} | {bulk_ess(v) / dt:.0f} | "
              f"{v.mean() * 200:.3f} |")


def ring8(epochs: int) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT / "examples"))
    from neural_energy import grid, kl
    data, (pts, _) = str(ROOT / "examples" / "ring8.csv"), grid()
    src = (ROOT / "examples" / "ring8.ebm").read_text()
    print("\n| ring8 PCD (batch 200, lr 0.02, 1000 chains) | epochs | s | KL, nats |")
    print("|---|---:|---:|---:|")
    for name, line, e in (("HMC (declared)", "sampler x : hmc(steps=10)", epochs),
                          ("random-walk MH", "sampler x : mh", 2 * epochs)):
        model = ebmlang.compile(src.replace("sampler x : hmc(steps=10)", line))
        model.fit(data, method="pcd", epochs=1, batch_size=200, chains=1000, seed=0)  # warm-up
        model = ebmlang.compile(src.replace("sampler x : hmc(steps=10)", line))
        t = time.perf_counter()
        model.fit(data, method="pcd", epochs=e, batch_size=200, lr=0.02, chains=1000, seed=0)
        print(f"| {name} | {e} | {time.perf_counter() - t:.1f} | "
              f"{kl(model.log_potential(pts)):.3f} |")


if __name__ == "__main__":
    main()

"""The parallel-tempering section of bench/mixing.py (Markdown):

    python bench/mixing.py --section tempering --reps 5    # about 10 minutes on 2 shared cores
    python bench/mixing.py --section tempering --quick     # a smoke run (shorter chains, one seed)

Parallel tempering (`sample(..., tempering=R)`), Gibbs inside (`sampler s : gibbs`):
- the Ising model at beta = 0.6, h = 0 (two ordered phases, which plain Gibbs never leaves),
  L = 16 and 32, 4 chains of 4,000 draws after 1,000 of burn-in: split R-hat of the
  magnetization and its mean (0 by symmetry), plain Gibbs beside it;
- the double well exp(-4 (x^2 - 1)^2) under random-walk MH, with and without tempering:
  R-hat of x and P(x > 0) (1/2 by symmetry);
- the digits RBM at 16 hidden units (bench/rbm_digits.py's split: train 1500, test 297): the
  exact test log-likelihood (`score`, which enumerates the 2^16 hidden states) after PCD with
  and without tempering at the same epochs;
- the cost of a tempered sweep against an untempered sweep of as many chains (R x C), medians
  of interleaved repetitions: the tabulated Ising kernel (one table per level) and the untabled
  per-chain kernel (a spin glass with a coupling per edge).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ebmlang  # noqa: E402
from ebmlang.infer.diagnostics import split_rhat  # noqa: E402
from ebmlang.backends.numba_backend import gibbs_step  # noqa: E402
from ebmlang.infer.score import score  # noqa: E402
from ebmlang.infer.tempering import start  # noqa: E402

# ---------------------------------------------------------------- tempering: settings

ISING_BETA = 0.6
ISING_RUNS = [            # L, replicas, hottest inverse temperature (x 0.6: below beta_c 0.44),
    (16, 1, None, (1,)), (16, 16, 0.5, (1, 2, 3, 4)),       # seeds
    (32, 1, None, (1,)), (32, 32, 0.5, (1, 2))]
WELL_RUNS = [(1, None), (4, 0.1)]
RBM_RUNS = [("pcd", {}), ("pcd, tempering 4 (b_min 0.3)", {"tempering": 4, "tempering_min": 0.3})]
COST_REPLICAS, COST_CHAINS = 8, 4
DENOISE_RUNS = [          # replicas, hottest inverse temperature, draws, seeds
    (1, None, 1000, (1, 2, 3, 4, 5)), (1, None, 8000, (1, 2, 3)), (8, 0.3, 1000, (1, 2, 3, 4, 5))]

GLASS = """
var s[i in 0..63] : spin
param J[i in 0..63, j in 0..63] = normal(0, 0.5)
factor pair[i in 0..63, j in 0..63 where i < j and (j - i) % 7 == 1] : J[i, j] * s[i] * s[j]
"""


def ising_model(L: int, beta: float = ISING_BETA):
    """examples/ising.ebm at size L and inverse temperature beta, with plain Gibbs only."""
    src = (ROOT / "examples" / "ising.ebm").read_text() + "sampler s : gibbs\n"
    src = src.replace("const L = 16", f"const L = {L}")
    return ebmlang.compile(src.replace("const beta = 0.44", f"const beta = {beta}"))


# ---------------------------------------------------------------- tempering: measurements

def tempering_ising(L, replicas, b_min, draws, seed) -> dict:
    model = ising_model(L)
    t = time.perf_counter()
    d = model.sample(draws=draws, chains=4, burn_in=draws // 4, seed=seed, tempering=replicas,
                     tempering_min=b_min)
    seconds = time.perf_counter() - t
    mag = d.stats()["magnetization"].reshape(d.chains, d.draws)
    return {"rhat": split_rhat(mag), "mean": float(mag.mean()), "chains": mag.mean(axis=1),
            "seconds": seconds, "swaps": d.swap_acceptance}


def tempering_denoise(replicas, b_min, draws, seed) -> dict:
    """examples/denoise.ebm on the shipped noisy image, 4 chains, burn-in draws / 2 (the
    defaults of `ebmlang sample`): split R-hat of the energy, as the command prints it."""
    model = ebmlang.load(ROOT / "examples" / "denoise.ebm")
    noisy = np.loadtxt(ROOT / "examples" / "data" / "noisy.csv", delimiter=",", skiprows=1)
    t = time.perf_counter()
    d = model.sample(draws=draws, chains=4, seed=seed, inputs=noisy[None, :],
                     tempering=replicas, tempering_min=b_min)
    seconds = time.perf_counter() - t
    return {"rhat": split_rhat(-d.log_potential()), "seconds": seconds,
            "swaps": d.swap_acceptance}


def tempering_well(replicas, b_min, draws, seed) -> dict:
    model = ebmlang.compile("var x : real\nenergy well : 4 * (x ^ 2 - 1) ^ 2\n")
    t = time.perf_counter()
    d = model.sample(draws=draws, chains=4, burn_in=draws // 4, seed=seed, tempering=replicas,
                     tempering_min=b_min)
    seconds = time.perf_counter() - t
    x = d["x"]
    crossings = int(np.sum(np.diff(np.sign(x), axis=1) != 0))
    return {"rhat": split_rhat(x), "pos": float((x > 0).mean()), "seconds": seconds,
            "crossings": crossings, "accept": d.acceptance["x"], "swaps": d.swap_acceptance}


def tempering_rbm(kwargs, seeds, epochs) -> tuple[list[float], list[float]]:
    """(exact test log-likelihood per seed, fit seconds per seed)."""
    x = np.loadtxt(ROOT / "examples" / "data" / "digits.csv", delimiter=",", skiprows=1)
    train, test = x[:1500], x[1500:]
    lls, seconds = [], []
    for seed in seeds:
        model = ebmlang.load(ROOT / "examples" / "rbm.ebm", M=16)
        t = time.perf_counter()
        model.fit({"v": train}, seed=seed, epochs=epochs, **kwargs)
        seconds.append(time.perf_counter() - t)
        lls.append(float(np.mean(score(model, {"v": test})["logp"])))
    return lls, seconds


def tempering_cost(model, reps: int, sweeps: int = 200) -> dict[str, float]:
    """Median seconds per sweep, interleaved: untempered on R x C chains ("plain"), tempered
    sweeps alone ("sweep"), tempered sweeps with the swaps, F of every replica by the numpy
    terms ("numpy F", as before the compiled energy) and by the compiled energy ("compiled F",
    the default); and F alone both ways."""
    parts = model.parts("numba")
    rng = np.random.default_rng(0)
    theta = model.params.theta
    x = np.where(rng.random((COST_REPLICAS * COST_CHAINS, model.checked.n_state)) < 0.5, -1.0, 1.0)
    fast = start(model, parts, x[:COST_CHAINS].copy(), None, COST_REPLICAS, 0.3)
    slow = start(model, parts, x[:COST_CHAINS].copy(), None, COST_REPLICAS, 0.3, compiled=False)
    beta = fast.beta()
    sweep = fast.sweeps[0]
    runs = {"plain": lambda: gibbs_step(parts, x, theta, rng),
            "sweep": lambda: sweep(fast.x, theta, rng, None, beta),
            "numpy F": lambda: slow.step(parts, slow.x, theta, rng),
            "compiled F": lambda: fast.step(parts, fast.x, theta, rng),
            "F numpy": lambda: model.log_potential(fast.x),
            "F compiled": lambda: fast.energy(fast.x)}
    times = {k: [] for k in runs}
    for fn in runs.values():
        fn()                                          # compile and build the tables
    for _ in range(reps):
        for k, fn in runs.items():
            t = time.perf_counter()
            for _ in range(sweeps):
                fn()
            times[k].append((time.perf_counter() - t) / sweeps)
    return {k: float(np.median(v)) for k, v in times.items()}


# ---------------------------------------------------------------- tempering: the report

def tempering_section(quick: bool, reps: int) -> str:
    draws = 1000 if quick else 4000
    return "\n".join(["## Parallel tempering (Gibbs inside)", ""] + _ising_rows(draws) + [""] +
                     _denoise_rows() + [""] +
                     _well_rows(4 * draws) + [""] + _rbm_rows(quick) + [""] + _cost_rows(reps))


def _ising_rows(draws: int) -> list[str]:
    out = [f"Ising model, beta = {ISING_BETA}, h = 0, 4 chains x {draws:,} draws after "
           f"{draws // 4:,} of burn-in (`sampler s : gibbs`). Goal at L = 16: R-hat <= 1.05 and "
           "|mean magnetization| <= 0.1.", "",
           "| L | sampler | R-hat(m) | mean m | chains' means | swap acceptance | seconds |",
           "|---|---|---|---|---|---|---|"]
    for L, r, b_min, seeds in ISING_RUNS:
        how = "Gibbs" if r == 1 else f"tempering {r}, b_min {b_min}"
        for seed in seeds:
            res = tempering_ising(L, r, b_min, draws, seed)
            out.append(f"| {L} | {how}, seed {seed} | {res['rhat']:.3f} | {res['mean']:+.3f} | "
                       f"{', '.join(f'{m:+.2f}' for m in res['chains'])} | "
                       f"{_swaps(res['swaps'])} | {res['seconds']:.1f} |")
    return out


def _denoise_rows() -> list[str]:
    out = ["The denoiser (examples/denoise.ebm, eta = 2, fidelity 1.5, the shipped 32 x 32 "
           "noisy image), 4 chains, burn-in half the draws, default samplers (Gibbs and one "
           "Swendsen-Wang sweep in each replica): R-hat of the energy (`ebmlang sample` warns "
           "above 1.01).", "",
           "| sampler | draws | R-hat(energy) per seed | swap acceptance | seconds (median) |",
           "|---|---|---|---|---|"]
    for r, b_min, draws, seeds in DENOISE_RUNS:
        res = [tempering_denoise(r, b_min, draws, seed) for seed in seeds]
        how = "Gibbs + Swendsen-Wang" if r == 1 else f"tempering {r}, b_min {b_min}"
        rhats = ", ".join(f"{x['rhat']:.3f}" for x in res)
        swaps = "-" if r == 1 else (f"{min(np.min(x['swaps']) for x in res):.2f}-"
                                    f"{max(np.max(x['swaps']) for x in res):.2f}")
        out.append(f"| {how} | {draws:,} | seeds {seeds[0]}-{seeds[-1]}: {rhats} | {swaps} | "
                   f"{np.median([x['seconds'] for x in res]):.1f} |")
    return out


def _well_rows(draws: int) -> list[str]:
    out = [f"Double well exp(-4 (x^2 - 1)^2), random-walk MH, 4 chains x {draws:,} draws after "
           f"{draws // 4:,}: P(x > 0) is 1/2.", "",
           "| sampler | R-hat(x) | P(x > 0) | sign changes | MH acceptance | swap acceptance | "
           "seconds |", "|---|---|---|---|---|---|---|"]
    for r, b_min in WELL_RUNS:
        res = tempering_well(r, b_min, draws, seed=2)
        how = "MH" if r == 1 else f"MH, tempering {r}, b_min {b_min}"
        out.append(f"| {how} | {res['rhat']:.3f} | {res['pos']:.3f} | {res['crossings']:,} | "
                   f"{res['accept']:.2f} | {_swaps(res['swaps'])} | {res['seconds']:.1f} |")
    return out


def _rbm_rows(quick: bool) -> list[str]:
    seeds, epochs = ([0] if quick else [0, 1, 2]), (5 if quick else 20)
    out = [f"Digits RBM, 16 hidden units, {epochs} epochs (the other fit settings ebmlang's "
           f"defaults: adam, 100 chains), seeds {seeds}: exact test log-likelihood (nats per "
           "digit).", "", "| fit | test LL: mean [min, max] | fit seconds (median) |",
           "|---|---|---|"]
    for label, kwargs in RBM_RUNS:
        lls, secs = tempering_rbm(kwargs, seeds, epochs)
        out.append(f"| {label} | {np.mean(lls):.3f} [{min(lls):.3f}, {max(lls):.3f}] | "
                   f"{np.median(secs):.1f} |")
    return out


def _cost_rows(reps: int) -> list[str]:
    out = [f"Cost of a sweep, {COST_REPLICAS} replicas x {COST_CHAINS} chains against "
           f"{COST_REPLICAS * COST_CHAINS} untempered chains (median of {reps} interleaved "
           "repetitions of 200 sweeps; load average at the start "
           f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}). The swaps need F of every "
           "replica: by the numpy terms before, by the compiled energy now (the default; "
           "`--backend numpy` keeps the numpy terms):", "",
           "| model (kernel) | untempered, us | tempered sweep, us | + swaps, numpy F, us | "
           "+ swaps, compiled F, us | ratio before | ratio now | F numpy, us | F compiled, us |",
           "|---|---|---|---|---|---|---|---|---|"]
    for label, model in (("Ising L = 32 (tabled, runs)", ising_model(32)),
                         ("spin glass, 64 spins (untabled, per-chain beta)",
                          ebmlang.compile(GLASS))):
        t = {k: v * 1e6 for k, v in tempering_cost(model, reps).items()}
        out.append(f"| {label} | {t['plain']:.0f} | {t['sweep']:.0f} | {t['numpy F']:.0f} | "
                   f"{t['compiled F']:.0f} | {t['numpy F'] / t['plain']:.2f} | "
                   f"{t['compiled F'] / t['plain']:.2f} | {t['F numpy']:.0f} | "
                   f"{t['F compiled']:.0f} |")
    return out


def _swaps(rates) -> str:
    if rates is None:
        return "-"
    return f"{np.min(rates):.2f}-{np.max(rates):.2f}"

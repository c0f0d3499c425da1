"""Mixing at the critical point: heat-bath Gibbs, Swendsen-Wang and Wolff side by side in one
run (Markdown on stdout): the integrated autocorrelation time of |m| and of the energy
(Sokal's window), and effective samples of |m| per CPU second.

    python bench/mixing.py --section cluster     # a few minutes on 2 shared cores
    python bench/mixing.py --section chains      # 64 chains: cluster kernels serial vs parallel
    python bench/mixing.py --section tempering   # parallel tempering (bench/mixing_tempering.py)
    python bench/mixing.py --quick               # a smoke run of every section

Every method is ebmlang's own sampler, chosen in the model by `sampler s : gibbs |
swendsen_wang | wolff` and driven by the sweep `model.sample` runs (the compiled Gibbs parts,
the cluster moves of `cluster_moves.with_cluster_moves`). A chain runs until it is 100 times
its longest autocorrelation time (or the sweep cap, which the table then shows), so a short
chain does not flatter Gibbs. A Wolff "sweep" is as many single-cluster steps as make one
site visit per site on average (adapted in burn-in, then fixed). Time per sweep is the median
of --reps bursts with the methods interleaved (the machine is shared).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ebmlang  # noqa: E402
from ebmlang.infer.cluster_moves import with_cluster_moves  # noqa: E402
from ebmlang.backends.choice import sweep_parts  # noqa: E402
from ebmlang.infer.sample import init_state  # noqa: E402

BETA_ISING = math.log(1 + math.sqrt(2)) / 2          # 0.440687
BETA_POTTS = math.log(1 + math.sqrt(3))              # 1.005053

ISING = """
const L = 16
const beta = 0.44
var s[i in 0..L-1, j in 0..L-1] : spin
factor right[i in 0..L-1, j in 0..L-1] : beta * s[i, j] * s[i, (j + 1) % L]
factor down[i in 0..L-1, j in 0..L-1]  : beta * s[i, j] * s[(i + 1) % L, j]
"""
POTTS = """
const L = 16
const beta = 1.0
var s[i in 0..L-1, j in 0..L-1] : cat(3)
factor right[i in 0..L-1, j in 0..L-1] : beta * (s[i, j] == s[i, (j + 1) % L])
factor down[i in 0..L-1, j in 0..L-1]  : beta * (s[i, j] == s[(i + 1) % L, j])
"""
METHODS = ("gibbs", "swendsen_wang", "wolff")


# ---------------------------------------------------------------- autocorrelation

def tau_int(series: np.ndarray, c: float = 5.0) -> float:
    """Integrated autocorrelation time of (chains, n) series, in steps: 1 + 2 sum rho(t) up to
    Sokal's window (the first W >= c tau(W)); rho averaged over chains (FFT)."""
    x = series - series.mean(axis=1, keepdims=True)
    n = x.shape[1]
    f = np.fft.rfft(x, 2 * n)
    acov = np.fft.irfft(f * np.conj(f))[:, :n].mean(axis=0)
    if acov[0] <= 0:
        return 1.0
    rho = acov / acov[0]
    taus = 1 + 2 * np.cumsum(rho[1:])
    w = np.arange(1, n)
    ok = np.flatnonzero(w >= c * taus)
    return float(taus[ok[0]] if len(ok) else taus[-1])


def observables(x: np.ndarray, L: int, potts: bool) -> tuple[np.ndarray, np.ndarray]:
    """(|m|, energy per site) of each chain: the Ising magnetization and -sum s s' / N, or
    for Potts the order parameter (3 max_q n_q / N - 1) / 2 and -sum [s == s'] / N."""
    s = x[:, :L * L].reshape(-1, L, L)
    if potts:
        counts = np.stack([(s == q).sum(axis=(1, 2)) for q in range(3)], 1)
        m = (3 * counts.max(axis=1) / (L * L) - 1) / 2
        e = -((s == np.roll(s, 1, 1)).sum(axis=(1, 2)) + (s == np.roll(s, 1, 2)).sum(axis=(1, 2)))
    else:
        m = np.abs(s.sum(axis=(1, 2))) / (L * L)
        e = -(s * np.roll(s, 1, 1) + s * np.roll(s, 1, 2)).sum(axis=(1, 2))
    return m, e / (L * L)


# ---------------------------------------------------------------- the cluster section

class Chain:
    """One method's chains on one model, driven by ebmlang's sweep."""

    def __init__(self, src: str, L: int, beta: float, method: str, chains: int, seed: int):
        self.model = ebmlang.compile(src + f"sampler s : {method}\n", L=L, beta=beta)
        self.rng = np.random.default_rng(seed)
        self.x = init_state(self.model, chains, self.rng, None)
        self.parts, step = sweep_parts(self.model, "numba")
        self.burn = 200
        self.step = with_cluster_moves(self.model, step, self.burn)
        self.theta = self.model.params.theta

    def sweeps(self, n: int) -> None:
        for _ in range(n):
            self.step(self.parts, self.x, self.theta, self.rng, None)


def measure(src, L, beta, method, potts, chains, max_sweeps, seed=1):
    """(tau |m|, tau E, sweeps run): chains run in chunks until 100 tau or max_sweeps."""
    ch = Chain(src, L, beta, method, chains, seed)
    ch.sweeps(ch.burn)
    thin = 1 if method != "gibbs" or L < 64 else 4
    ms, es = [], []
    tm = te = 1.0
    while True:
        for _ in range(2000):
            ch.sweeps(thin)
            m, e = observables(ch.x, L, potts)
            ms.append(m)
            es.append(e)
        tm = thin * tau_int(np.array(ms).T)
        te = thin * tau_int(np.array(es).T)
        run = thin * len(ms)
        if run >= 100 * max(tm, te) or run >= max_sweeps:
            return tm, te, run, ch


def cost(chs: list[Chain], reps: int, burst: int) -> list[float]:
    """Median CPU seconds per sweep and chain, bursts interleaved across the methods."""
    times = [[] for _ in chs]
    for _ in range(reps):
        for k, ch in enumerate(chs):
            t = time.process_time()
            ch.sweeps(burst)
            times[k].append((time.process_time() - t) / (burst * ch.x.shape[0]))
    return [float(np.median(t)) for t in times]


def cluster_section(quick: bool, reps: int) -> list[str]:
    """Gibbs, Swendsen-Wang and Wolff on the critical Ising (L = 32, 64, 128) and 3-state
    Potts (L = 64) models."""
    cases = [("Ising", ISING, BETA_ISING, L, False) for L in (32, 64, 128)] + \
        [("Potts q=3", POTTS, BETA_POTTS, 64, True)]
    if quick:
        cases = [("Ising", ISING, BETA_ISING, 16, False), ("Potts q=3", POTTS, BETA_POTTS, 16, True)]
    cap = {"gibbs": 60_000 if quick else 600_000, "swendsen_wang": 20_000, "wolff": 20_000}
    lines = ["## Cluster moves at the critical point", "",
             "| model | L | method | tau_int(\\|m\\|) sweeps | tau_int(E) sweeps | sweeps run "
             "(/ tau) | us / sweep | cost vs Gibbs | ESS(\\|m\\|) / CPU s | vs Gibbs |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, src, beta, L, potts in cases:
        rows = [measure(src, L, beta, m, potts, 2, cap[m]) for m in METHODS]
        per = cost([r[3] for r in rows], reps, max(20, 200_000 // (L * L)))
        ess = [1.0 / (r[0] * t) for r, t in zip(rows, per)]
        for m, r, t, e in zip(METHODS, rows, per, ess):
            lines.append(f"| {name} | {L} | {m} | {r[0]:.1f} | {r[1]:.1f} | {r[2]:,} "
                         f"({r[2] / max(r[0], r[1]):.0f}) | {1e6 * t:.1f} | {t / per[0]:.1f}x | "
                         f"{e:,.0f} | {e / ess[0]:.1f}x |")
        print(f"done {name} L={L}", file=sys.stderr, flush=True)
    return lines


@contextlib.contextmanager
def serial_kernels(on: bool):
    """The cluster kernels one chain after another while `on` (as before issue 14 item 4)."""
    from ebmlang.infer import cluster_moves
    work = cluster_moves.PARALLEL_WORK
    cluster_moves.PARALLEL_WORK = 1 << 62 if on else work
    try:
        yield
    finally:
        cluster_moves.PARALLEL_WORK = work


def wall(chs: list[Chain], reps: int, burst: int, serial: list[bool]) -> list[tuple]:
    """Median (wall, CPU) seconds per sweep of all of a Chain's chains, bursts interleaved (CPU
    time counts every thread: equal CPU and less wall time is what threads buy)."""
    times = [[] for _ in chs]
    for _ in range(reps):
        for k, ch in enumerate(chs):
            with serial_kernels(serial[k]):
                t, c = time.perf_counter(), time.process_time()
                ch.sweeps(burst)
                times[k].append(((time.perf_counter() - t) / burst,
                                 (time.process_time() - c) / burst))
    return [tuple(np.median(np.array(t), axis=0)) for t in times]


def chains_section(quick: bool, reps: int) -> list[str]:
    """Many chains (issue 14 item 4): 64 chains of the critical Ising model at L = 64, wall
    time per sweep of all of them with the cluster kernels serial over chains and in
    parallel; tau_int from 2 chains as in the cluster section (each chain is the same Markov
    chain whatever their number), ESS(|m|) per wall second = chains / (tau x time)."""
    L, chains = (16, 16) if quick else (64, 64)
    cap = {"gibbs": 60_000 if quick else 600_000, "swendsen_wang": 20_000, "wolff": 20_000}
    lines = [f"## {chains} chains at the critical point (Ising, L = {L}; load average "
             f"{os.getloadavg()[0]:.2f})", "",
             "| method | cluster kernels | tau_int(\\|m\\|) sweeps | ms / sweep of all chains "
             "(wall) | CPU ms / sweep | ESS(\\|m\\|) / wall s | vs Gibbs |",
             "|---|---|---:|---:|---:|---:|---:|"]
    taus = {m: measure(ISING, L, BETA_ISING, m, False, 2, cap[m])[0] for m in METHODS}
    rows = [("gibbs", False), ("swendsen_wang", True), ("swendsen_wang", False),
            ("wolff", True), ("wolff", False)]
    chs = [Chain(ISING, L, BETA_ISING, m, chains, 1) for m, _ in rows]
    for ch, (m, serial) in zip(chs, rows):      # burn-in: Wolff's steps adapted
        with serial_kernels(serial):
            ch.sweeps(ch.burn)
    per = wall(chs, reps, max(5, 50_000 // (L * L)), [s for _, s in rows])
    ess = [chains / (taus[m] * t) for (m, _), (t, _) in zip(rows, per)]
    for (m, serial), (t, cpu), e in zip(rows, per, ess):
        from ebmlang.infer.cluster_moves import PARALLEL_WORK
        kind = "-" if m == "gibbs" else "serial over chains (before)" if serial else \
            "chains in parallel" if chains * L * L >= PARALLEL_WORK else "serial (too little work)"
        lines.append(f"| {m} | {kind} | {taus[m]:.1f} | {1e3 * t:.2f} | {1e3 * cpu:.2f} | "
                     f"{e:,.0f} | {e / ess[0]:.1f}x |")
    return lines


def tempering_section(quick: bool, reps: int) -> list[str]:
    """Parallel tempering with Gibbs inside (bench/mixing_tempering.py)."""
    from mixing_tempering import tempering_section as section
    return section(quick, reps).splitlines()


SECTIONS = {"cluster": cluster_section, "chains": chains_section,
            "tempering": tempering_section}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--section", choices=sorted(SECTIONS), action="append")
    args = ap.parse_args()
    print(f"- CPUs: {os.cpu_count()}; load average at start: "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"- Python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.platform()}")
    print(f"- command: `python bench/mixing.py {' '.join(sys.argv[1:])}`".replace("  ", " "))
    print()
    for name in args.section or sorted(SECTIONS):
        print("\n".join(SECTIONS[name](args.quick, args.reps)))
        print()


if __name__ == "__main__":
    main()

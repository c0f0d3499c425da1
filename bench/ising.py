"""Ising Gibbs sweeps at beta = 0.44: ebmlang's numba and numpy backends against hand-written
kernels (bench/ising_kernels.py) and pgmpy, side by side in one run; Markdown on stdout.

    python bench/ising.py                 # about 10 minutes on 2 shared cores
    python bench/ising.py --quick         # a smoke run
    python bench/ising.py --pgmpy         # also pgmpy's GibbsSampling at L = 4, 8, 16

Every timing is the median of --reps repetitions, the methods interleaved within each
repetition (the machine is shared). Rates are spin updates per second; ratios are against the
fast hand-written kernel (the practical limit). ebmlang is timed through the sampler's sweep
(`gibbs_step` over the model's block parts), which is what `model.sample` runs per sweep; at
64 chains one row times `model.sample` itself (its 64 chains of L = 64 are 16 chain groups,
`infer.groups`, swept in one loop), storing every draw.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import ebmlang  # noqa: E402
import ising_kernels as K  # noqa: E402
from ebmlang.backends import numba_backend
from ebmlang.backends import runtime  # noqa: E402
from ebmlang.infer.diagnostics import bulk_ess  # noqa: E402

BETA = 0.44
MODEL = ROOT / "examples" / "ising.ebm"


# ---------------------------------------------------------------- the contenders

def contenders(L: int, chains: int = 1, numpy_backend: bool = True):
    """name -> (sweep function, state accessor for the energy), each on its own random state."""
    rng = np.random.default_rng(0)
    spins = np.where(rng.random((chains, L, L)) < 0.5, 1, -1).astype(np.int8)
    table = K.heat_bath_table(BETA)
    masks = K.numpy_masks(L)
    seed = iter(range(1, 1 << 62))
    out = {}
    if chains == 1:
        s1, s2, s3 = (spins[0].copy() for _ in range(3))
        out["hand numba, fast (xoroshiro + table)"] = (
            lambda: K.fast_sweep(s1, table, next(seed)), lambda: s1[None])
        s4 = spins[0].copy()
        out["hand numba, fast, unsigned indices"] = (
            lambda: K.fast_sweep_unsigned(s4, table, next(seed)), lambda: s4[None])
        out["hand numba, plain (np.random + exp)"] = (
            lambda: K.plain_sweep(s2, BETA, next(seed)), lambda: s2[None])
        out["hand numpy checkerboard"] = (
            lambda: K.numpy_sweep(s3, BETA, rng, masks), lambda: s3[None])
    else:
        s1, s2, s3 = (spins.copy() for _ in range(3))
        seeds = lambda: np.arange(chains) + next(seed) * chains  # noqa: E731
        out["hand numba, fast, chains in parallel"] = (
            lambda: K.fast_sweeps_chains(s1, table, seeds()), lambda: s1)
        s4 = spins.copy()
        out["hand numba, fast, unsigned indices, chains in parallel"] = (
            lambda: K.fast_sweeps_chains_unsigned(s4, table, seeds()), lambda: s4)
        out["hand numba, plain, chains in parallel"] = (
            lambda: K.plain_sweeps_chains(s2, BETA, seeds()), lambda: s2)
        out["hand numpy checkerboard"] = (
            lambda: K.numpy_sweep(s3, BETA, rng, masks), lambda: s3)
    model = ebmlang.load(MODEL, L=L, beta=BETA)
    x0 = spins.reshape(chains, -1).astype(np.float64)
    kinds = [("ebmlang numba", model.parts("numba"), numba_backend.gibbs_step)]
    kinds.append(("ebmlang numba, table by id + pattern stream",
                  numba_backend.compiled_parts(model, layout="stream"), numba_backend.gibbs_step))
    kinds.append(("ebmlang numba, no table",
                  numba_backend.compiled_parts(model, tabulate=False), numba_backend.gibbs_step))
    if chains > 1:
        kinds.append(("ebmlang numba, serial chains", model.parts("numba"), _serial_step))
    if numpy_backend:
        kinds.append(("ebmlang numpy", model.parts(), runtime.gibbs_step))
    for name, parts, step in kinds:
        x, r = x0.copy(), np.random.default_rng(1)
        out[name] = (_bind(step, parts, x, model.params.theta, r),
                     (lambda x=x: x.reshape(chains, L, L)))
    if chains > 1:
        out[f"ebmlang model.sample ({SAMPLE_DRAWS} kept draws a call, per sweep)"] = (
            _public(model, chains), None)
        out["the same, chain groups one after another (the local path before)"] = (
            _public(model, chains, in_turn=True), None)
        out["the same, Swendsen-Wang serial over chains (before issue 14 item 4)"] = (
            _public(model, chains, serial=True), None)
        gibbs = ebmlang.compile(MODEL.read_text() + "\nsampler s : gibbs\n", L=L, beta=BETA)
        out["ebmlang model.sample, `sampler s : gibbs` (no Swendsen-Wang move)"] = (
            _public(gibbs, chains), None)
    return out


SAMPLE_DRAWS = 100     # draws of one timed `model.sample` call (burn-in 0)


def _public(model, chains: int, in_turn: bool = False, serial: bool = False):
    """One `model.sample` call through the public API (chain groups, init, storing every
    draw), timed per sweep: `time_sweeps` divides by SAMPLE_DRAWS. `in_turn`: the groups run
    one after another, each as its own `sample` (as `jobs=groups.local` runs them, and as
    `sample` ran them here before they shared one sweep loop). `serial`: the cluster kernels
    one chain after another, as before issue 14 item 4 (the same draws)."""
    from ebmlang.infer import cluster_moves, groups
    from ebmlang.infer.sample import sample
    seed = iter(range(1, 1 << 62))

    def run():
        if in_turn:
            sample(model, draws=SAMPLE_DRAWS, chains=chains, burn_in=0, seed=next(seed),
                   jobs=groups.local)
            return
        work = cluster_moves.PARALLEL_WORK
        cluster_moves.PARALLEL_WORK = 1 << 62 if serial else work
        try:
            model.sample(draws=SAMPLE_DRAWS, chains=chains, burn_in=0, seed=next(seed))
        finally:
            cluster_moves.PARALLEL_WORK = work
    run.sweeps = SAMPLE_DRAWS
    return run


def _bind(step, parts, x, theta, rng):
    return lambda: step(parts, x, theta, rng)


def _serial_step(parts, x, theta, rng):
    for block in parts:
        for part in block:
            part.update(x, theta, rng, parallel=False)


# ---------------------------------------------------------------- timing

def time_sweeps(fns: dict, sites: int, reps: int, budget: float = 0.3) -> dict[str, float]:
    """Median seconds per sweep of each function, interleaved over reps."""
    counts = {}
    for name, (fn, _) in fns.items():
        fn()                                   # compile, warm caches
        t = time.perf_counter()
        fn()
        once = max(time.perf_counter() - t, 1e-7)
        counts[name] = max(1, min(10_000, int(budget / once)))
    times = {name: [] for name in fns}
    for _ in range(reps):
        for name, (fn, _) in fns.items():
            t = time.perf_counter()
            for _ in range(counts[name]):
                fn()
            times[name].append((time.perf_counter() - t) / counts[name] /
                               getattr(fn, "sweeps", 1))
    return {name: float(np.median(v)) for name, v in times.items()}


def rate_table(times: dict, sites: int, ref: str) -> list[str]:
    rows = ["| method | ms / sweep | M updates / s | vs fast hand kernel |", "|---|---:|---:|---:|"]
    for name, t in times.items():
        rows.append(f"| {name} | {t * 1e3:.3f} | {sites / t / 1e6:.1f} | "
                    f"{t / times[ref]:.2f}x |")
    return rows


# ---------------------------------------------------------------- effective samples

def energy(s: np.ndarray) -> np.ndarray:
    """-sum over bonds of s_i s_j, per chain (s: chains x L x L)."""
    s = s.astype(np.int64)
    return -(s * np.roll(s, 1, -1) + s * np.roll(s, 1, -2)).sum(axis=(-2, -1))


def ess_rows(L: int, chains: int, sweeps: int, burn: int) -> list[str]:
    """Bulk ESS of the energy over `chains` chains per second of sweeping (the energy is
    recorded between sweeps, untimed). At beta = 0.44 (near critical) the energy decorrelates
    over thousands of sweeps, so each method runs `sweeps` sweeps (a tenth for numpy)."""
    rows = ["| method | chains x sweeps | mean energy / spin | ESS of the energy | "
            "ESS / 1000 sweeps | ESS / s |", "|---|---:|---:|---:|---:|---:|"]
    for name, (fn, state) in contenders(L, chains).items():
        if state is None:          # model.sample: timed above, its energy not read per sweep
            continue
        n = sweeps if "numpy" not in name else sweeps // 10
        for _ in range(burn):
            fn()
        series = np.empty((chains, n))
        spent = 0.0
        for k in range(n):
            t = time.perf_counter()
            fn()
            spent += time.perf_counter() - t
            series[:, k] = energy(state())
        ess = bulk_ess(series)
        mean = series.mean() / (L * L)
        rows.append(f"| {name} | {chains} x {n:,} | {mean:.4f} | {ess:,.0f} | "
                    f"{1000 * ess / n:.2f} | {ess / spent:,.0f} |")
    return rows


# ---------------------------------------------------------------- pgmpy

def pgmpy_rows(sizes, timeout: float) -> list[str]:
    rows = ["| L | kernel build | sweeps timed | updates / s |", "|---:|---|---:|---:|"]
    for L in sizes:
        code = PGMPY_SNIPPET.format(L=L, beta=BETA)
        try:
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 timeout=timeout)
            if out.returncode != 0:
                last = (out.stderr.strip().splitlines() or ["?"])[-1]
                rows.append(f"| {L} | failed: {last[:100]} | | |")
                continue
            build, n, rate = out.stdout.split()
            rows.append(f"| {L} | {float(build):.1f} s | {int(n)} | {float(rate):,.0f} |")
        except subprocess.TimeoutExpired:
            rows.append(f"| {L} | not built in {timeout:.0f} s (it enumerates 2^{L * L - 1} "
                        "states of the other variables, per variable) | | |")
    return rows


PGMPY_SNIPPET = """
import itertools, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from pgmpy.models import DiscreteMarkovNetwork
from pgmpy.factors.discrete import DiscreteFactor
from pgmpy.sampling import GibbsSampling
L, beta = {L}, {beta}
name = lambda i, j: f"s{{i}}_{{j}}"
g = DiscreteMarkovNetwork()
g.add_nodes_from(name(i, j) for i in range(L) for j in range(L))
pair = np.exp(beta * np.array([[1.0, -1.0], [-1.0, 1.0]])).ravel()
for i, j in itertools.product(range(L), range(L)):
    for a, b in (((i + 1) % L, j), (i, (j + 1) % L)):
        if not g.has_edge(name(i, j), name(a, b)):
            g.add_edge(name(i, j), name(a, b))
            g.add_factors(DiscreteFactor([name(i, j), name(a, b)], [2, 2], pair))
t = time.perf_counter()
gibbs = GibbsSampling(g)
build = time.perf_counter() - t
n = 50
t = time.perf_counter()
gibbs.sample(size=n + 1, seed=0)
print(build, n, n * L * L / (time.perf_counter() - t))
"""


# ---------------------------------------------------------------- start-up

START = """
import time
t0 = time.perf_counter()
import numpy as np, ebmlang
from ebmlang.backends import numba_backend
model = ebmlang.load({model!r}, L=64)
t1 = time.perf_counter()
parts = model.parts("numba")
x = np.ones((1, model.checked.n_state))
numba_backend.gibbs_step(parts, x, model.params.theta, np.random.default_rng(0))
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def startup_rows() -> list[str]:
    """Import + compile of the model, then the numba kernels' load or JIT compile, in fresh
    processes: cold (empty EBMLANG_CACHE and NUMBA_CACHE_DIR), then warm (the same caches)."""
    rows = ["| start | import + ebmlang.load (s) | kernels: parts + first sweep (s) | "
            "`ebmlang sample -n 100` wall (s) |", "|---|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, EBMLANG_CACHE=f"{tmp}/ebm", NUMBA_CACHE_DIR=f"{tmp}/numba")
        cmd = [sys.executable, "-m", "ebmlang", "sample", str(MODEL), "--set", "L=64",
               "-n", "100", "--chains", "1", "--no-progress", "--seed", "0"]
        for label in ("cold", "warm", "warm"):
            out = subprocess.run([sys.executable, "-c", START.format(model=str(MODEL))],
                                 capture_output=True, text=True, env=env, check=True)
            load, jit = (float(v) for v in out.stdout.split())
            if label == "cold":
                subprocess.run(["rm", "-rf", f"{tmp}/ebm", f"{tmp}/numba"], check=True)
            t = time.perf_counter()
            subprocess.run(cmd, capture_output=True, env=env, check=True)
            wall = time.perf_counter() - t
            rows.append(f"| {label} | {load:.2f} | {jit:.2f} | {wall:.2f} |")
    return rows


# ---------------------------------------------------------------- where the time goes

def profile_rows(L: int = 64) -> list[str]:
    """One sweep of ebmlang's numba path taken apart: the kernel calls alone, with the
    per-part Python work (seeds, table check, dispatch), both blocks in one call (what
    gibbs_step runs on a lattice), the sweep, and `model.sample`."""
    import timeit
    model = ebmlang.load(MODEL, L=L, beta=BETA)
    parts = model.parts("numba")
    theta = model.params.theta
    x = np.where(np.random.default_rng(0).random((1, L * L)) < 0.5, -1.0, 1.0)
    rng = np.random.default_rng(0)
    numba_backend.gibbs_step(parts, x, theta, rng)
    seeds = rng.bit_generator.random_raw((1, 2))
    flat = [p for block in parts for p in block]

    def kernels():
        for p in flat:
            p._fns[False](x, theta, seeds, *p._args)

    def updates():
        for p in flat:
            p.update(x, theta, rng)

    def fused():
        flat[0].fused.update(x, theta, rng)

    def sample():
        model.sample(draws=200, chains=1, burn_in=0, seed=0)

    n = 2000
    rows = [f"L = {L}, one chain, {L * L // 2:,} variables per part:", "",
            "| what | us / sweep |", "|---|---:|"]
    for name, fn, k in (("kernel calls only, part by part (2 calls)", kernels, n),
                        ("+ seeds, table check (CompiledPart.update, 2 calls)", updates, n),
                        ("both blocks in one call, seeds, table checks (FusedBlocks.update)",
                         fused, n),
                        ("+ the block loop (numba_backend.gibbs_step)",
                         lambda: numba_backend.gibbs_step(parts, x, theta, rng), n),
                        ("model.sample per kept draw (+ storing it: sample.py copies the "
                         "full state, twice)",
                         sample, 5)):
        per = min(timeit.repeat(fn, number=k, repeat=5)) / k
        per /= 200 if fn is sample else 1
        rows.append(f"| {name} | {per * 1e6:.1f} |")
    return rows


# ---------------------------------------------------------------- report

def machine() -> list[str]:
    import numba
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    try:
        import pgmpy
        pg = pgmpy.__version__
    except ImportError:
        pg = "not installed"
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return [f"- machine: {os.cpu_count()} CPUs (`nproc` {len(os.sched_getaffinity(0))}), {cpu}, "
            f"shared with other work (load average at the start {load}); numba threads "
            f"{numba.get_num_threads()}",
            f"- Python {platform.python_version()}, numpy {np.__version__}, numba "
            f"{numba.__version__}, ebmlang {ebmlang.__version__}, pgmpy {pg}"]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--sweeps", type=int, default=50_000,
                    help="sweeps per chain for the energy ESS (after a tenth as many of burn-in)")
    ap.add_argument("--pgmpy", action="store_true", help="pgmpy's GibbsSampling, L = 4, 8, 16")
    ap.add_argument("--pgmpy-timeout", type=float, default=600)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rates-only", action="store_true",
                    help="only the sweep-rate tables (one chain per --sizes, and 64 chains)")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.reps, args.sweeps, args.pgmpy_timeout = [64, 256], 2, 2000, 60
    print("# Ising Gibbs sweeps (numba backend)\n")
    print(f"Command: `python bench/{Path(__file__).name} {' '.join(sys.argv[1:])}`\n")
    print("\n".join(machine()) + "\n")
    ref = "hand numba, fast (xoroshiro + table)"
    for L in args.sizes:
        fns = contenders(L)
        print(f"## L = {L} ({L * L:,} spins), one chain\n")
        print("\n".join(rate_table(time_sweeps(fns, L * L, args.reps), L * L, ref)) + "\n")
    chains = 64
    fns = contenders(64, chains)
    print(f"## {chains} chains of L = 64 (throughput; numba threads "
          f"{__import__('numba').get_num_threads()}, load average {os.getloadavg()[0]:.2f})\n")
    times = time_sweeps(fns, chains * 4096, args.reps)
    ref = "hand numba, fast, chains in parallel"
    print("\n".join(rate_table(times, chains * 4096, ref)) + "\n")
    if args.rates_only:
        return
    print("## Effective samples of the energy per second, L = 64\n")
    print("\n".join(ess_rows(64, 8, args.sweeps, burn=args.sweeps // 10)) + "\n")
    if args.pgmpy:
        print("## pgmpy GibbsSampling (DiscreteMarkovNetwork)\n")
        print("\n".join(pgmpy_rows([4, 8, 16], args.pgmpy_timeout)) + "\n")
    print("## Start-up: cold and warm caches (L = 64)\n")
    print("\n".join(startup_rows()) + "\n")
    print("## Where the time goes\n")
    print("\n".join(profile_rows()) + "\n")


if __name__ == "__main__":
    main()

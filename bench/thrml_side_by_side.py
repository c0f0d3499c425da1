"""ebmlang and thrml (Extropic's JAX block-Gibbs library, on the CPU) side by side, in one run:
block sweeps per second on the same Ising models and RBMs; Markdown on stdout.

    pip install -e '.[bench]'             # or: pip install thrml   (thrml pulls jax)
    python bench/thrml_side_by_side.py    # about 3 minutes on 2 shared cores
    python bench/thrml_side_by_side.py --quick

Cases: the Ising model (examples/ising.ebm, 2-D torus, beta = 0.44) at L = 64 and 256 with 1
and 64 chains, two checkerboard blocks; the RBM (examples/rbm.ebm, bool visibles and hiddens,
W ~ normal(0, 0.1), b, c ~ normal(0, 0.1), seed 0) at 64 x 100 and 784 x 500 with 100 chains,
blocks v and h. thrml's nodes are spins, so the RBM is given to it as the equivalent spin
model (v = (1 + s) / 2: J = W / 4, visible field b / 2 + W.sum(1) / 4, hidden field
c / 2 + W.sum(0) / 4), the same distribution with True meaning 1 in both.

Every rate is the median over --reps repetitions, the methods interleaved within each
repetition (the machine is shared). thrml runs n sweeps per call in one jitted `lax.scan` of
`thrml.sample_blocks` (vmapped over chains when there are several), timed to
`block_until_ready`; its trace + compile is timed apart (`jit(...).lower(...).compile()`), and
so is the build of its sampling program. ebmlang is timed through its sweep
(`numba_backend.gibbs_step` over `model.parts("numba")`, as bench/ising.py; `runtime.gibbs_step`
over `model.parts()` for the numpy backend) and through `model.sample(draws=1, burn_in=n - 1,
keep=False)` (the user's path, default backend, and `backend="numpy"` for the RBM). By default
`model.sample` adds a Swendsen-Wang move to every Ising sweep (a different, costlier sweep), so
the Ising model is also compiled with `sampler s : gibbs`, plain block Gibbs as in thrml: that
is the model.sample column; the default is reported beside it.

Agreement: the mean energy per site of the Ising model at L = 64 (64 chains, after burn-in),
and the mean of v and h in the 64 x 100 RBM, from both libraries, with their Monte Carlo
errors (standard error of the per-chain means).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))   # this checkout's ebmlang, not an installed one

try:
    import jax
    import jax.numpy as jnp
    import thrml
    from thrml import Block, SpinNode, sample_blocks
    from thrml.models import IsingEBM, IsingSamplingProgram
except ImportError as err:     # thrml is a benchmark-only dependency
    sys.exit(f"bench/thrml_side_by_side.py needs thrml ({err}). Install it with\n"
             f"    pip install -e '.[bench]'      (or: pip install thrml)\n"
             f"ebmlang itself never imports it.")

import ebmlang  # noqa: E402
from ebmlang.backends import numba_backend, runtime  # noqa: E402
from ebmlang.backends.resources import blas_threads  # noqa: E402

BETA = 0.44
ISING = ROOT / "examples" / "ising.ebm"
RBM = ROOT / "examples" / "rbm.ebm"


# ---------------------------------------------------------------- models

def ising_lattice(L: int):
    """Bonds (right, down) as index pairs of the row-major L x L torus; checkerboard colours."""
    idx = np.arange(L * L).reshape(L, L)
    a = np.concatenate([idx.ravel(), idx.ravel()])
    b = np.concatenate([np.roll(idx, -1, 1).ravel(), np.roll(idx, -1, 0).ravel()])
    colour = (np.add.outer(np.arange(L), np.arange(L)) % 2).ravel()
    return a, b, [np.flatnonzero(colour == 0), np.flatnonzero(colour == 1)]


def rbm_params(N: int, M: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.1, (N, M)), rng.normal(0, 0.1, N), rng.normal(0, 0.1, M)


# ---------------------------------------------------------------- thrml

class Thrml:
    """A thrml sampling program, its jitted n-sweep function and its state (list of blocks)."""

    def __init__(self, n_nodes, edges_a, edges_b, weights, biases, beta, blocks, chains, seed=0):
        t = time.perf_counter()
        nodes = [SpinNode() for _ in range(n_nodes)]
        edges = [(nodes[i], nodes[j]) for i, j in zip(edges_a.tolist(), edges_b.tolist())]
        self.blocks = [Block([nodes[i] for i in blk]) for blk in blocks]
        self.block_ids = blocks
        ebm = IsingEBM(nodes, edges, jnp.asarray(biases, jnp.float32),
                       jnp.asarray(weights, jnp.float32), jnp.asarray(beta, jnp.float32))
        self.program = IsingSamplingProgram(ebm, self.blocks, clamped_blocks=[])
        self.build = time.perf_counter() - t
        self.chains = chains
        key = jax.random.PRNGKey(seed)
        self.key, k0 = jax.random.split(key)
        shape = (chains,) if chains > 1 else ()
        ks = jax.random.split(k0, len(blocks))
        self.state = [jax.random.bernoulli(k, 0.5, (*shape, len(b))) for k, b in zip(ks, blocks)]
        self.compiled = {}
        self.compile_time = {}

    def _fn(self, n: int):
        program = self.program
        samplers = [None for _ in program.gibbs_spec.free_blocks]

        def one_chain(key, state):
            def body(s, k):
                s, _ = sample_blocks(k, list(s), [], program, list(samplers))
                return s, None
            return jax.lax.scan(body, state, jax.random.split(key, n))[0]

        if self.chains == 1:
            return one_chain
        return lambda key, state: jax.vmap(one_chain)(jax.random.split(key, self.chains), state)

    def prepare(self, n: int):
        if n not in self.compiled:
            t = time.perf_counter()
            self.compiled[n] = jax.jit(self._fn(n)).lower(self.key, self.state).compile()
            self.compile_time[n] = time.perf_counter() - t
        return self.compiled[n]

    def run(self, n: int):
        fn = self.prepare(n)
        self.key, k = jax.random.split(self.key)
        self.state = jax.block_until_ready(fn(k, self.state))

    def global_state(self, n_nodes: int) -> np.ndarray:
        """(chains, n_nodes) of 0/1."""
        out = np.zeros((self.chains, n_nodes))
        for ids, s in zip(self.block_ids, self.state):
            out[:, ids] = np.asarray(s).reshape(self.chains, -1)
        return out


def thrml_sampler_state_ok(program) -> bool:
    """SpinGibbsConditional keeps no sampler state (init() is None); the sweep relies on it."""
    return all(s.init() is None for s in program.samplers)


# ---------------------------------------------------------------- ebmlang

class Ebm:
    """An ebmlang model, its parts and a chains x n_state state."""

    def __init__(self, model, x0: np.ndarray, seed: int = 1):
        self.model = model
        self.x = x0.copy()
        self.rng = np.random.default_rng(seed)
        self.theta = model.params.theta
        self._parts = {}

    def sweep(self, n: int, backend: str = "numba"):
        if backend not in self._parts:
            self._parts[backend] = self.model.parts(backend) if backend == "numba" \
                else self.model.parts()
        parts = self._parts[backend]
        step = numba_backend.gibbs_step if backend == "numba" else runtime.gibbs_step
        with blas_threads():                     # the BLAS thread policy model.sample runs under
            for _ in range(n):
                step(parts, self.x, self.theta, self.rng)

    def sample(self, n: int, chains: int, backend: str | None = None, model=None):
        (model or self.model).sample(draws=1, chains=chains, burn_in=n - 1, keep=False, seed=0,
                          backend=backend)


# ---------------------------------------------------------------- timing

def time_cases(fns: dict, reps: int, budget: float) -> tuple[dict, dict]:
    """fns: name -> (run(n) doing n sweeps, prepare(n) or None). Median seconds per sweep,
    interleaved over reps; n per call set so that one call takes about `budget` seconds."""
    counts = {}
    for name, (run, prepare) in fns.items():
        n = 1
        if prepare:
            prepare(n)
        run(n)                                   # JIT compile (numba), warm caches
        while True:                              # grow n until a call takes budget / 4
            t = time.perf_counter()
            run(n)
            took = max(time.perf_counter() - t, 1e-6)
            if took > budget / 4 or n >= 5000:
                break
            n = min(5000, n * 4)
            if prepare:
                prepare(n)                       # thrml: one compile per n, untimed
        counts[name] = max(1, min(5000, int(n * budget / took)))
        if not prepare and counts[name] > n:     # once more at the new n (a fixed cost per
            t = time.perf_counter()              # call, as model.sample's, is amortized)
            run(counts[name])
            took = max(time.perf_counter() - t, 1e-6)
            counts[name] = max(1, min(5000, int(counts[name] * budget / took)))
        if prepare:
            prepare(counts[name])
            run(counts[name])
    times = {name: [] for name in fns}
    for _ in range(reps):
        for name, (run, _) in fns.items():
            t = time.perf_counter()
            run(counts[name])
            times[name].append((time.perf_counter() - t) / counts[name])
    return {name: float(np.median(v)) for name, v in times.items()}, counts


# ---------------------------------------------------------------- cases

def ising_case(L: int, chains: int):
    a, b, colours = ising_lattice(L)
    rng = np.random.default_rng(0)
    spins = np.where(rng.random((chains, L * L)) < 0.5, 1.0, -1.0)
    ebm = Ebm(ebmlang.load(ISING, L=L, beta=BETA), spins)
    # model.sample on this model adds a Swendsen-Wang move to every sweep (ebmlang's default
    # for a ferromagnetic Ising model); `sampler s : gibbs` is the plain block Gibbs of thrml.
    ebm.gibbs = ebmlang.compile(ISING.read_text() + "sampler s : gibbs\n", L=L, beta=BETA)
    th = Thrml(L * L, a, b, np.ones(len(a)), np.zeros(L * L), BETA, colours, chains)
    return ebm, th


def rbm_case(N: int, M: int, chains: int):
    W, bv, ch = rbm_params(N, M)
    model = ebmlang.load(RBM, N=N, M=M)
    model.params["W"], model.params["b"], model.params["c"] = W, bv, ch
    n = model.checked.n_state
    rng = np.random.default_rng(0)
    ebm = Ebm(model, (rng.random((chains, n)) < 0.5).astype(np.float64))
    ebm.gibbs = None
    ii, jj = np.meshgrid(np.arange(N), np.arange(M), indexing="ij")
    th = Thrml(N + M, ii.ravel(), N + jj.ravel(), (W / 4).ravel(),
               np.concatenate([bv / 2 + W.sum(1) / 4, ch / 2 + W.sum(0) / 4]), 1.0,
               [np.arange(N), N + np.arange(M)], chains)
    return ebm, th


def rbm_layout(model, N: int, M: int):
    """Columns of v and h in ebmlang's state."""
    fam = model.checked.vars
    return fam["v"].offset + np.arange(N), fam["h"].offset + np.arange(M)


def rates_for(ebm, th, chains, reps, budget, numpy=False):
    fns = {"thrml (jit scan of sample_blocks)": (th.run, th.prepare),
           "ebmlang sweep (numba gibbs_step)": (ebm.sweep, None),
           "ebmlang model.sample (default backend)": (
               lambda n: ebm.sample(n, chains, model=ebm.gibbs), None)}
    if ebm.gibbs is not None:
        fns["model.sample, default sampler (Gibbs + Swendsen-Wang)"] = (
            lambda n: ebm.sample(n, chains), None)
    if numpy:
        fns["ebmlang sweep (numpy gibbs_step)"] = (lambda n: ebm.sweep(n, "numpy"), None)
        fns["ebmlang model.sample(backend=\"numpy\")"] = (
            lambda n: ebm.sample(n, chains, "numpy"), None)
    return time_cases(fns, reps, budget)


# ---------------------------------------------------------------- agreement

def ising_energy(s: np.ndarray, L: int) -> np.ndarray:
    """Energy per site -sum over bonds s_i s_j / L^2, per chain (s: chains x L^2 of +-1)."""
    s = s.reshape(-1, L, L)
    return -(s * np.roll(s, 1, -1) + s * np.roll(s, 1, -2)).sum(axis=(-2, -1)) / (L * L)


def mean_se(per_chain: np.ndarray) -> tuple[float, float]:
    return float(per_chain.mean()), float(per_chain.std(ddof=1) / np.sqrt(len(per_chain)))


def agreement_ising(L: int, chains: int, burn: int, n: int, every: int) -> list[str]:
    ebm, th = ising_case(L, chains)
    ebm.sweep(burn)
    th.run(burn)
    e_ebm, e_th = [], []
    for _ in range(n // every):
        ebm.sweep(every)
        th.run(every)
        e_ebm.append(ising_energy(ebm.x, L))
        e_th.append(ising_energy(2 * th.global_state(L * L) - 1, L))
    m1, s1 = mean_se(np.mean(e_ebm, axis=0))
    m2, s2 = mean_se(np.mean(e_th, axis=0))
    z = (m1 - m2) / np.hypot(s1, s2)
    return [f"Ising, L = {L}, beta = {BETA}, {chains} chains, {burn} sweeps of burn-in then "
            f"{n} sweeps, the energy recorded every {every}; mean energy per site +- the "
            "standard error of the per-chain means:", "",
            "| sampler | energy / site | s.e. |", "|---|---:|---:|",
            f"| ebmlang | {m1:.5f} | {s1:.5f} |", f"| thrml | {m2:.5f} | {s2:.5f} |", "",
            f"Difference {m1 - m2:+.5f} = {z:+.2f} combined standard errors. (For reference, "
            "the infinite lattice at beta_c = 0.4407 has -sqrt 2 = -1.414.)"]


def agreement_rbm(N: int, M: int, chains: int, burn: int, n: int, every: int) -> list[str]:
    ebm, th = rbm_case(N, M, chains)
    vcols, hcols = rbm_layout(ebm.model, N, M)
    ebm.sweep(burn)
    th.run(burn)
    r_ebm, r_th = [], []
    for _ in range(n // every):
        ebm.sweep(every)
        th.run(every)
        g = th.global_state(N + M)
        r_ebm.append((ebm.x[:, vcols].mean(1), ebm.x[:, hcols].mean(1)))
        r_th.append((g[:, :N].mean(1), g[:, N:].mean(1)))
    r_ebm, r_th = np.mean(r_ebm, axis=0), np.mean(r_th, axis=0)   # (2, chains)
    rows = [f"RBM {N} x {M} (the random weights above), {chains} chains, {burn} sweeps of "
            f"burn-in then {n} sweeps, recorded every {every}:", "",
            "| quantity | ebmlang | thrml | difference / combined s.e. |", "|---|---:|---:|---:|"]
    for k, name in enumerate(("mean of v", "mean of h")):
        m1, s1 = mean_se(r_ebm[k])
        m2, s2 = mean_se(r_th[k])
        rows.append(f"| {name} | {m1:.4f} +- {s1:.4f} | {m2:.4f} +- {s2:.4f} | "
                    f"{(m1 - m2) / np.hypot(s1, s2):+.2f} |")
    return rows


# ---------------------------------------------------------------- report

def machine() -> list[str]:
    import numba
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return [f"- machine: {os.cpu_count()} CPUs (`nproc` {len(os.sched_getaffinity(0))}), {cpu}, "
            f"shared with other work (load average at the start {load}); numba threads "
            f"{numba.get_num_threads()}; jax devices {jax.devices()}",
            f"- Python {platform.python_version()}, numpy {np.__version__}, numba "
            f"{numba.__version__}, ebmlang {ebmlang.__version__} (from {Path(ebmlang.__file__).parent}), "
            f"thrml {thrml.__version__}, jax {jax.__version__}, jaxlib "
            f"{__import__('jaxlib').__version__}; thrml in float32 (its default), ebmlang float64"]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--budget", type=float, default=0.5, help="seconds per timed call")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-check", action="store_true", help="skip the agreement checks")
    args = ap.parse_args(argv)
    ising_cases = [(64, 1), (64, 64), (256, 1), (256, 64)]
    rbm_cases = [(64, 100, 100), (784, 500, 100)]
    check = dict(burn=1000, n=4000, every=10)
    if args.quick:
        args.reps, args.budget = 2, 0.1
        check = dict(burn=100, n=400, every=10)
    print("## ebmlang and thrml side by side\n")
    print(f"Command: `python bench/{Path(__file__).name} {' '.join(sys.argv[1:])}`\n")
    print("\n".join(machine()) + "\n")
    t_start = time.perf_counter()
    table = ["| case | chains | thrml sweeps / s | ebmlang sweep (numba) sweeps / s | "
             "ebmlang model.sample sweeps / s | RBM: numpy sweep / model.sample(numpy); Ising: "
             "model.sample, default sampler (+ Swendsen-Wang) | "
             "ebmlang sweep / thrml | model.sample / thrml | thrml program build (s) | "
             "thrml compile (s) | sweeps per timed call (thrml, sweep, sample) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    cases = [("Ising", (L, c)) for L, c in ising_cases] + [("RBM", r) for r in rbm_cases]
    for kind, spec in cases:
        if kind == "Ising":
            L, chains = spec
            label = f"Ising L = {L}"
            ebm, th = ising_case(L, chains)
        else:
            N, M, chains = spec
            label = f"RBM {N} x {M}"
            ebm, th = rbm_case(N, M, chains)
        times, counts = rates_for(ebm, th, chains, args.reps, args.budget, numpy=kind == "RBM")
        r = {k: 1 / v for k, v in times.items()}
        names = list(times)
        t_th, t_sw, t_sa = (r[names[i]] for i in range(3))
        np_col = (f"{r[names[3]]:,.1f} / {r[names[4]]:,.1f}" if len(names) > 4 else
                  f"{r[names[3]]:,.1f}")
        n_th = counts[names[0]]
        table.append(f"| {label} | {chains} | {t_th:,.1f} | {t_sw:,.1f} | {t_sa:,.1f} | "
                     f"{np_col} | {t_sw / t_th:.2f}x | {t_sa / t_th:.2f}x | {th.build:.1f} | "
                     f"{th.compile_time[1]:.1f} (1 sweep), {th.compile_time[n_th]:.1f} "
                     f"({n_th} sweeps) | {n_th}, {counts[names[1]]}, {counts[names[2]]} |")
        print(table[-1], file=sys.stderr, flush=True)
        del ebm, th
    print("### Block sweeps per second (median of interleaved repetitions)\n")
    print(f"{args.reps} repetitions, about {args.budget} s per timed call; a sweep updates every "
          "block once (two checkerboard colours; v then h). Ratios above 1: ebmlang faster. "
          f"Load average after the timings {os.getloadavg()[0]:.2f}.\n")
    print("\n".join(table) + "\n")
    if not args.no_check:
        print("### Do they sample the same thing?\n")
        print("\n".join(agreement_ising(64, 64, **check)) + "\n")
        print("\n".join(agreement_rbm(64, 100, 100, **check)) + "\n")
    print(f"Whole run {time.perf_counter() - t_start:.0f} s; load average at the end "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}.")


if __name__ == "__main__":
    main()

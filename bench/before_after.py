"""Kernel time of this checkout against another one (an export of an earlier commit), side by
side in one run: each workload runs in a fresh interpreter per checkout (its own compiled-model
cache), the two alternating --reps times; the row gives each side's median seconds per call and
their ratio, and says whether the two sides' results (the state after a fixed number of calls
from a fixed seed, or the kernel's outputs) are bit for bit the same.

    git archive COMMIT | tar -x -C /tmp/before     # the checkout to compare with
    python bench/before_after.py --before /tmp/before [--reps 5] [--only ising_direct,rbm]

Workloads only use APIs both checkouts have; each is timed on the kernel's own call (the
sweep's `gibbs_step`, `energy`, a BP run), after a warm-up call (compilation excluded).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent


def _gibbs(model, chains: int, **kw):
    """A sweep of the compiled parts (numba_backend.gibbs_step) on a fixed random state."""
    from ebmlang.backends import numba_backend
    from ebmlang.infer.sample import init_state
    parts = numba_backend.compiled_parts(model, **kw)
    rng = np.random.default_rng(0)
    x = init_state(model, chains, rng, None)
    theta = model.params.theta
    return (lambda: numba_backend.gibbs_step(parts, x, theta, rng)), (lambda: x)


def ising_direct(L: int = 256, chains: int = 1):
    import ebmlang
    model = ebmlang.load(ROOT / "examples" / "ising.ebm", L=L, beta=0.44)
    return _gibbs(model, chains, tabulate=False)


def ising_direct_chains():
    return ising_direct(64, 64)


def rbm():
    import ebmlang
    model = ebmlang.load(ROOT / "examples" / "rbm.ebm", N=64, M=100)
    return _gibbs(model, 100)


def tabular():
    """The direct kernel on a chain of 3-state variables whose factor reads a param indexed by
    the variables (theta[P0 + 3 * x[i] + x[i + 1]]), 8 chains."""
    import ebmlang
    model = ebmlang.compile("""
var x[i in 0..49999] : 1..3
param T[a in 1..3, b in 1..3] = normal(0, 1)
factor t[i in 0..49998] : T[x[i], x[i + 1]]
""")
    return _gibbs(model, 8, tabulate=False)


def potts_wide():
    """A ring of 20-state Potts spins: the domain is wider than MAX_UNROLL, so the tabulated
    part runs the hand-written `numba_kernels.tabled`."""
    import ebmlang
    model = ebmlang.compile("""
const N = 65536
var s[i in 0..N-1] : 0..19
param J = 0.7
factor ring[i in 0..N-1] : J * (s[i] == s[(i + 1) % N])
""")
    return _gibbs(model, 1, tabulate=True, layout="stream")


def energy():
    """The compiled log-potential (numba_energy) of 16 chains of the L = 256 Ising model."""
    import ebmlang
    from ebmlang.backends.numba_energy import CompiledEnergy
    from ebmlang.infer.sample import init_state
    model = ebmlang.load(ROOT / "examples" / "ising.ebm", L=256, beta=0.44)
    x = init_state(model, 16, np.random.default_rng(0), None)
    f = CompiledEnergy(model)
    out = []
    return (lambda: out.append(f(x))), (lambda: np.array(out))


def preact():
    """A sweep of the free-energy RBM's pre-activation kernel (backends/preact.py), 64 x 100,
    10 chains."""
    import ebmlang
    from ebmlang.backends.preact import PreactPart
    from ebmlang.infer.sample import init_state
    model = ebmlang.load(ROOT / "examples" / "rbm_free_energy.ebm", N=64, M=100)
    part, rng = PreactPart(model), np.random.default_rng(0)
    x = init_state(model, 10, rng, None)
    return (lambda: part.update(x, model.params.theta, rng)), (lambda: x)


def _grid(L: int, k: int, seed: int = 0):
    """Random log tables of an L x L grid with k states: {scope: table}, sizes."""
    rng = np.random.default_rng(seed)
    tables, sizes = {}, {v: k for v in range(L * L)}
    for i in range(L):
        for j in range(L):
            v = i * L + j
            tables[(v,)] = rng.normal(0, 0.3, k)
            for w in ((v + 1) if j + 1 < L else None, (v + L) if i + 1 < L else None):
                if w is not None:
                    tables[(v, w)] = rng.normal(0, 0.6, (k, k))
    return tables, sizes


def _bp(L: int, k: int, schedule: str, iters: int):
    """The kernel's run only (infer.bp.run from uniform messages; the graph built once)."""
    from ebmlang.infer import bp
    g = bp.build(*_grid(L, k))
    got = []

    def run():
        m = bp.initial_messages(g)
        got.append(np.append(m, bp.run(g, m, 0.5, iters, 0.0, schedule)))
    return run, lambda: np.array(got)


def bp_pairs():
    """Flooding BP on a binary 100 x 100 grid: the pairwise kernel (numba_bp_pairs)."""
    return _bp(100, 2, "parallel", 50)


def bp_flood():
    """Flooding BP on a 3-state 60 x 60 grid: the general kernel (numba_bp.flood)."""
    return _bp(60, 3, "parallel", 30)


def bp_triples():
    """Flooding BP on 3,000 random factors of three 3-state variables (numba_bp's `_any`, the
    table pass of any arity)."""
    from ebmlang.infer import bp
    rng = np.random.default_rng(0)
    tables = {tuple(sorted(rng.choice(1000, 3, replace=False))): rng.normal(0, 0.5, (3, 3, 3))
              for _ in range(3000)}
    g = bp.build(tables, {v: 3 for v in range(1000)})
    got = []

    def run():
        m = bp.initial_messages(g)
        got.append(np.append(m, bp.run(g, m, 0.5, 10, 0.0, "parallel")))
    return run, lambda: np.array(got)


def bp_residual():
    """Residual BP on a binary 60 x 60 grid (numba_bp.residual)."""
    return _bp(60, 2, "residual", 10)


def xgrad():
    """Ten leapfrog steps of the compiled HMC trajectory (backends/xgrad.py) on a Gaussian chain
    of 20,000 reals, 8 chains."""
    import ebmlang
    from ebmlang.backends.xgrad import CompiledXGradient, compiled_gradient
    model = ebmlang.load(ROOT / "examples" / "gmrf.ebm", N=20000)
    model.params["c"] = 0.49
    grad = compiled_gradient(model, {"x"})
    assert isinstance(grad, CompiledXGradient), grad.why_numpy
    rng = np.random.default_rng(0)
    y = rng.standard_normal((8, model.checked.n_state))
    cols = np.arange(model.checked.n_state)
    p = rng.standard_normal((8, len(cols)))
    g = grad.gradient(y, model.params.theta)[:, cols]
    free = np.ones_like(p)
    step = lambda: grad.trajectory(y, model.params.theta, p, g, 0.01, 10, cols, free)  # noqa
    return step, lambda: np.concatenate([y, p, g])


WORKLOADS = {f.__name__: f for f in (ising_direct, ising_direct_chains, rbm, tabular, potts_wide,
                                     energy, preact, bp_pairs, bp_flood, bp_triples,
                                     bp_residual, xgrad)}


def worker(name: str, calls: int, budget: float) -> None:
    """In the child: warm up, time, run `calls` calls from the fixed start, print the digest."""
    step, state = WORKLOADS[name]()
    step()
    t = time.perf_counter()
    step()
    once = max(time.perf_counter() - t, 1e-7)
    n = max(1, int(budget / once))
    times = []
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n):
            step()
        times.append((time.perf_counter() - t) / n)
    step, state = WORKLOADS[name]()
    for _ in range(calls):
        step()
    digest = hashlib.sha256(np.ascontiguousarray(state()).tobytes()).hexdigest()[:16]
    print(min(times), digest)


def run(root: Path, name: str, args) -> tuple[float, str]:
    cache = Path(args.cache) / hashlib.sha1(str(root).encode()).hexdigest()[:8]
    env = dict(os.environ, PYTHONPATH=str(root), EBMLANG_CACHE=str(cache))
    out = subprocess.run([sys.executable, str(HERE), "--worker", name, "--root", str(root),
                          "--calls", str(args.calls), "--budget", str(args.budget)],
                         env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{name} in {root}:\n{out.stderr}")
    seconds, digest = out.stdout.split()[-2:]
    return float(seconds), digest


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, help="the checkout to compare with")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", default=",".join(WORKLOADS))
    ap.add_argument("--calls", type=int, default=20, help="calls before the digest")
    ap.add_argument("--budget", type=float, default=0.5, help="seconds per timing")
    ap.add_argument("--cache", default="/tmp/ebm_before_after")
    ap.add_argument("--worker")
    ap.add_argument("--root", type=Path)
    args = ap.parse_args(argv)
    if args.worker:
        sys.path.insert(0, str(args.root))
        worker(args.worker, args.calls, args.budget)
        return
    print(f"Command: `python bench/{HERE.name} {' '.join(sys.argv[1:])}`; load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| workload | before ms / call | after ms / call | after / before | same results |")
    print("|---|---:|---:|---:|---|")
    for name in args.only.split(","):
        got = {"before": [], "after": []}
        digests = set()
        for _ in range(args.reps):
            for side, root in (("before", args.before), ("after", ROOT)):
                seconds, digest = run(root, name, args)
                got[side].append(seconds)
                digests.add((side, digest))
        med = {s: float(np.median(v)) for s, v in got.items()}
        same = "yes" if len({d for _, d in digests}) == 1 else f"NO {sorted(digests)}"
        print(f"| {name} | {med['before'] * 1e3:.3f} | {med['after'] * 1e3:.3f} | "
              f"{med['after'] / med['before']:.2f} | {same} |", flush=True)
    print(f"\nload average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

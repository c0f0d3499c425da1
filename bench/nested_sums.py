"""The free-energy RBM (examples/rbm_free_energy.ebm: softplus of a sum inside each hidden
unit's factor): Gibbs sweeps a second with pre-activations kept up to date (the default,
backends/preact.py) against the generic kernel that recomputes every energy difference from
scratch (`backend="numba"`: the per-instance compiled kernel where the term's arguments fit,
numpy otherwise, as `ebmlang check` says), and, for reference, the latent-h RBM
(examples/rbm.ebm, same N x M) on its fused block sweep. Also compile time (`ebmlang.load`,
private empty cache) and the first sample call (numba compilation). Medians of interleaved
reps, after one warm-up call each.

    python bench/nested_sums.py [--sizes 16x10,64x100,784x500] [--chains 10] [--reps 3]
    python bench/nested_sums.py --compile [--before DIR] [--sizes 784x500]

`--compile`: only the compile, cold (an empty compiled-model cache) then warm (the same cache
again), each `ebmlang.load` timed inside a fresh interpreter, and `model.conditionals()` plus
the learning statistics `ebmlang check` prints; with `--before DIR` (an export of another
commit, e.g. `git archive COMMIT | tar -x -C DIR`) the same loads of that checkout, side by
side, alternating.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))   # this checkout's ebmlang, not an installed one
os.environ["EBMLANG_CACHE"] = tempfile.mkdtemp(prefix="ebm_nested_")
import ebmlang  # noqa: E402


def load(name: str, n: int, m: int):
    t = time.perf_counter()
    model = ebmlang.load(ROOT / "examples" / name, N=n, M=m)
    return model, time.perf_counter() - t


def rate(model, sweeps: int, chains: int, backend: str = "auto") -> float:
    t = time.perf_counter()
    model.sample(draws=sweeps, chains=chains, burn_in=0, seed=0, keep=False, backend=backend)
    return sweeps / (time.perf_counter() - t)


CHILD = """
import sys, time
t, c = time.perf_counter(), time.process_time()
import ebmlang
assert ebmlang.__file__.startswith(sys.argv[5]), ebmlang.__file__
m = ebmlang.load(sys.argv[1], N=int(sys.argv[2]), M=int(sys.argv[3]))
out = [time.perf_counter() - t, time.process_time() - c]
if sys.argv[4] == "check":
    from ebmlang.middle.derivatives import sufficient_statistics
    t, c = time.perf_counter(), time.process_time()
    m.conditionals(), sufficient_statistics(m)
    out += [time.perf_counter() - t, time.process_time() - c]
print(*out)
"""


def _child(root: Path, cache: str, n: int, m: int, check: bool) -> list[float]:
    """(wall, CPU) seconds of the load, then of the conditionals and statistics if `check`:
    on a machine shared with other work, the CPU seconds are the fairer comparison."""
    import subprocess
    env = dict(os.environ, PYTHONPATH=str(root), EBMLANG_CACHE=cache)
    out = subprocess.run([sys.executable, "-c", CHILD, str(root / "examples" /
                          "rbm_free_energy.ebm"), str(n), str(m), "check" if check else "load",
                          str(root)],
                         env=env, cwd=cache, check=True, capture_output=True,
                         text=True).stdout.split()     # cwd: not this checkout's ebmlang
    return [float(v) for v in out]


def compile_times(args) -> None:
    roots = [("this checkout", ROOT, True)]
    if args.before:
        roots.insert(0, ("before", Path(args.before).resolve(), False))
    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; seconds as wall / CPU")
    print("| N x M | checkout | cold load | warm load | conditionals + statistics |")
    print("|---|---|---|---|---|")
    for size in args.sizes.split(","):
        n, m = map(int, size.split("x"))
        for label, root, check in roots:
            cache = tempfile.mkdtemp(prefix="ebm_nested_")
            cold = _child(root, cache, n, m, False)
            warm = _child(root, cache, n, m, check)
            conds = f"{warm[2]:.2f} / {warm[3]:.2f}" if check else "not run"
            print(f"| {n} x {m} | {label} | {cold[0]:.2f} / {cold[1]:.2f} | "
                  f"{warm[0]:.2f} / {warm[1]:.2f} | {conds} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="16x10,64x100")
    ap.add_argument("--chains", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="only the compile times")
    ap.add_argument("--before", metavar="DIR", help="with --compile: another checkout, side by side")
    args = ap.parse_args()
    if args.compile:
        return compile_times(args)
    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.chains} chains")
    print("| N x M | compile (s) | first sample call (s) | sweeps/s incremental | sweeps/s "
          "from scratch | incremental / from scratch | sweeps/s latent-h RBM (fused) |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        n, m = map(int, size.split("x"))
        free, tf = load("rbm_free_energy.ebm", n, m)
        latent, _ = load("rbm.ebm", n, m)
        sweeps = max(2, int(200000 / (n * m)))
        slow = max(1, int(2000 / (n * m)))
        t = time.perf_counter()
        rate(free, 1, args.chains)
        first = time.perf_counter() - t
        rate(free, 1, args.chains, "numba")
        rate(latent, 1, args.chains)
        ri, rs, rl = [], [], []
        for _ in range(args.reps):
            ri.append(rate(free, sweeps, args.chains))
            rs.append(rate(free, slow, args.chains, "numba"))
            rl.append(rate(latent, 5 * sweeps, args.chains))
        a, b, c = (statistics.median(r) for r in (ri, rs, rl))
        print(f"| {n} x {m} | {tf:.2f} | {first:.2f} | {a:,.1f} | {b:,.2f} | {a / b:,.0f}x | "
              f"{c:,.0f} |", flush=True)


if __name__ == "__main__":
    main()

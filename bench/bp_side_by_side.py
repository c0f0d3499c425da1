"""ebmlang's loopy BP and PGMax's side by side on the UAI 2014 grid networks, in one run:
time and max abs marginal error against the published .MAR; Markdown on stdout.

    python bench/bp_side_by_side.py                      # Grids_11..18, 200 iterations
    python bench/bp_side_by_side.py --iters 100 --names Grids_11 Grids_15

PGMax (pgmax 0.6.1) fails on current jax ("AttributeError: jax.lib.xla_bridge") and pulls in
tensorflow, so it gets a virtual environment of its own (--venv, default /tmp/pgmax_venv),
created on first use with pgmax==0.6.1 jax==0.4.30 jaxlib==0.4.30, and runs there in a
subprocess (bench/pgmax_bp_worker.py) on the very tables ebmlang uses
(`elimination.ground_factors`; one-variable tables as PGMax evidence, as ebmlang folds them).

Both run the same flooding schedule with the same log-space damping (PGMax: new = damping *
old + (1 - damping) * update on the log factor -> variable messages; ebmlang the same) for the
same number of iterations, no convergence test. Times: the first call (PGMax: trace + XLA
compile + run; ebmlang: numba's cached kernels loaded + run) and the median of --reps calls
after it. ebmlang's time is the whole `loopy_bp` call (flattening the tables, BP, marginals and
the Bethe log Z); PGMax's is its jitted run + beliefs + marginals (its factor graph is built
before the clock starts). ebmlang's residual schedule to convergence (tol 1e-6, at most 1000
iterations) is reported beside them, and so is ebmlang's general flooding kernel (the one
before the binary pairwise kernel, which the grids now take) on the same run.
"""

from __future__ import annotations

import argparse
import os
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
from ebmlang.infer import bp  # noqa: E402
from ebmlang.infer.bp import build, loopy_bp  # noqa: E402
from ebmlang.infer.elimination import ground_factors, sampled_sizes  # noqa: E402
from ebmlang.io.uai import read_marginals  # noqa: E402
from uai_suite import uai_dir  # noqa: E402

PINS = ["pgmax==0.6.1", "jax==0.4.30", "jaxlib==0.4.30"]


def pgmax_python(venv: Path) -> tuple[Path | None, str]:
    """The venv's python with pgmax importable (creating the venv if absent), or None and why."""
    py = venv / "bin" / "python"
    check = [str(py), "-c", "import pgmax, jax"]
    if py.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return py, "found"
    steps = [[sys.executable, "-m", "venv", str(venv)], [str(venv / "bin" / "pip"), "install",
                                                        "-q", *PINS]]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            return None, f"`{' '.join(cmd)}` failed: {done.stderr.strip()[-400:]}"
    done = subprocess.run(check, capture_output=True, text=True)
    if done.returncode:
        return None, f"pgmax does not import: {done.stderr.strip()[-400:]}"
    return py, "created"


def network(name: str):
    """(tables, sizes, {var id: published marginal}) of a UAI network on its evidence."""
    path = uai_dir() / f"{name}.uai"
    model = ebmlang.load(path)
    tables, _ = ground_factors(model, np.zeros((1, model.checked.n_state)))
    index = dict(zip(model.ground_names(), model.state_ids()))
    mar = read_marginals(str(path) + ".MAR")
    exact = {int(index[n]): mar[v] for v, n in enumerate(model.uai_names) if n is not None}
    return tables, sampled_sizes(model), exact


def handover(tables, sizes, dst: Path) -> list[int]:
    """Write the tables for the worker (rows of sorted var ids); the var id of each row."""
    g = build(tables, sizes)
    if len(set(g.sizes.tolist())) != 1:
        raise SystemExit("the worker takes networks whose variables share one domain size")
    row = {v: r for r, v in enumerate(g.ids)}
    groups: dict[int, tuple[list, list]] = {}
    for scope, table in tables.items():
        if len(scope) > 1:
            scopes, logp = groups.setdefault(len(scope), ([], []))
            scopes.append([row[v] for v in scope])
            logp.append(np.ascontiguousarray(table).ravel())
    arrays = {"unary": g.unary}
    for k, (_, (scopes, logp)) in enumerate(sorted(groups.items())):
        arrays[f"scopes_{k}"] = np.array(scopes)
        arrays[f"logp_{k}"] = np.array(logp)
    np.savez(dst, **arrays)
    return g.ids


def error(marginals: dict, exact: dict) -> float:
    return max(float(np.abs(marginals[v] - p).max()) for v, p in exact.items())


def ebmlang_runs(tables, sizes, iters, damping, reps, general=False):
    """(first seconds, median seconds, result) of the fixed-iteration flooding run; `general`:
    with the binary pairwise kernel switched off (numba_bp.flood, the kernel before it)."""
    if general:
        keep = bp.pairwise
        bp.pairwise = lambda g: None
        try:
            return ebmlang_runs(tables, sizes, iters, damping, reps)
        finally:
            bp.pairwise = keep
    kw = dict(damping=damping, max_iter=iters, tol=-1.0, schedule="parallel")
    t = time.perf_counter()
    result = loopy_bp(tables, sizes, **kw)
    first = time.perf_counter() - t
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        result = loopy_bp(tables, sizes, **kw)
        times.append(time.perf_counter() - t)
    return first, float(np.median(times)), result


def pgmax_run(py, tables, sizes, iters, damping, reps):
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        ids = handover(tables, sizes, src)
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        done = subprocess.run([str(py), str(ROOT / "bench" / "pgmax_bp_worker.py"), str(src),
                               str(dst), str(iters), str(damping), str(reps)],
                              capture_output=True, text=True, env=env)
        if done.returncode:
            raise RuntimeError(done.stderr.strip()[-600:])
        out = np.load(dst)
        marg = {v: np.asarray(out["marginals"][r], float) for r, v in enumerate(ids)}
        return float(out["first"]), float(np.median(out["times"])), float(out["build"]), marg


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--names", nargs="*", default=[f"Grids_{i}" for i in range(11, 19)])
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--damping", type=float, default=0.5)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--venv", type=Path, default=Path("/tmp/pgmax_venv"))
    args = ap.parse_args(argv)
    py, how = pgmax_python(args.venv)
    print(f"PGMax venv {args.venv}: {how}" if py else f"PGMax unavailable: {how}")
    print(f"\n{args.iters} flooding iterations, damping {args.damping}, median of {args.reps}; "
          f"load average {os.getloadavg()[0]:.2f}\n")
    print("| network | vars | ebmlang first / median s | PGMax first / median s | ratio "
          "ebmlang/PGMax | err ebmlang | err PGMax | max diff | general kernel median s "
          "(its ratio to the pairwise one) | residual BP: iters, converged, s, err |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.names:
        tables, sizes, exact = network(name)
        _, gmed, _ = ebmlang_runs(tables, sizes, args.iters, args.damping, args.reps, True)
        first, med, res = ebmlang_runs(tables, sizes, args.iters, args.damping, args.reps)
        t = time.perf_counter()
        rbp = loopy_bp(tables, sizes, damping=args.damping, schedule="residual")
        t_rbp = time.perf_counter() - t
        cells = ["-"] * 4
        if py:
            try:
                pf, pm, _, pmarg = pgmax_run(py, tables, sizes, args.iters, args.damping,
                                             args.reps)
                diff = max(float(np.abs(res.marginals[v] - pmarg[v]).max()) for v in exact)
                cells = [f"{pf:.3f} / {pm:.4f}", f"{med / pm:.2f}", f"{error(pmarg, exact):.4f}",
                         f"{diff:.1e}"]
            except RuntimeError as e:
                cells[0] = f"failed: {e}"
        print(f"| {name} | {len(sizes)} | {first:.3f} / {med:.4f} | {cells[0]} | {cells[1]} | "
              f"{error(res.marginals, exact):.4f} | {cells[2]} | {cells[3]} | "
              f"{gmed:.4f} ({gmed / med:.1f}x) | "
              f"{rbp.iterations}, {rbp.converged}, {t_rbp:.3f}, {error(rbp.marginals, exact):.4f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

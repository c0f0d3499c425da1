"""The UAI 2014 peer suite: every network of $EBMLANG_UAI_DIR (default ../shared/uai beside
the repository) solved by ebmlang, against the published answers. Prints a markdown table (size, treewidth, method, error, time) for
bench/RESULTS.md.

    python bench/uai_suite.py > /tmp/uai.md
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's ebmlang
import ebmlang  # noqa: E402
from ebmlang.infer.diagnostics import split_rhat
from ebmlang.infer.logz import logz
from ebmlang.infer.map import map_estimate
from ebmlang.io.uai import read_marginals, read_pr, sampled_marginals

REPO = Path(__file__).resolve().parent.parent


def uai_dir() -> Path:
    """Where the UAI 2014 networks are: $EBMLANG_UAI_DIR, else ../shared/uai beside the
    repository (relative to its root). The tests look in the same place."""
    import os
    given = os.environ.get("EBMLANG_UAI_DIR")
    return Path(given).expanduser() if given else REPO.parent / "shared" / "uai"


SHARED = uai_dir()


def reference_map_score(model, path: Path) -> float | None:
    """log potential of the published MAP assignment, or None when none is given."""
    if not path.exists():
        return None
    ref = np.array(path.read_text().split()[2:], int)
    x = np.zeros((1, model.checked.n_state))
    index = dict(zip(model.ground_names(), model.state_ids()))
    for v, name in enumerate(model.uai_names):
        if name is not None:
            x[0, index[name]] = ref[v]
    return float(model.log_potential(x)[0])


def gibbs_check(model, path: Path, draws: int = 1000, seed: int = 0):
    """(max marginal error against .MAR, worst per-variable R-hat (inf when some variable
    never moves in a chain), seconds)."""
    start = time.perf_counter()
    samples = model.sample(draws=draws, chains=4, seed=seed, backend="numpy")
    ref = read_marginals(str(path) + ".MAR")
    got = sampled_marginals(model, samples)
    err = max(float(np.abs(g - r).max()) for g, r in zip(got, ref) if g is not None)
    worst = 1.0
    for k in range(samples.states.shape[2]):
        x = samples.states[:, :, k]
        if np.all(x == x[0, 0]):
            continue  # never moved in any chain: nothing to compare (no evidence of mixing)
        r = split_rhat(x)
        worst = max(worst, math.inf if math.isnan(r) else r)
    return err, worst, time.perf_counter() - start


def row(name: str) -> str:
    path = SHARED / f"{name}.uai"
    model = ebmlang.load(path)
    start = time.perf_counter()
    z = logz(model, method="auto", seed=0)
    tz = time.perf_counter() - start
    pr = read_pr(str(path) + ".PR")
    dz = z.value / math.log(10) - pr
    zse = f" +- {z.se / math.log(10):.2g}" if z.se is not None else ""
    start = time.perf_counter()
    ref = reference_map_score(model, Path(str(path) + ".MAP"))
    if ref is not None:
        res = map_estimate(model, seed=0)
        gap = float(res.log_potential[0]) - ref
        map_text = f"{res.method}, gap {gap:+.2g} ({time.perf_counter() - start:.1f} s)"
    else:
        map_text = "no .MAP"
    err, rhat, tg = gibbs_check(model, path)
    mixed = "mixes" if rhat <= 1.01 else f"R-hat {rhat:.3g}: not mixing"
    width = z.width if z.width is not None else "-"
    return (f"| {name} | {model.checked.n_state} | {width} | {z.method} | {dz:+.1e}{zse} "
            f"({tz:.1f} s) | {map_text} | {err:.3f}, {mixed} ({tg:.1f} s) |")


def main(names: list[str]) -> None:
    print("| problem | free vars | width | log Z by | log10 Z error vs .PR | MAP vs .MAP score "
          "| Gibbs max marginal error vs .MAR |")
    print("|---|---:|---:|---|---|---|---|")
    for name in names or sorted(p.name[:-4] for p in SHARED.glob("*.uai")):
        print(row(name), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

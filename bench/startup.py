"""Start-up time of the command line, side by side for two checkouts (before/after a change).

    python bench/startup.py --before /path/to/old/checkout [--reps 7]

Times, as medians of interleaved repetitions, `import ebmlang`, `ebmlang --help`,
`ebmlang --version`, and `ebmlang check examples/ising.ebm` warm (parser cache and bytecode
in place) and cold (an empty EBMLANG_CACHE and no bytecode of ebmlang's own; the libraries'
bytecode stays, as after `pip install`). Each checkout runs from its own source tree.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
CASES = {
    "import ebmlang": ["-c", "import ebmlang"],
    "ebmlang --help": ["-m", "ebmlang", "--help"],
    "ebmlang --version": ["-m", "ebmlang", "--version"],
    "check, warm": ["-m", "ebmlang", "check", "examples/ising.ebm"],
    "check, cold": ["-m", "ebmlang", "check", "examples/ising.ebm"],
}


def run(repo: Path, case: str, cache: str) -> float:
    env = dict(os.environ, PYTHONPATH=str(repo), EBMLANG_CACHE=cache)
    if case.endswith("cold"):
        for d in (repo / "ebmlang").rglob("__pycache__"):
            shutil.rmtree(d, ignore_errors=True)
        env["EBMLANG_CACHE"] = tempfile.mkdtemp()
    t = time.perf_counter()
    subprocess.run([sys.executable, *CASES[case]], cwd=repo, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="the checkout to compare with")
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    repos = {"before": args.before.resolve(), "after": HERE}
    cache = tempfile.mkdtemp()
    for repo in repos.values():                      # fill the warm caches once
        run(repo, "check, warm", cache)
    times = {(k, c): [] for k in repos for c in CASES}
    for _ in range(args.reps):
        for case in CASES:
            for name, repo in repos.items():
                times[name, case].append(run(repo, case, cache))
    print(f"{'':20} {'before':>8} {'after':>8} {'after/before':>13}")
    for case in CASES:
        b, a = (statistics.median(times[k, case]) for k in ("before", "after"))
        print(f"{case:20} {b:8.3f} {a:8.3f} {a / b:13.2f}")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import numpy, numba"], check=True)
    print(f"(python -c 'import numpy, numba': {time.perf_counter() - t:.3f} s)")


if __name__ == "__main__":
    main()

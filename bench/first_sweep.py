"""Time to the first sweep of `ebmlang sample` and `ebmlang fit`, cold and warm, side by side.

    python bench/first_sweep.py [--before /path/to/old/checkout] [--reps 5]

Each run is a fresh `python -m ebmlang ...` process, timed from its launch to the moment its
first sweep starts (the sampler's loop, or the first positive phase of the fit, or the first
update of the in-place binary RBM PCD), where the child
exits. Cases: "cold" (an empty EBMLANG_CACHE: parser tables, numba's code and compiled models
all built), "no model cache" (EBMLANG_MODEL_CACHE=off, the other caches warm: what every run
cost before the compiled-model cache) and "warm" (every cache filled). It also reports whether
sympy, networkx or lark had been imported by then, and the time of `python -c 'import numpy,
numba'`. Medians of interleaved repetitions.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
COMMANDS = {
    "sample ising": ["sample", "examples/ising.ebm", "--no-progress"],
    "fit rbm, 1 epoch": ["fit", "examples/rbm.ebm", "examples/data/digits.csv", "--epochs", "1"],
}
MODES = ("cold", "no model cache", "warm")
HEAVY = ("sympy", "networkx", "lark")

# The child: run the CLI, stop at the first sweep, write the time and the heavy imports.
CHILD = r"""
import importlib.abc, json, os, sys, time, runpy
OUT = os.environ["FIRST_SWEEP_OUT"]
def stop(*a, **k):
    with open(OUT, "w") as f:
        json.dump({"t": time.time(), "heavy": [m for m in %r if m in sys.modules]}, f)
    os._exit(0)
PATCH = {"ebmlang.infer.sample": lambda m: setattr(m, "check_proper", stop),
         "ebmlang.learn.fit": lambda m: setattr(m._Phases, "positive", stop),
         "ebmlang.backends.fused_pcd": lambda m: setattr(m.BipartitePCD, "gap", stop)}
class Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in PATCH:
            return None
        sys.meta_path.remove(self)
        import importlib.util
        spec = importlib.util.find_spec(name)
        sys.meta_path.insert(0, self)
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            PATCH[name](module)
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, Hook())
sys.argv = ["ebmlang"] + sys.argv[1:]
runpy.run_module("ebmlang", run_name="__main__")
""" % (HEAVY,)


def run(repo: Path, command: str, mode: str, cache: str) -> tuple[float, list[str]]:
    env = dict(os.environ, PYTHONPATH=str(repo), EBMLANG_CACHE=cache)
    env.pop("EBMLANG_MODEL_CACHE", None)
    if mode == "cold":
        env["EBMLANG_CACHE"] = tempfile.mkdtemp()
    elif mode == "no model cache":
        env["EBMLANG_MODEL_CACHE"] = "off"
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        env["FIRST_SWEEP_OUT"] = out.name
        t = time.time()
        subprocess.run([sys.executable, "-c", CHILD, *COMMANDS[command]], cwd=repo, env=env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        text = Path(out.name).read_text()
        if not text:
            sys.exit(f"{command} ({mode}) ran to its end without reaching a patched first "
                     "sweep: the CHILD's PATCH table misses the path it took")
        got = json.loads(text)
    if mode == "cold":
        shutil.rmtree(env["EBMLANG_CACHE"], ignore_errors=True)
    return got["t"] - t, got["heavy"]


def import_time() -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import numpy, numba"], check=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, help="a checkout to compare with")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    repos = {"after": HERE} if args.before is None else \
        {"before": args.before.resolve(), "after": HERE}
    caches = {name: tempfile.mkdtemp() for name in repos}
    for name, repo in repos.items():              # fill the warm caches once
        for command in COMMANDS:
            run(repo, command, "warm", caches[name])
    times = {}
    heavy = {}
    imports = []
    for _ in range(args.reps):
        imports.append(import_time())
        for command in COMMANDS:
            for mode in MODES:
                for name, repo in repos.items():
                    t, h = run(repo, command, mode, caches[name])
                    times.setdefault((name, command, mode), []).append(t)
                    heavy[name, command, mode] = h
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; reps {args.reps}")
    print(f"| to the first sweep, s (median) | {' | '.join(repos)} | imported by then ({name}) |")
    print("|---|" + "---:|" * len(repos) + "---|")
    for command in COMMANDS:
        for mode in MODES:
            cells = " | ".join(f"{statistics.median(times[n, command, mode]):.3f}" for n in repos)
            h = ", ".join(heavy[name, command, mode]) or "none of " + ", ".join(HEAVY)
            print(f"| `ebmlang {' '.join(COMMANDS[command])}`, {mode} | {cells} | {h} |")
    print(f"| `python -c 'import numpy, numba'` | {statistics.median(imports):.3f} | | |")
    for c in caches.values():
        shutil.rmtree(c, ignore_errors=True)


if __name__ == "__main__":
    main()

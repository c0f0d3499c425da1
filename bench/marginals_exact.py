"""Exact marginals on the UAI 2014 networks: ebmlang's clique tree (`model.marginals`,
method auto) against the published .MAR files, and pgmpy's VariableElimination.query for
every variable (the evidence of the .evid file given to both), side by side in one run. pgmpy
runs in a subprocess killed after --timeout seconds (wall clock), its model built from
ebmlang's UAI reader (pgmpy's UAIReader fails on Grids_12 and ObjectDetection_11). Times are
wall clock and CPU seconds (the ratio is of CPU seconds: on a shared machine a niced run gets a
varying share of a core); networks go by family, smallest first, and a family's larger
networks are skipped once pgmpy times out on a smaller one (--keep-going runs them). Prints a
markdown table for bench/RESULTS.md.

    python bench/marginals_exact.py [--timeout 600] [--cpu-limit 600] [--only Grids_11 ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's ebmlang
sys.path.insert(0, str(Path(__file__).resolve().parent))
import ebmlang  # noqa: E402
from ebmlang.io.marginals_out import mar_rows  # noqa: E402
from ebmlang.io.uai import read_evidence, read_marginals, read_uai  # noqa: E402
from uai_suite import SHARED  # noqa: E402

PGMPY = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[3])                 # this checkout, for ebmlang's UAI reader
from ebmlang.io.uai import read_uai
from pgmpy.factors.discrete import DiscreteFactor
from pgmpy.inference import VariableElimination
from pgmpy.models import DiscreteMarkovNetwork
path, evidence = sys.argv[1], json.loads(sys.argv[2])
net = read_uai(path)                            # pgmpy's UAIReader fails on some networks
t0 = time.perf_counter()
model = DiscreteMarkovNetwork()
model.add_nodes_from(f"var_{i}" for i in range(len(net.cards)))
for scope in net.scopes:
    model.add_edges_from((f"var_{a}", f"var_{b}") for k, a in enumerate(scope)
                         for b in scope[k + 1:])
model.add_factors(*[DiscreteFactor([f"var_{v}" for v in scope], [net.cards[v] for v in scope],
                                   table.ravel()) for scope, table in zip(net.scopes, net.tables)
                    if scope])
t, cpu = time.perf_counter(), time.process_time()
infer = VariableElimination(model)
ev = {f"var_{k}": int(v) for k, v in evidence.items()}
free = [v for v in model.nodes() if v not in ev]
out = {}
for v in free:
    q = infer.query([v], evidence=ev, show_progress=False)
    values = np.asarray(q.values, float)
    out[v] = (values / values.sum()).tolist()    # pgmpy 1.1.2 returns them unnormalized
print(json.dumps({"seconds": time.perf_counter() - t, "cpu": time.process_time() - cpu,
                  "build": t - t0, "marginals": out}))
"""


def ebmlang_run(path: Path):
    model = ebmlang.load(path)
    t, cpu = time.perf_counter(), time.process_time()
    res = model.marginals()
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    got = mar_rows(model, res)
    ref = read_marginals(str(path) + ".MAR")
    err = max(float(abs(a - b).max()) for a, b in zip(got, ref))
    return res, (seconds, cpu), err, got


def pgmpy_run(path: Path, timeout: float, got, cpu_limit: float | None = None):
    """pgmpy's query time (after building its model), the table cell, and the largest
    absolute difference between its marginals and ebmlang's (`got`, or None)."""
    ev = path.with_name(path.name + ".evid")
    evidence = read_evidence(str(ev), read_uai(str(path)).cards) if ev.exists() else {}
    repo = str(Path(__file__).resolve().parent.parent)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        out = subprocess.run([sys.executable, "-c", PGMPY, str(path), json.dumps(evidence), repo],
                             capture_output=True, text=True, timeout=timeout,
                             preexec_fn=None if cpu_limit is None else lambda: resource.setrlimit(
                                 resource.RLIMIT_CPU, (int(cpu_limit), int(cpu_limit) + 5)))
    except subprocess.TimeoutExpired:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        return None, f"> {timeout:g} s wall (killed after {used:.0f} s CPU)", None
    if out.returncode == -signal.SIGXCPU or out.returncode == -signal.SIGKILL:
        return None, f"> {cpu_limit:g} s CPU (killed)", None
    if out.returncode != 0:
        return None, "failed: " + (out.stderr.strip().splitlines() or ["?"])[-1][:60], None
    doc = json.loads(out.stdout)
    ref = read_marginals(str(path) + ".MAR")
    err = max(max(abs(a - b) for a, b in zip(p, ref[int(v.split("_")[1])]))
              for v, p in doc["marginals"].items())
    diff = None if got is None else max(
        float(abs(np.asarray(p) - got[int(v.split("_")[1])]).max())
        for v, p in doc["marginals"].items())
    return doc["cpu"], (f"{doc['seconds']:.2f} s, {doc['cpu']:.2f} s CPU (max error "
                        f"{err:.1e})"), diff


def ordered(names: list[str]) -> list[str]:
    """By family, then by size (table entries), so a family's timeout is met on its smallest."""
    def size(name):
        return sum(t.size for t in read_uai(str(SHARED / f"{name}.uai")).tables)
    return sorted(names, key=lambda n: (n.rsplit("_", 1)[0], size(n)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=600.0, help="wall-clock limit for pgmpy")
    ap.add_argument("--cpu-limit", type=float, help="CPU-seconds limit for pgmpy (fair on a "
                    "loaded machine, where a niced run gets a small share of a core)")
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--no-pgmpy", action="store_true")
    ap.add_argument("--keep-going", action="store_true",
                    help="run a network even when a smaller one of its family timed out")
    args = ap.parse_args()
    names = ordered(args.only or [p.name[:-4] for p in SHARED.glob("*.uai")])
    print("| network | method | ebmlang time (CPU) | max abs error vs .MAR | pgmpy VE time | "
          "pgmpy / ebmlang (CPU) | max abs diff ebmlang vs pgmpy |")
    print("|---|---|---|---|---|---|---|")
    timed_out: dict[str, str] = {}
    for name in names:
        family = name.rsplit("_", 1)[0]
        if family in timed_out and not args.keep_going:
            print(f"| {name} | - | not run | - | skipped: the smaller {timed_out[family]} "
                  f"timed out | - | - |", flush=True)
            continue
        path = SHARED / f"{name}.uai"
        got = None
        try:
            res, (wall, seconds), err, got = ebmlang_run(path)
            ours, how = f"{wall:.2f} s ({seconds:.2f} s)", res.method
        except Exception as exc:  # noqa: BLE001 - a row of the table, not a crash
            seconds, ours, how, err = None, "-", f"failed: {exc}"[:70], float("nan")
        if args.no_pgmpy:
            theirs, text, diff = None, "not run", None
        else:
            theirs, text, diff = pgmpy_run(path, args.timeout, got, args.cpu_limit)
            if text.startswith(">"):
                timed_out[family] = name
        ratio = f"{theirs / seconds:.1f}x" if theirs and seconds else "-"
        delta = "-" if diff is None else f"{diff:.1e}"
        print(f"| {name} | {how} | {ours} | {err:.1e} | {text} | {ratio} | {delta} |",
              flush=True)


if __name__ == "__main__":
    main()

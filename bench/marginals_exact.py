"""Exact marginals on the UAI 2014 networks: ebmlang's clique tree (`model.marginals`,
method auto) against the published .MAR files, and pgmpy's VariableElimination.query for
every variable (the evidence of the .evid file given to both), side by side in one run. pgmpy
runs in a subprocess killed after --timeout seconds. Prints a markdown table for
bench/RESULTS.md.

    python bench/marginals_exact.py [--timeout 600] [--only Grids_11 Promedus_24 ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's ebmlang
sys.path.insert(0, str(Path(__file__).resolve().parent))
import ebmlang  # noqa: E402
from ebmlang.io.marginals_out import mar_rows  # noqa: E402
from ebmlang.io.uai import read_evidence, read_marginals, read_uai  # noqa: E402
from uai_suite import SHARED  # noqa: E402

PGMPY = r"""
import json, sys, time
import numpy as np
from pgmpy.readwrite import UAIReader
from pgmpy.inference import VariableElimination
path, evidence = sys.argv[1], json.loads(sys.argv[2])
model = UAIReader(path).get_model()
t = time.perf_counter()
infer = VariableElimination(model)
names = {v: v for v in model.nodes()}
ev = {f"var_{k}": int(v) for k, v in evidence.items()}
free = [v for v in model.nodes() if v not in ev]
out = {}
for v in free:
    q = infer.query([v], evidence=ev, show_progress=False)
    values = np.asarray(q.values, float)
    out[v] = (values / values.sum()).tolist()    # pgmpy 1.1.2 returns them unnormalized
print(json.dumps({"seconds": time.perf_counter() - t, "marginals": out}))
"""


def ebmlang_run(path: Path):
    model = ebmlang.load(path)
    t = time.perf_counter()
    res = model.marginals()
    seconds = time.perf_counter() - t
    got = mar_rows(model, res)
    ref = read_marginals(str(path) + ".MAR")
    err = max(float(abs(a - b).max()) for a, b in zip(got, ref))
    return res, seconds, err


def pgmpy_run(path: Path, timeout: float):
    ev = path.with_name(path.name + ".evid")
    evidence = read_evidence(str(ev), read_uai(str(path)).cards) if ev.exists() else {}
    try:
        out = subprocess.run([sys.executable, "-c", PGMPY, str(path), json.dumps(evidence)],
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"> {timeout:g} s (killed)"
    if out.returncode != 0:
        return None, "failed: " + (out.stderr.strip().splitlines() or ["?"])[-1][:60]
    doc = json.loads(out.stdout)
    ref = read_marginals(str(path) + ".MAR")
    err = max(max(abs(a - b) for a, b in zip(p, ref[int(v.split("_")[1])]))
              for v, p in doc["marginals"].items())
    return doc["seconds"], f"{doc['seconds']:.2f} s (max error {err:.1e})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--no-pgmpy", action="store_true")
    args = ap.parse_args()
    names = args.only or sorted(p.name[:-4] for p in SHARED.glob("*.uai"))
    print("| network | method | ebmlang time | max abs error vs .MAR | pgmpy VE time | "
          "pgmpy / ebmlang |")
    print("|---|---|---|---|---|---|")
    for name in names:
        path = SHARED / f"{name}.uai"
        try:
            res, seconds, err = ebmlang_run(path)
            ours, how = f"{seconds:.2f} s", res.method
        except Exception as exc:  # noqa: BLE001 - a row of the table, not a crash
            seconds, ours, how, err = None, "-", f"failed: {exc}"[:70], float("nan")
        theirs, text = (None, "not run") if args.no_pgmpy else pgmpy_run(path, args.timeout)
        ratio = f"{theirs / seconds:.1f}x" if theirs and seconds else "-"
        print(f"| {name} | {how} | {ours} | {err:.1e} | {text} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()

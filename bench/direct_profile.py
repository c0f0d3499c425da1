"""Where the time of the direct (untabulated) Gibbs kernel goes, on the L = 256 Ising model,
one chain: the generated module timed as it is and with one stage cut out at a time (the
gather of the neighbours' values into buf, the call of local_s, the draw), each variant a
module of its own (its draws are wrong; only the time matters). Markdown on stdout.

    python bench/direct_profile.py [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("EBMLANG_CACHE", tempfile.mkdtemp(prefix="ebm_direct_profile_"))
import ebmlang  # noqa: E402
from ebmlang.backends import numba_backend  # noqa: E402
from ebmlang.backends.lanes import seed_words  # noqa: E402
from ebmlang.backends.numba_codegen import generate_numba  # noqa: E402
from ebmlang.infer.sample import init_state  # noqa: E402

GATHER = re.compile(r"\n( +buf\[e - lo\] = x\[c, [^\n]*)")
LOCAL = re.compile(r"\n( {12}local_s\(a, buf.*?\))\n", re.S)
DRAW = re.compile(r"\n( {12}x\[c, [^\n]*_draw\(logits, u\)[^\n]*)")


def variants(src: str) -> dict[str, str]:
    def cut(pattern, text, by):
        found = pattern.search(text)
        assert found, pattern.pattern
        return text.replace(found.group(1), by)
    no_draw = "            x[c, ids[a]] = values[int(u < 0.5)]"
    return {"as generated": src,
            "no gather (buf stale)": cut(GATHER, src, "                pass"),
            "no local_s (logits stale)": cut(LOCAL, src, "            pass"),
            "no _draw (u < 0.5)": cut(DRAW, src, no_draw),
            "neither local_s nor _draw": cut(DRAW, cut(LOCAL, src, "            pass"), no_draw)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    model = ebmlang.load(ROOT / "examples" / "ising.ebm", L=256, beta=0.44)
    parts = [p for block in numba_backend.compiled_parts(model, tabulate=False) for p in block]
    rng = np.random.default_rng(0)
    x, theta = init_state(model, 1, rng, None), model.params.theta
    sweeps = {}
    for name, text in variants(generate_numba(model)).items():
        mod = numba_backend.load_generated(text)
        sweeps[name] = [(getattr(mod, p.kernel), p._args) for p in parts]

    def sweep(calls):
        for fn, fargs in calls:
            fn(x, theta, seed_words(rng, 1), *fargs)
    for calls in sweeps.values():
        sweep(calls)                                          # compile
    got = {name: [] for name in sweeps}
    for _ in range(args.reps):
        for name, calls in sweeps.items():
            t = time.perf_counter()
            for _ in range(30):
                sweep(calls)
            got[name].append((time.perf_counter() - t) / 30)
    print(f"load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}\n")
    print("| variant | ms / sweep | M updates / s | of the whole |\n|---|---:|---:|---:|")
    whole = min(got["as generated"])
    for name, v in got.items():
        print(f"| {name} | {min(v) * 1e3:.2f} | {x.shape[1] / min(v) / 1e6:.1f} | "
              f"{min(v) / whole:.2f} |")


if __name__ == "__main__":
    main()

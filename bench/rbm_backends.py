"""The RBM fit of bench/rbm_digits.py (a) at matched settings, by backend: `auto` (the fused
update), `numpy` (the generic kernels) and `numba` (compiled Gibbs sweeps). CPU seconds per
epoch, median of interleaved repetitions.

    python bench/rbm_backends.py [--epochs 3] [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))   # this checkout's ebmlang, not an installed one
import ebmlang  # noqa: E402

MATCHED = dict(method="pcd", optimizer="sgd", lr=0.06, momentum=0.0, schedule="constant",
               batch_size=10, chains=10, seed=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    data = ROOT / "examples" / "data" / "digits.csv"
    times: dict[str, list[float]] = {}
    for _ in range(args.reps):
        for backend in ("auto", "numpy", "numba"):
            model = ebmlang.load(ROOT / "examples" / "rbm.ebm")
            t = time.process_time()
            model.fit(str(data), backend=backend, epochs=args.epochs, **MATCHED)
            times.setdefault(backend, []).append((time.process_time() - t) / args.epochs)
    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{args.epochs} epochs x {args.reps} reps\n")
    print("| backend | CPU s / epoch (median) | per rep |\n|---|---:|---|")
    for backend, v in times.items():
        print(f"| {backend} | {sorted(v)[len(v) // 2]:.3f} | {', '.join(f'{t:.3f}' for t in v)} |")


if __name__ == "__main__":
    main()

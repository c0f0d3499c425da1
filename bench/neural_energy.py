"""The 2-D neural energy (examples/ring8.ebm: 32 tanh units plus a fixed Gaussian confinement)
fitted to 8 Gaussians on a circle (examples/ring8.csv, written by examples/make_ring8.py) by
each Z-free learner, side by side in one run (Markdown on stdout): KL(data || model) in nats,
computed by quadrature on a 241 x 241 grid over [-6, 6]^2 (the model's log Z by the same
grid), and the fit's wall time.

    python bench/neural_energy.py [--seed S]

Learners: `--method sm` (score matching; also with 5x the iterations, an L2 penalty, and
denoising at three noise levels), `--method nce` (noise-contrastive estimation) and
`--method pcd --sampler langevin` (short-run Langevin chains from a replay buffer; its
settings in LANGEVIN, `--langevin-epochs` epochs). Reference row: the data's own Gaussian
(the best single Gaussian), which any useful fit must beat.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

import ebmlang  # noqa: E402
from make_ring8 import ring8_density  # noqa: E402

BOX, STEPS = 6.0, 241
# (row label, method, extra fit options); the sm variants of issue 17 item 3
LEARNERS = [
    ("sm", "sm", {}),
    ("sm, 5x the iterations", "sm", {"epochs": "5x"}),
    ("sm, --weight-decay 0.01", "sm", {"weight_decay": 0.01}),
    ("sm, --noise 0.1 (denoising)", "sm", {"noise": 0.1}),
    ("sm, --noise 0.2 (denoising)", "sm", {"noise": 0.2}),
    ("sm, --noise 0.3 (denoising)", "sm", {"noise": 0.3}),
    ("nce", "nce", {}),
]


def grid():
    g = np.linspace(-BOX, BOX, STEPS)
    xx, yy = np.meshgrid(g, g, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], axis=1), (g[1] - g[0]) ** 2


def kl(logq_unnorm: np.ndarray) -> float:
    """KL(p || q) on the grid, q = exp(logq_unnorm) / Z with Z by the same quadrature."""
    pts, area = grid()
    p = ring8_density(pts)
    logz = np.log(np.exp(logq_unnorm - logq_unnorm.max()).sum() * area) + logq_unnorm.max()
    keep = p > 1e-300
    return float((p[keep] * (np.log(p[keep]) - (logq_unnorm[keep] - logz))).sum() * area)


LANGEVIN = dict(batch_size=200, lr=0.02, step_size=0.07, langevin_steps=40, chains=4000)


def langevin_row(data: str, pts: np.ndarray, seed: int, epochs: int):
    """Langevin PCD (learn/langevin.py) on ring8: (name, KL, seconds)."""
    model = ebmlang.load(str(ROOT / "examples" / "ring8.ebm"))
    t = time.perf_counter()
    model.fit(data, method="pcd", sampler="langevin", epochs=epochs, seed=seed, **LANGEVIN)
    name = "pcd --sampler langevin (" + ", ".join(f"{k} {v}" for k, v in LANGEVIN.items()) + \
        f", {epochs} epochs)"
    return name, kl(model.log_potential(pts)), time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iterations", type=int, default=100, help="L-BFGS iterations at most")
    ap.add_argument("--langevin-epochs", type=int, default=100)
    args = ap.parse_args()
    data = str(ROOT / "examples" / "ring8.csv")
    pts, _ = grid()
    rows = []
    x = np.loadtxt(data, delimiter=",", skiprows=1)
    mean, cov = x.mean(axis=0), np.cov(x.T)
    d = np.linalg.solve(np.linalg.cholesky(cov), (pts - mean).T)
    rows.append(("data's Gaussian (reference)", kl(-0.5 * (d * d).sum(axis=0)), 0.0))
    epochs = max(1, args.iterations // 25)
    for label, method, extra in LEARNERS:
        model = ebmlang.load(str(ROOT / "examples" / "ring8.ebm"))
        t = time.perf_counter()
        extra = dict(extra)
        e = extra.pop("epochs", epochs)
        model.fit(data, method=method, epochs=5 * epochs if e == "5x" else e, seed=args.seed,
                  **extra)
        dt = time.perf_counter() - t
        rows.append((label, kl(model.log_potential(pts)), dt))
    rows.append(langevin_row(data, pts, args.seed, args.langevin_epochs))
    print(f"ring8: 4,000 rows, 32 tanh units, seed {args.seed}\n")
    print("| learner | KL(data \\|\\| model), nats | fit seconds |")
    print("|---|---|---|")
    for name, k, dt in rows:
        print(f"| {name} | {k:.3f} | {dt:.1f} |")


if __name__ == "__main__":
    main()

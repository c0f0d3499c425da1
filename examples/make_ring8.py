"""Write examples/ring8.csv: 4,000 draws from 8 Gaussians (sd 0.2) at equal angles on a circle
of radius 2, equal weights, seed 0 (deterministic). The density is `ring8_density` below."""

from pathlib import Path

import numpy as np

RADIUS, SD, MODES, ROWS = 2.0, 0.2, 8, 4000


def centres() -> np.ndarray:
    t = 2 * np.pi * np.arange(MODES) / MODES
    return RADIUS * np.stack([np.cos(t), np.sin(t)], axis=1)


def ring8_density(x: np.ndarray) -> np.ndarray:
    """The mixture's density at points x (..., 2)."""
    d2 = ((x[..., None, :] - centres()) ** 2).sum(axis=-1)
    return np.exp(-0.5 * d2 / SD ** 2).mean(axis=-1) / (2 * np.pi * SD ** 2)


def main() -> None:
    rng = np.random.default_rng(0)
    x = centres()[rng.integers(0, MODES, ROWS)] + SD * rng.standard_normal((ROWS, 2))
    path = Path(__file__).resolve().parent / "ring8.csv"
    with open(path, "w") as f:
        f.write("x[0],x[1]\n")
        for r in x:
            f.write(f"{r[0]:.6f},{r[1]:.6f}\n")


if __name__ == "__main__":
    main()

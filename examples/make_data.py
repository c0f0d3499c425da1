"""Write the example data files. Deterministic: running it again gives the same bytes.

    python examples/make_data.py

- karate_edges.csv: Zachary's karate club (W. W. Zachary, "An information flow model for
  conflict and fission in small groups", J. Anthropological Research 33, 1977), the 78 edges
  of networkx.karate_club_graph(), one `u,v` row per edge, nodes numbered 0..33.
- data/noisy.csv: a 32 x 32 spin image (a disc and a bar) with 10% of its pixels flipped,
  one row with the columns y[i,j] of examples/denoise.ebm; data/clean.csv is the image before
  the noise, with columns x[i,j].
- data/bars.csv: 300 rows of 10 bits (columns v[0]..v[9] of examples/rbm_free_energy.ebm), each
  one of three bar patterns with 5% of its bits flipped.
"""

from pathlib import Path

import networkx as nx
import numpy as np

HERE = Path(__file__).resolve().parent


def karate() -> None:
    edges = sorted(tuple(sorted(e)) for e in nx.karate_club_graph().edges())
    text = "u,v\n" + "".join(f"{u},{v}\n" for u, v in edges)
    (HERE / "karate_edges.csv").write_text(text)


def image(h: int = 32, w: int = 32) -> np.ndarray:
    i, j = np.mgrid[0:h, 0:w]
    disc = (i - 12) ** 2 + (j - 11) ** 2 < 64
    bar = (i >= 22) & (i < 27) & (j >= 6) & (j < 28)
    return np.where(disc | bar, 1, -1)


def noisy(clean: np.ndarray, flip: float = 0.1, seed: int = 2026) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random(clean.shape) < flip, -clean, clean)


def write_image(path: Path, name: str, img: np.ndarray) -> None:
    h, w = img.shape
    header = ",".join(f"{name}[{a},{b}]" for a in range(h) for b in range(w))
    path.write_text(header + "\n" + ",".join(str(int(v)) for v in img.ravel()) + "\n")


def bars(rows: int = 300, flip: float = 0.05, seed: int = 2026) -> None:
    rng = np.random.default_rng(seed)
    protos = np.array([[1] * 5 + [0] * 5, [0] * 5 + [1] * 5, [1, 0] * 5])
    x = protos[rng.integers(0, 3, rows)] ^ (rng.random((rows, 10)) < flip)
    lines = [",".join(f"v[{i}]" for i in range(10))] + [",".join(map(str, r)) for r in x.astype(int)]
    (HERE / "data" / "bars.csv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    karate()
    (HERE / "data").mkdir(exist_ok=True)
    clean = image()
    write_image(HERE / "data" / "clean.csv", "x", clean)
    write_image(HERE / "data" / "noisy.csv", "y", noisy(clean))
    bars()

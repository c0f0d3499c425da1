"""Anomaly scores from a restricted Boltzmann machine.

    python examples/anomaly.py [--hidden 16] [--epochs 20] [--flip 0.2] [--seed 0]

An energy-based model scores a state without its partition function: `score(model, data)`
gives log p(v) + log Z for each row, the hidden units summed out exactly (minus the RBM's free
energy). Within one fitted model log Z is a constant, so the score ranks rows exactly as the
likelihood does, and a low score flags an unusual row. This is the anomaly score the theory
promises, and here we check it does its job.

We fit the RBM of examples/rbm.ebm (64 visible pixels; 16 hidden units by default, plenty for
this task) to the first 1500 binarized 8x8 digits of examples/data/digits.csv with ebmlang's
default fit settings and a fixed seed, then score the 297 held-out digits and the same digits
with a fraction of their pixels flipped at random. The ROC AUC is the probability that a clean
digit scores above a corrupted one (the Mann-Whitney U statistic over n_clean * n_corrupt),
computed with numpy alone. With 16 hidden units log Z is exact (2^16 hidden states, the
visibles summed out), so the mean normalized log-likelihood is shown too.

The script exits 0 and prints its figures; it takes a few seconds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import ebmlang
from ebmlang.infer.score import score

HERE = Path(__file__).resolve().parent
MODEL = HERE / "rbm.ebm"
DIGITS = HERE / "data" / "digits.csv"


def load_digits(path: Path = DIGITS) -> np.ndarray:
    """The binarized digits: (rows, 64) of 0/1, in file order (see examples/data/README.md)."""
    return np.loadtxt(path, delimiter=",", skiprows=1)


def corrupt(x: np.ndarray, flip: float, seed: int) -> np.ndarray:
    """A copy of the binary rows x with each pixel flipped independently with probability flip."""
    mask = np.random.default_rng(seed).random(x.shape) < flip
    return np.where(mask, 1.0 - x, x)


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counting one half: the Mann-Whitney U
    statistic divided by n_pos * n_neg, the area under the ROC curve."""
    diff = positive[:, None] - negative[None, :]
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


def fit_rbm(train: np.ndarray, hidden: int, epochs: int, seed: int):
    """The RBM of examples/rbm.ebm with `hidden` units, fitted with default settings."""
    model = ebmlang.load(MODEL, M=hidden)
    model.fit({"v": train}, epochs=epochs, seed=seed)
    return model


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=int, default=16, help="hidden units M (default 16)")
    p.add_argument("--epochs", type=int, default=20, help="fit epochs (default 20, ebmlang's)")
    p.add_argument("--train", type=int, default=1500, help="training rows, from the top (1500)")
    p.add_argument("--test", type=int, default=None,
                   help="held-out rows after the training rows (default: all the rest)")
    p.add_argument("--flip", type=float, default=0.2, help="fraction of pixels flipped (0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fit; the noise uses seed+1")
    return p.parse_args(argv)


def report(clean: dict, bad: dict, auc: float) -> str:
    """The table of mean scores (and exact mean log p where available) and the AUC."""
    lines = [f"{'':12s}{'mean score':>12s}{'mean log p(v)':>16s}"]
    for name, res in (("clean", clean), ("corrupted", bad)):
        logp = f"{np.mean(res['logp']):16.2f}" if res["logp"] is not None else f"{'n/a':>16s}"
        lines.append(f"{name:12s}{np.mean(res['score']):12.2f}{logp}")
    lines.append(f"ROC AUC (clean digits scored above corrupted ones): {auc:.4f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    digits = load_digits()
    train = digits[:args.train]
    test = digits[args.train:] if args.test is None else digits[args.train:args.train + args.test]
    start = time.perf_counter()
    model = fit_rbm(train, args.hidden, args.epochs, args.seed)
    seconds = time.perf_counter() - start
    print(f"rbm: 64 visible, {args.hidden} hidden, fitted to {len(train)} digits "
          f"({args.epochs} epochs, default settings, seed {args.seed}) in {seconds:.1f} s")
    print(f"scoring {len(test)} held-out digits, clean and with {args.flip:.0%} of pixels "
          f"flipped (seed {args.seed + 1})")
    clean = score(model, {"v": test})
    bad = score(model, {"v": corrupt(test, args.flip, args.seed + 1)})
    auc = roc_auc(clean["score"], bad["score"])
    print(report(clean, bad, auc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Expectations of dF/dtheta (the sufficient statistics of a model linear in its params), free
energies with latents summed out, and pseudo-likelihoods: the quantities learning is made of.

Everything works on states x of shape (rows, n_state) and reuses the generated kernels:
`TermKernel.add_gradient` for dF/dtheta and `local_logits` for conditionals.
"""

from __future__ import annotations

import numpy as np

from ebmlang.backends.numeric import logsumexp, softmax
from ebmlang.backends.runtime import PartKernel, local_logits


def expected_stats(model, x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sum_c weights[c] * dF/dtheta(x_c)."""
    out = np.zeros(model.checked.n_theta)
    w = np.asarray(weights, float)[:, None]
    for k in model.kernels:
        if k.term.size and k.term.preads:
            k.add_gradient(out, x, model.params.theta, w)
    return out


def _value_index(part: PartKernel, x: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(part.values, x[:, part.ids]), 0, len(part.values) - 1)


def _quadratic(part: PartKernel, x, theta):
    """(a, b) of a Gaussian part's local log-potential a t^2 + b t + const, per chain and var."""
    ell = local_logits(part, x, theta)
    return 0.5 * (ell[..., 2] + ell[..., 0]) - ell[..., 1], 0.5 * (ell[..., 2] - ell[..., 0])


def pseudo_available(model) -> bool:
    """Every sampled family finite or Gaussian: the conditionals normalize in closed form."""
    return all(m in ("gibbs", "gaussian") for m, _, _ in model.methods.values())


def pseudo_loglik(model, x: np.ndarray) -> np.ndarray:
    """sum over sampled variables of log p(x_i | x_-i), per row (every variable observed)."""
    theta = model.params.theta
    out = np.zeros(x.shape[0])
    for block in model.parts():
        for part in block:
            if part.method == "gaussian":
                a, b = _quadratic(part, x, theta)
                t = x[:, part.ids]
                with np.errstate(all="ignore"):
                    out += (a * t * t + b * t + b * b / (4 * a) - 0.5 * np.log(np.pi / -a)).sum(1)
                continue
            logits = local_logits(part, x, theta)
            norm = logits - logsumexp(logits, axis=-1)[..., None]
            idx = _value_index(part, x)
            out += np.take_along_axis(norm, idx[..., None], axis=-1)[..., 0].sum(axis=1)
    return out


_HERMITE = np.polynomial.hermite.hermgauss(8)


def _conditional_points(part: PartKernel, x, theta):
    """[(values (chains, vars), probabilities (chains, vars))]: the conditional's support
    points, or for a Gaussian part its 8-point Gauss-Hermite nodes (exact for polynomial
    statistics up to degree 15)."""
    if part.method == "gaussian":
        a, b = _quadratic(part, x, theta)
        with np.errstate(all="ignore"):
            mean, sd = -b / (2 * a), np.sqrt(-0.5 / a)
        nodes, weights = _HERMITE
        return [(mean + np.sqrt(2.0) * sd * t, np.full(mean.shape, w / np.sqrt(np.pi)))
                for t, w in zip(nodes, weights)]
    p = softmax(local_logits(part, x, theta))
    return [(np.full(p.shape[:2], value), p[..., v]) for v, value in enumerate(part.values)]


def pseudo_gradient(model, x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Gradient of sum_c weights[c] * pseudo_loglik(x_c): for each variable i, the statistics
    of the instances touching it at the data minus their expectation under p(x_i | x_-i)."""
    theta = model.params.theta
    out = np.zeros(model.checked.n_theta)
    w = np.asarray(weights, float)[:, None]
    for block in model.parts():
        for part in block:
            points = _conditional_points(part, x, theta)
            for tc in part.touches:
                if not tc.kernel.term.preads:
                    continue
                tc.kernel.add_gradient(out, x, theta, w, tc.rows)
                for values, prob in points:
                    tc.kernel.add_gradient(out, x, theta, -w * prob[:, tc.target], tc.rows,
                                           (tc.masks, values[:, tc.target]))
    return out


def stochastic_pseudo_loglik(model, summed, x: np.ndarray, visible: list[PartKernel],
                             rng: np.random.Generator) -> np.ndarray:
    """N * log p(x_i | x_-i) for one random observed variable i per row, latents summed out
    (scikit-learn's BernoulliRBM.score_samples convention), per row. `summed` gives
    `log_marginal(x)` (a `SummedOut`, or the fused `Marginal`)."""
    rows = x.shape[0]
    ids = np.concatenate([p.ids for p in visible])
    sizes = np.concatenate([np.full(len(p.ids), len(p.values)) for p in visible])
    table = np.zeros((len(ids), sizes.max()))          # each variable's values, padded
    start = 0
    for p in visible:
        table[start:start + len(p.ids), :len(p.values)] = p.values
        start += len(p.ids)
    pick = rng.integers(0, len(ids), rows)
    base = summed.log_marginal(x)
    alt_rows = np.repeat(np.arange(rows), sizes[pick])  # one row per value of the picked variable
    first = np.cumsum(sizes[pick]) - sizes[pick]
    values = table[pick[alt_rows], np.arange(len(alt_rows)) - first[alt_rows]]
    cols = ids[pick[alt_rows]]
    other = values != x[alt_rows, cols]                 # the row's own value: `base` already
    alt_rows, cols, values = alt_rows[other], cols[other], values[other]
    xs = x[alt_rows].copy()
    xs[np.arange(len(alt_rows)), cols] = values
    norm = base.copy()
    np.logaddexp.at(norm, alt_rows, summed.log_marginal(xs))
    return len(ids) * (base - norm)

"""Tempered updates of a numpy block part: a draw that leaves the part's conditional raised to
a power beta invariant, the one kernel behind annealing (`map`), annealed importance sampling
(`logz`) and parallel tempering (`tempering`).

`beta` is a number or one per chain ((chains,) array: parallel tempering runs every replica in
one vectorized call). `base` (0 or 1) mixes in AIS's base distribution for real variables: the
target is then beta * l(t) - base * (1 - beta) * t^2 / 2, a standard normal at beta = 0 (for a
finite variable the base is uniform and adds nothing). Where every value of the conditional is
scaled by beta, a Gaussian conditional a t^2 + b t stays Gaussian with its precision scaled by
beta and its mean unchanged, so it stays proper for every beta > 0.
"""

from __future__ import annotations

import numpy as np

from ebmlang.backends.runtime import draw_categorical, local_at, local_logits


def per_chain(beta, ndim: int):
    """beta as it broadcasts against an array of `ndim` dimensions whose first is the chains."""
    if np.ndim(beta) == 0:
        return beta
    return np.reshape(beta, (-1,) + (1,) * (ndim - 1))


def quadratic(ell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of a t^2 + b t + c from its values at t = -1, 0, 1 (the last axis of ell)."""
    return 0.5 * (ell[..., 2] + ell[..., 0]) - ell[..., 1], 0.5 * (ell[..., 2] - ell[..., 0])


def tempered_gibbs(part, x, theta, rng, beta) -> np.ndarray:
    """A finite variable: a draw from softmax(beta * local log-potential)."""
    ell = local_logits(part, x, theta)
    with np.errstate(invalid="ignore"):
        return part.values[draw_categorical(per_chain(beta, 3) * ell, rng)]


def tempered_gaussian(part, x, theta, rng, beta, base: float = 0.0) -> np.ndarray:
    """A real variable with a quadratic conditional a t^2 + b t: tempered it has a' = beta a
    - base (1 - beta) / 2 and b' = beta b (base 0: the mean -b / 2a, the precision scaled by
    beta). A variable whose a' >= 0 here (improper) keeps its value."""
    a, b = quadratic(local_logits(part, x, theta))
    beta = per_chain(beta, 2)
    z = rng.standard_normal(a.shape)
    if base:
        a, b = beta * a - base * 0.5 * (1.0 - beta), beta * b
        precision = a
    else:
        precision = beta * a
    with np.errstate(divide="ignore", invalid="ignore"):
        draw = -b / (2 * a) + z * np.sqrt(-0.5 / precision)
    return np.where(a < 0, draw, x[:, part.ids])


def tempered_mh(part, x, theta, rng, beta, base: float = 0.0, count=True,
                spread=None) -> np.ndarray:
    """One random-walk Metropolis-Hastings step on beta * l (beta = inf: only improving moves),
    with `base` as above for real variables. Real variables step by part.scale * spread (a
    number or one per chain; None: 1), finite ones by up to part.scale positions along the
    sorted domain. `count`: True, False, or a per-chain mask of the chains whose proposals
    count in the part's acceptance (parallel tempering counts the beta = 1 replicas)."""
    current = x[:, part.ids]
    shape = current.shape
    if part.values is None:
        step = part.scale if spread is None else part.scale * per_chain(spread, 2)
        proposal, inside = current + step * rng.standard_normal(shape), np.ones(shape, bool)
    else:
        k = len(part.values)
        reach = max(1, round(part.scale))
        idx = np.clip(np.searchsorted(part.values, current), 0, k - 1)
        new = idx + rng.integers(1, reach + 1, shape) * rng.choice([-1, 1], shape)
        inside = (new >= 0) & (new < k)
        proposal = part.values[np.clip(new, 0, k - 1)]
    with np.errstate(invalid="ignore", over="ignore"):
        delta = local_at(part, x, theta, proposal) - local_at(part, x, theta, current)
        if np.ndim(beta) == 0 and np.isinf(beta):
            accept = inside & (delta > 0)
        else:
            beta = per_chain(beta, 2)
            target = beta * delta
            if base and part.values is None:
                target -= base * 0.5 * (1.0 - beta) * (proposal ** 2 - current ** 2)
            accept = inside & (np.log(rng.random(shape)) < target)
    if count is not False:
        counted = accept if count is True else accept[count]
        part.proposed += counted.size
        part.accepted += int(counted.sum())
    return np.where(accept, proposal, current)


def tempered_update(part, x, theta, rng, beta, count=True, spread=None) -> np.ndarray:
    """The part's own update (`sample`'s method: Gibbs, exact Gaussian or MH) on beta * l."""
    if part.method == "mh":
        return tempered_mh(part, x, theta, rng, beta, count=count, spread=spread)
    if part.method == "gaussian":
        return tempered_gaussian(part, x, theta, rng, beta)
    return tempered_gibbs(part, x, theta, rng, beta)

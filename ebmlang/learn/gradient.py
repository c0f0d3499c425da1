"""Expectations of dF/dtheta (the sufficient statistics of a model linear in its params), free
energies with latents summed out, and pseudo-likelihoods: the quantities learning is made of.

Everything works on states x of shape (rows, n_state) and reuses the generated kernels:
`TermKernel.add_gradient` for dF/dtheta and `local_logits` for conditionals.
"""

from __future__ import annotations

import numpy as np

from ebmlang.backends.numeric import logsumexp, softmax
from ebmlang.backends.runtime import PartKernel, Touch, local_logits


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


def _quadratic(part: PartKernel, x, theta, logits=local_logits):
    """(a, b) of a Gaussian part's local log-potential a t^2 + b t + const, per chain and var."""
    ell = logits(part, x, theta)
    return 0.5 * (ell[..., 2] + ell[..., 0]) - ell[..., 1], 0.5 * (ell[..., 2] - ell[..., 0])


def pseudo_available(model) -> bool:
    """Every sampled family finite or Gaussian: the conditionals normalize in closed form."""
    return all(m in ("gibbs", "gaussian") for m, _, _ in model.methods.values())


def pseudo_parts(model) -> list[PartKernel]:
    """One part per sampled family, for the pseudo-likelihood: every conditional p(x_i | x_-i)
    is taken at the data, so the Gibbs blocks (a colour per part, up to one part per variable
    in a fully connected machine) are not needed, and one evaluation per value serves the whole
    family; an instance reading two of its variables is evaluated once for each."""
    methods = model.methods
    out = []
    for f in model.vars.values():
        if not f.sampled:
            continue
        ids = np.arange(f.offset, f.offset + f.space.size)
        values = f.domain.values if methods[f.name][0] != "gaussian" else np.array([-1.0, 0.0, 1.0])
        part = PartKernel(f.name, ids, values, _family_touches(model, ids), methods[f.name][0])
        out.append(part)
    return out


def _family_touches(model, ids: np.ndarray) -> list[Touch]:
    """One touch per term: for each read, the instances where it is the first read of its
    variable of the family (overriding every read of that same variable there), all
    concatenated, so one evaluation of the term serves every variable it touches."""
    where = np.full(model.checked.n_state, -1, np.int64)
    where[ids] = np.arange(len(ids))
    touches = []
    for k in model.kernels:
        t = k.term
        if not t.size or not t.reads:
            continue
        pos = np.stack([where[r.ids] for r in t.reads])       # (reads, n)
        rows, target, same = [], [], []
        for j in range(len(t.reads)):
            first = np.flatnonzero((pos[j] >= 0) & ~(pos[:j] == pos[j]).any(axis=0))
            rows.append(first)
            target.append(pos[j, first])
            same.append(pos[:, first] == pos[j, first])          # (reads, len(first))
        rows = np.concatenate(rows)
        if not len(rows):
            continue
        same = np.concatenate(same, axis=1)
        masks = [(q, same[q]) for q in range(len(t.reads)) if same[q].any()]
        touches.append(Touch(k, rows, np.concatenate(target), masks))
    return touches


def _local_logits(part: PartKernel, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """`runtime.local_logits` (chains, variables, values) with the values stacked as rows of
    one state array: one evaluation per term, not one per value."""
    K, c, m = len(part.values), x.shape[0], len(part.ids)
    stacked = np.tile(x, (K, 1))
    value = np.repeat(part.values, c)[:, None]
    flat = np.zeros(K * c * m)
    base = np.arange(K * c)[:, None] * m
    for tc in part.touches:
        vals = tc.kernel.values(stacked, theta, tc.rows, (tc.masks, value))
        flat += np.bincount((base + tc.target[None, :]).ravel(), weights=vals.ravel(),
                            minlength=K * c * m)
    return flat.reshape(K, c, m).transpose(1, 2, 0)


def pseudo_loglik(model, x: np.ndarray, parts=None) -> np.ndarray:
    """sum over sampled variables of log p(x_i | x_-i), per row (every variable observed);
    `parts` from `pseudo_parts` (made here when not given)."""
    theta = model.params.theta
    out = np.zeros(x.shape[0])
    for part in parts if parts is not None else pseudo_parts(model):
        if part.method == "gaussian":
            a, b = _quadratic(part, x, theta, _local_logits)
            t = x[:, part.ids]
            with np.errstate(all="ignore"):
                out += (a * t * t + b * t + b * b / (4 * a) - 0.5 * np.log(np.pi / -a)).sum(1)
            continue
        logits = _local_logits(part, x, theta)
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
        a, b = _quadratic(part, x, theta, _local_logits)
        with np.errstate(all="ignore"):
            mean, sd = -b / (2 * a), np.sqrt(-0.5 / a)
        nodes, weights = _HERMITE
        return [(mean + np.sqrt(2.0) * sd * t, np.full(mean.shape, w / np.sqrt(np.pi)))
                for t, w in zip(nodes, weights)]
    p = softmax(_local_logits(part, x, theta))
    return [(np.full(p.shape[:2], value), p[..., v]) for v, value in enumerate(part.values)]


def pseudo_gradient(model, x: np.ndarray, weights: np.ndarray, parts=None) -> np.ndarray:
    """Gradient of sum_c weights[c] * pseudo_loglik(x_c): for each variable i, the statistics
    of the instances touching it at the data minus their expectation under p(x_i | x_-i).

    The data and every support point of the conditionals are stacked as rows of one state
    array, so each term is evaluated once per part, not once per point."""
    theta = model.params.theta
    out = np.zeros(model.checked.n_theta)
    w = np.asarray(weights, float)[:, None]
    for part in parts if parts is not None else pseudo_parts(model):
        if not any(tc.kernel.term.preads for tc in part.touches):
            continue
        points = _conditional_points(part, x, theta)
        own = x[:, part.ids]
        values = np.concatenate([own] + [v for v, _ in points])
        wts = np.concatenate([np.broadcast_to(w, own.shape)] + [-w * p for _, p in points])
        stacked = np.tile(x, (len(points) + 1, 1))
        for tc in part.touches:
            if tc.kernel.term.preads:
                tc.kernel.add_gradient(out, stacked, theta, wts[:, tc.target], tc.rows,
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

"""Exact answers by enumeration: every joint state of the sampled variables of a small model.

Used for exact maximum likelihood, exact log-likelihood metrics, normalized scores, and as the
reference in tests. Refused, with a message, above MAX_STATES states.
"""

from __future__ import annotations

import itertools

import numpy as np

from .errors import UserError

MAX_STATES = 1 << 20


def state_count(model) -> int:
    """Number of joint states of the sampled variables (a Python int: it may be huge)."""
    count = 1
    for f in model.vars.values():
        if f.sampled:
            if not f.domain.finite:
                return -1
            count *= f.domain.size ** f.space.size
    return count


def check_enumerable(model, what: str) -> int:
    count = state_count(model)
    if count < 0:
        raise UserError(f"{what} needs finite domains: the model has real-valued variables")
    if count > MAX_STATES:
        digits = len(str(count))
        size = f"{count:,}" if digits < 16 else f"about 10^{digits - 1}"
        raise UserError(f"{what} enumerates every state, and this model has {size} "
                        f"(at most {MAX_STATES:,}); use another method")
    return count


def enumerate_states(model, inputs=None, what: str = "exact enumeration") -> np.ndarray:
    """Every state (n_states, n_state), the inputs (one row) copied into each."""
    check_enumerable(model, what)
    fams = [f for f in model.vars.values() if f.sampled]
    ids = np.concatenate([np.arange(f.offset, f.offset + f.space.size) for f in fams])
    domains = [f.domain.values for f in fams for _ in range(f.space.size)]
    grid = np.array(list(itertools.product(*domains)), dtype=float).reshape(-1, len(ids))
    x = np.zeros((len(grid), model.checked.n_state))
    x[:, ids] = grid
    input_ids = model.state_ids(("input",))
    if len(input_ids):
        if inputs is None:
            raise UserError(f"{what} of a conditional model needs its inputs")
        x[:, input_ids] = np.asarray(inputs, float).reshape(-1)[: len(input_ids)]
    return x


def logsumexp(a: np.ndarray, axis=None) -> np.ndarray:
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    out = np.log(np.sum(np.exp(a - top), axis=axis, keepdims=True)) + top
    return np.squeeze(out, axis=axis) if axis is not None else out.item()


def log_partition(model, inputs=None) -> float:
    x = enumerate_states(model, inputs, "the exact partition function")
    return float(logsumexp(model.log_potential(x)))


def probabilities(model, inputs=None) -> tuple[np.ndarray, np.ndarray]:
    """Every state and its exact probability."""
    x = enumerate_states(model, inputs)
    logp = model.log_potential(x)
    p = np.exp(logp - logsumexp(logp))
    return x, p / p.sum()

"""Exact answers by enumeration: every joint state of the sampled variables of a small model.

Used for exact maximum likelihood, exact log-likelihood metrics, normalized scores, and as the
reference in tests. Refused, with a message, above MAX_STATES states.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ebmlang.backends.numeric import logsumexp
from ebmlang.errors import UserError

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
        digits = int(math.log10(count)) + 1
        size = f"{count:,}" if digits < 16 else f"about 10^{digits - 1}"
        raise UserError(f"{what} enumerates every state, and this model has {size} "
                        f"(at most {MAX_STATES:,}); use another method")
    return count


def enumerate_states(model, inputs=None, what: str = "exact enumeration") -> np.ndarray:
    """Every state (n_states, n_state), the inputs (one row) copied into each."""
    check_enumerable(model, what)
    if len(model.state_ids(("input",))) and inputs is None:
        raise UserError(f"{what} of a conditional model needs its inputs")
    return _enumerate_families(model, [f for f in model.vars.values() if f.sampled], inputs)


def log_partition(model, inputs=None) -> float:
    """log Z exactly: by enumerating every state, or, when one group of families is
    conditionally independent given the rest (the RBM's visibles given its hiddens), by
    enumerating the rest and summing that group out in closed form."""
    if 0 < state_count(model) <= MAX_STATES:
        x = enumerate_states(model, inputs, "the exact partition function")
        return float(logsumexp(model.log_potential(x)))
    split = _summable_split(model)
    if split is None:
        check_enumerable(model, "the exact partition function")
    summed, rest = split
    x = _enumerate_families(model, rest, inputs)
    return float(logsumexp(summed.log_marginal(x)))


def _summable_split(model):
    """(SummedOut over some families, the other sampled families) with the others enumerable."""
    from ebmlang.infer.summed import SummedOut
    fams = [f for f in model.vars.values() if f.sampled]
    if any(not f.domain.finite for f in fams):
        return None
    best = None
    for block in model.graph.blocks:
        names = {p.family for p in block.parts}
        if any(len(p.ids) != model.vars[p.family].space.size for p in block.parts):
            continue
        rest = [f for f in fams if f.name not in names]
        count = 1
        for f in rest:
            count *= f.domain.size ** f.space.size
        if count <= MAX_STATES and (best is None or count < best[0]):
            best = (count, names, rest)
    if best is None:
        return None
    ids = np.concatenate([np.arange(model.vars[n].offset, model.vars[n].offset
                                    + model.vars[n].space.size) for n in sorted(best[1])])
    return SummedOut(model, ids), best[2]


def _enumerate_families(model, fams, inputs) -> np.ndarray:
    ids = np.concatenate([np.arange(f.offset, f.offset + f.space.size) for f in fams]) \
        if fams else np.zeros(0, np.int64)
    domains = [f.domain.values for f in fams for _ in range(f.space.size)]
    grid = np.array(list(itertools.product(*domains)), dtype=float).reshape(-1, len(ids))
    x = np.zeros((max(len(grid), 1), model.checked.n_state))
    x[:, ids] = grid
    input_ids = model.state_ids(("input",))
    if len(input_ids):
        x[:, input_ids] = np.asarray(inputs, float).reshape(-1)[: len(input_ids)]
    return x


def exact_log_z_available(model) -> bool:
    return 0 < state_count(model) <= MAX_STATES or _summable_split(model) is not None


def probabilities(model, inputs=None) -> tuple[np.ndarray, np.ndarray]:
    """Every state and its exact probability."""
    x = enumerate_states(model, inputs)
    logp = model.log_potential(x)
    p = np.exp(logp - logsumexp(logp))
    return x, p / p.sum()

"""Exact answers by enumeration, the reference every sampler test compares against."""

from __future__ import annotations

import numpy as np

from ebmlang.infer.exact import probabilities


def enumerate_states(model, inputs=None) -> tuple[np.ndarray, np.ndarray]:
    """Every joint state of the sampled variables (inputs fixed) and its exact probability."""
    return probabilities(model, inputs)


def exact_moments(model, inputs=None):
    """Exact E[x_i] and E[x_i x_j] over the sampled ground variables."""
    x, p = enumerate_states(model, inputs)
    ids = model.state_ids()
    xs = x[:, ids]
    return p @ xs, (xs * p[:, None]).T @ xs


def exact_marginals(model, inputs=None) -> dict[int, np.ndarray]:
    """Exact P(x_i = value) for each sampled ground variable: id -> probs over its domain."""
    x, p = enumerate_states(model, inputs)
    out = {}
    for f in model.vars.values():
        if not f.sampled:
            continue
        for i in range(f.offset, f.offset + f.space.size):
            out[i] = np.array([p[x[:, i] == v].sum() for v in f.domain.values])
    return out


def sample_marginals(samples, model) -> dict[int, np.ndarray]:
    full = samples.full.reshape(-1, samples.full.shape[-1])
    out = {}
    for f in model.vars.values():
        if not f.sampled:
            continue
        for i in range(f.offset, f.offset + f.space.size):
            out[i] = np.array([(full[:, i] == v).mean() for v in f.domain.values])
    return out


def max_marginal_error(samples, model, inputs=None) -> float:
    ex, sm = exact_marginals(model, inputs), sample_marginals(samples, model)
    return max(float(np.abs(ex[i] - sm[i]).max()) for i in ex)


def effective_tolerance(samples, z: float = 5.0) -> float:
    """z standard errors of a probability estimated from the kept draws, conservatively taking
    the effective number of draws as a quarter of the kept ones (checked on these small models:
    their integrated autocorrelation times are below 4 sweeps)."""
    n_eff = samples.chains * samples.draws / 4.0
    return z * 0.5 / np.sqrt(n_eff)

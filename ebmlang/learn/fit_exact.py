"""Exact maximum likelihood on models small enough to enumerate: the average log-likelihood
and its gradient E_data[dF/dtheta] - E_model[dF/dtheta] computed exactly (latents and missing
cells summed out by enumeration), maximized by L-BFGS to convergence."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from ebmlang.backends.numeric import logsumexp
from ebmlang.infer.exact import check_enumerable, enumerate_states
from ebmlang.errors import UserError
from ebmlang.learn.gradient import expected_stats


class _Group:
    """Data rows sharing one input configuration (all rows when the model has no inputs)."""

    def __init__(self, model, rows: np.ndarray, inputs):
        self.states = enumerate_states(model, inputs, "method exact")
        obs = model.state_ids(("var",))
        vals = rows[:, obs]
        uniq, counts = np.unique(np.nan_to_num(vals, nan=np.inf), axis=0, return_counts=True)
        self.masks = []
        for u, n in zip(uniq, counts):
            seen = np.isfinite(u)
            mask = np.all(self.states[:, obs[seen]] == u[seen], axis=1)
            if not mask.any():
                raise UserError("a data row has probability zero under the model's support")
            self.masks.append((mask, n))


def _objective(model, groups, n_rows: int, decay: float):
    theta = model.params.theta

    def f(params: np.ndarray):
        theta[:] = params
        value, grad = 0.0, np.zeros_like(params)
        for g in groups:
            lp = model.log_potential(g.states)
            log_z = logsumexp(lp)
            weights = np.zeros(len(lp))
            total = 0
            for mask, n in g.masks:
                lpm = lp[mask]
                norm = logsumexp(lpm)
                value += n * (norm - log_z)
                weights[mask] += n * np.exp(lpm - norm)
                total += n
            weights -= total * np.exp(lp - log_z)
            grad += expected_stats(model, g.states, weights)
        value, grad = value / n_rows, grad / n_rows
        value -= 0.5 * decay * float(params @ params)
        grad -= decay * params
        return -value, -grad

    return f


def fit_exact(model, data, opts):
    from ebmlang.learn.result import FitResult
    check_enumerable(model, "method exact")
    input_ids = model.state_ids(("input",))
    groups = []
    if len(input_ids):
        uniq, inverse = np.unique(data.x[:, input_ids], axis=0, return_inverse=True)
        for g, u in enumerate(uniq):
            groups.append(_Group(model, data.x[inverse.ravel() == g], u))
    else:
        groups.append(_Group(model, data.x, None))
    history = []
    f = _objective(model, groups, data.rows, opts.weight_decay)

    def record(params):
        history.append({"epoch": len(history) + 1, "metric": "LL", "value": -f(params)[0]})
        if opts.progress is not None:
            opts.progress(history[-1], opts)

    start = model.params.theta.copy()
    res = minimize(f, start, jac=True, method="L-BFGS-B", callback=record,
                   options={"maxiter": max(opts.epochs, 1000), "gtol": 1e-9, "ftol": 1e-14})
    model.params.theta[:] = res.x
    if not np.all(np.isfinite(res.x)):
        raise UserError("exact maximum likelihood diverged: the maximum is at infinity (the "
                        "data may be separable); add --weight-decay")
    return FitResult(model.params.to_dict(), history, "exact")

"""Scores: log p(x) up to log Z per data row, the latents summed out exactly where they are
conditionally independent given the rest (the RBM's free energy), and the exact normalized
log p(x) where Z can be enumerated. Comparing scores needs no Z: this is the anomaly score."""

from __future__ import annotations

import numpy as np

from ebmlang.io.data import load_data
from ebmlang.errors import UserError
from ebmlang.infer.exact import exact_log_z_available, log_partition
from ebmlang.infer.summed import SummedOut


def score(model, data) -> dict[str, np.ndarray | None]:
    """{"score": (rows,), "logp": (rows,) or None}."""
    data = load_data(model, data)
    x = data.x.copy()
    var_ids = model.state_ids(("var",))
    gaps = np.isnan(x[:, var_ids])
    if gaps.any():
        r, c = np.argwhere(gaps)[0]
        raise UserError(f"{data.source}: row {r + 1} has no value for "
                        f"{model.ground_names(('var',))[c]}; score needs complete rows")
    latent = model.state_ids(("latent",))
    if len(latent):
        if not SummedOut.independent(model, latent):
            raise UserError("score sums the latent variables out exactly, which needs them "
                            "finite and conditionally independent given the observed ones (no "
                            "factor joining two latents)")
        x[:, latent] = 0.0
        values = SummedOut(model, latent).log_marginal(x)
    else:
        values = model.log_potential(x)
    return {"score": values, "logp": _normalized(model, x, values)}


def _normalized(model, x, values):
    """values - log Z where log Z is exact (enumeration, a summed-out group, or variable
    elimination when its tables are small); None otherwise."""
    exact = _exact_log_z(model)
    if exact is None:
        return None
    input_ids = model.state_ids(("input",))
    if not len(input_ids):
        return values - exact(None)
    out = np.empty_like(values)
    uniq, inverse = np.unique(x[:, input_ids], axis=0, return_inverse=True)
    for g, u in enumerate(uniq):
        out[inverse.ravel() == g] = values[inverse.ravel() == g] - exact(u)
    return out


def _exact_log_z(model):
    """A function inputs -> exact log Z, or None when no exact method is cheap enough."""
    if exact_log_z_available(model):
        return lambda u: log_partition(model, u)
    if any(not f.domain.finite for f in model.vars.values() if f.sampled):
        return None
    from ebmlang.infer.logz import choose, logz
    method, _, _ = choose(model)
    if method != "ve":
        return None
    return lambda u: logz(model, method="ve", inputs=None if u is None else u[None, :]).value

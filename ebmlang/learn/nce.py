"""`fit --method nce`: noise-contrastive estimation (Gutmann and Hyvarinen 2010) for models whose
sampled families are all real and fully observed. The noise q is the Gaussian with the data's
mean and covariance; NU noise draws per data row (`--noise-ratio`, default 5; drawn once
from the seed). log Z
is learned jointly as one extra number, `logZ` (each history entry's `logZ`, kept in the
params file's history, and `result.logz`). With G(u) = F(u) - logZ - log(NU q(u)) and h = sigmoid(G), the loss

    L = -(1 / n) [ sum over data log h(u) + sum over noise log(1 - h(v)) ]

is minimized by L-BFGS; its gradient in theta uses the compiled dF/dtheta of the terms (the
same derivatives PCD matches), weighted per row.
"""

from __future__ import annotations

import numpy as np

from ebmlang.errors import UserError
from ebmlang.backends.runtime import total_log_potential

NU = 5


def fitted_gaussian(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, Cholesky factor of the covariance) of the rows obs (rows, d): the Gaussian
    fitted to the data (nce's noise, langevin PCD's fresh chains)."""
    cov = np.atleast_2d(np.cov(obs, rowvar=False)) + 1e-9 * np.eye(obs.shape[1])
    return obs.mean(axis=0), np.linalg.cholesky(cov)


def _noise(x: np.ndarray, ids: np.ndarray, rng, nu: int = NU) -> tuple[np.ndarray, callable]:
    """nu draws per row from the data's Gaussian, and its log density on state rows."""
    mean, chol = fitted_gaussian(x[:, ids])
    logdet = 2 * np.log(np.diag(chol)).sum()
    z = rng.standard_normal((nu * len(x), len(ids)))
    noise = np.repeat(x[:1], len(z), axis=0)
    noise[:, ids] = mean + z @ chol.T

    def logq(rows):
        d = np.linalg.solve(chol, (rows[:, ids] - mean).T)
        return -0.5 * (d * d).sum(axis=0) - 0.5 * logdet - 0.5 * len(ids) * np.log(2 * np.pi)
    return noise, logq


class NCE:
    """L(theta, logZ) and its gradient, on the data rows and the fixed noise rows."""

    def __init__(self, model, x: np.ndarray, rng, nu: int = NU):
        ids = model.state_ids()
        for f in model.vars.values():
            if f.sampled and f.domain.finite:
                raise UserError(f"noise-contrastive estimation here is for real variables; "
                                f"'{f.name}' is {f.domain}: use pcd or pl")
        if np.isnan(x[:, ids]).any():
            raise UserError("nce needs every variable observed in every row (no latent "
                            "families, no empty cells)")
        self.model, self.n = model, len(x)
        noise, logq = _noise(x, ids, rng, nu)
        self.rows = np.concatenate([x, noise])
        self.is_data = np.arange(len(self.rows)) < len(x)
        self.shift = logq(self.rows) + np.log(nu)

    def __call__(self, z: np.ndarray):
        theta, logz = z[:-1], z[-1]
        with np.errstate(over="ignore", invalid="ignore"):
            g = total_log_potential(self.model.kernels, self.rows, theta) - logz - self.shift
        # -log h = softplus(-G) on data rows, -log(1 - h) = softplus(G) on noise rows
        sgn = np.where(self.is_data, -1.0, 1.0)
        loss = np.logaddexp(0.0, sgn * g).sum() / self.n
        h = 0.5 * (1 + np.tanh(0.5 * g))
        w = np.where(self.is_data, -(1 - h), h) / self.n      # dL/dG per row
        grad = np.zeros(len(theta))
        for k in self.model.kernels:
            if k.term.size and k.term.preads:
                k.add_gradient(grad, self.rows, theta, w[:, None])
        return loss, np.append(grad, -w.sum())


def fit_nce(model, data, opts):
    from scipy.optimize import minimize
    from ebmlang.learn.result import FitResult
    nce = NCE(model, data.x, np.random.default_rng(opts.seed), opts.noise_ratio)
    history = []
    start = np.append(model.params.theta, 0.0)

    def record(z):
        history.append({"epoch": len(history) + 1, "metric": "NCE", "value": nce(z)[0],
                        "logZ": float(z[-1])})
        if opts.progress is not None:
            opts.progress(history[-1], opts)
    res = minimize(nce, start, jac=True, method="L-BFGS-B", callback=record,
                   options={"maxiter": 25 * opts.epochs, "gtol": 1e-9})
    if not np.all(np.isfinite(res.x)):
        raise UserError("nce diverged: the loss has no finite minimum at these data")
    model.params.theta[:] = res.x[:-1]
    out = FitResult(model.params.to_dict(), history, "nce")
    out.logz = float(res.x[-1])
    return out

"""`fit --method pcd --sampler langevin`: persistent contrastive divergence whose model phase
is short-run unadjusted Langevin chains kept in a replay buffer (Du and Mordatch 2019,
Nijkamp et al. 2019), for models whose sampled families are all real.

The buffer holds `--chains` states, started from the Gaussian fitted to the data (its mean
and covariance). For each minibatch of data rows, as many chains are drawn from the buffer;
each is first replaced, with probability REINIT, by a fresh draw from that Gaussian (inputs,
if any, from a random data row), then moved K = `--langevin-steps` steps of

    x <- x + (eps^2 / 2) dF/dx + eps * N(0, I)

(eps = `--step-size`; default 0.1 times the smallest sd of the data's coordinates) along the
compiled gradient in x that HMC follows (`backends.xgrad`), and written back. The update is
E_data[dF/dtheta] - E_chains[dF/dtheta], the same parameter gradient PCD uses
(`learn.gradient.expected_stats`), fed to the optimizer of `--optimizer` with its schedule.
No Metropolis correction: the chains' stationary law is off by O(eps^2) (for a Gaussian of
variance s^2, the variance is s^2 / (1 - eps^2 / (4 s^2))), which the fit inherits.
"""

from __future__ import annotations

import time

import numpy as np

from ebmlang.errors import UserError
from ebmlang.learn.gradient import expected_stats
from ebmlang.learn.nce import fitted_gaussian
from ebmlang.learn.optim import make_optimizer
from ebmlang.learn.result import FitResult, checked_step, param_gaps

REINIT = 0.05           # the chance a drawn chain restarts from the data's Gaussian
DEFAULT_STEPS = 20
STEP_FRACTION = 0.1     # default eps: this times the smallest sd of the data's coordinates


def check_model(model, x: np.ndarray) -> np.ndarray:
    """The state columns the chains move (every sampled family real, observed in every row),
    or a UserError naming the family or the gap."""
    for f in model.vars.values():
        if f.sampled and f.domain.finite:
            raise UserError(f"langevin chains move real variables along dF/dx; '{f.name}' is "
                            f"{f.domain.text}: use --sampler gibbs (the default), or make it "
                            "an input")
        if f.kind == "latent":
            raise UserError(f"langevin PCD needs every variable observed; '{f.name}' is "
                            "latent: use --sampler gibbs")
    ids = model.state_ids()
    bad = np.argwhere(np.isnan(x[:, ids]))
    if len(bad):
        r, c = bad[0]
        raise UserError(f"langevin PCD needs every variable observed: data row {r + 1}, "
                        f"column {model.ground_names()[c]} is empty")
    return ids


class Buffer:
    """The replay buffer of persistent chains and the Gaussian fresh chains come from."""

    def __init__(self, x: np.ndarray, ids: np.ndarray, size: int, rng):
        self.x, self.ids = x, ids
        self.mean, self.chol = fitted_gaussian(x[:, ids])
        self.states = self.fresh(size, rng)

    def fresh(self, n: int, rng) -> np.ndarray:
        rows = self.x[rng.integers(0, len(self.x), n)].copy()   # inputs from data rows
        rows[:, self.ids] = self.mean + rng.standard_normal((n, len(self.ids))) @ self.chol.T
        return rows


def langevin_steps(grad, x: np.ndarray, theta, ids, eps: float, steps: int, rng) -> None:
    """`steps` unadjusted Langevin steps of x[:, ids] in place."""
    with np.errstate(invalid="ignore", over="ignore"):
        for _ in range(steps):
            g = grad.gradient(x, theta)[:, ids]
            x[:, ids] += 0.5 * eps * eps * g + eps * rng.standard_normal(g.shape)


def fit_langevin(model, data, opts) -> FitResult:
    from ebmlang.backends.xgrad import compiled_gradient
    x = data.x
    ids = check_model(model, x)
    rng = np.random.default_rng(opts.seed)
    eps = opts.step_size if opts.step_size is not None else \
        STEP_FRACTION * float(x[:, ids].std(axis=0).min())
    if not eps > 0:
        raise UserError("the data do not vary (sd 0): give --step-size")
    fams = sorted({f.name for f in model.vars.values() if f.sampled})
    grad = compiled_gradient(model, fams)
    buffer = Buffer(x, ids, opts.chains, rng)
    theta = model.params.theta
    optimizer = make_optimizer(opts, len(theta))
    base_lr, history, step = optimizer.lr, [], 0
    total = opts.epochs * -(-data.rows // opts.batch_size)
    for epoch in range(1, opts.epochs + 1):
        start, gap_sum, batches = time.perf_counter(), np.zeros(len(theta)), 0
        order = rng.permutation(data.rows)
        for b in range(0, data.rows, opts.batch_size):
            batch = order[b:b + opts.batch_size]
            pick = rng.integers(0, opts.chains, len(batch))
            chains = buffer.states[pick]
            restart = rng.random(len(batch)) < REINIT
            chains[restart] = buffer.fresh(int(restart.sum()), rng)
            langevin_steps(grad, chains, theta, ids, eps, opts.langevin_steps, rng)
            if not np.isfinite(chains[:, ids]).all():
                raise UserError(f"the langevin chains diverged at epoch {epoch} (step size "
                                f"{eps:.3g}): give a smaller --step-size or --lr")
            buffer.states[pick] = chains
            w = np.full(len(batch), 1.0 / len(batch))
            gap = expected_stats(model, x[batch], w) - expected_stats(model, chains, w)
            if opts.schedule == "linear":
                optimizer.lr = base_lr * (1.0 - step / total)
            step += 1
            checked_step(model, opts, optimizer, theta, gap, epoch, b, history,
                         method="pcd-langevin")
            gap_sum, batches = gap_sum + gap, batches + 1
        entry = {"epoch": epoch, "lr": float(optimizer.lr), "metric": None, "value": None,
                 "gaps": param_gaps(model, gap_sum / batches), "step_size": eps,
                 "seconds": round(time.perf_counter() - start, 4)}
        history.append(entry)
        if opts.progress is not None:
            opts.progress(entry, opts)
    return FitResult(model.params.to_dict(), history, "pcd-langevin")

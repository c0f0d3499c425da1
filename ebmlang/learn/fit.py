"""Learning: the gradient of the log-likelihood is E_data[dF/dtheta] - E_model[dF/dtheta].

- pcd: persistent chains for the model phase (--chains of them; one per training row for a
  conditional model, whose inputs stay clamped), k Gibbs sweeps per update.
- cd: k Gibbs sweeps from the minibatch itself.
- pl: pseudo-likelihood, no chains (fully observed models).
- exact: the model phase (and the latent posterior) by enumeration, L-BFGS to convergence.

The data phase sums latents out exactly when no factor joins two of them (the RBM's hidden
units); otherwise, and wherever a data cell is missing, it runs Gibbs chains with the observed
values clamped, persistent per training row.
"""

from __future__ import annotations

import time

import numpy as np

from ebmlang.io.data import Data, load_data
from ebmlang.errors import UserError
from ebmlang.backends.fused import FusedModel, Marginal
from ebmlang.backends.fused_pcd import GAP_BOUND, BipartitePCD
from ebmlang.infer.sample import adapt_scales, reset_scales
from ebmlang.infer.summed import SummedOut
from ebmlang.learn.gradient import expected_stats, pseudo_available, pseudo_gradient, pseudo_parts
from ebmlang.learn.metrics import Metric
from ebmlang.learn.options import FitOptions
from ebmlang.learn.optim import ProvedSteps, make_optimizer
from ebmlang.learn.result import Diverged, FitResult, checked_step
from ebmlang.learn.result import param_at as _param_at, param_gaps as _gaps
from ebmlang.backends.runtime import gibbs_step

WARM_UP = 50        # sweeps of the chains before the first update, where they run HMC / MALA
ADAPT_AFTER = 1000  # MH proposals of a part (all its chains and variables) per scale update


class _Phases:
    """The data and model phases of one fit, with their persistent states."""

    def __init__(self, model, data: Data, opts: FitOptions, rng):
        self.model, self.opts, self.rng = model, opts, rng
        self.clamp = data.x
        self.latent = model.state_ids(("latent",))
        self.missing = np.isnan(data.x[:, model.state_ids(("var",))]).any(axis=1)
        self.any_missing = bool(self.missing.any())
        self.summed = None
        if len(self.latent) and SummedOut.independent(model, self.latent):
            self.summed = SummedOut(model, self.latent)
        self.rows = _fill(model, data.x, rng)             # data with latents and gaps filled
        self._sweeper = None                               # (parts, sweeps), built on first use
        from ebmlang.infer.hmc import with_default_hmc     # the chains run HMC where `sample`
        self.sampling = with_default_hmc(model) if opts.tempering == 1 else model  # does
        self.move = None                                   # the chains' HMC / MALA move, if any
        self.has_inputs = len(model.state_ids(("input",))) > 0
        self.fused = None                                  # the fused update, where it applies
        if opts.backend == "auto" and opts.method in ("pcd", "cd") and not self.has_inputs:
            self.fused = FusedModel.build(model)
        self.marginal = self.summed                       # log p(x) with the latents summed out
        if self.fused is not None and self.summed is not None:
            self.marginal = Marginal(self.fused, model, [p.family for p in self.summed.parts])
        self.gaussian = any(m == "gaussian" for m, _, _ in model.methods.values())
        if opts.method == "pl" and (len(self.latent) or self.missing.any()):
            raise UserError("method pl needs every variable observed: the model has latent "
                            "variables or the data has missing values; use pcd or cd")
        if opts.method == "pl" and not pseudo_available(model):
            raise UserError("method pl needs conditionals that normalize in closed form (finite "
                            "or Gaussian); this model has MH-sampled families; use pcd or cd")
        self.pl_parts = pseudo_parts(model) if opts.method == "pl" else None
        if self.has_inputs:
            self.chains = self.rows.copy()                 # one persistent chain per row
        else:
            start = _fill(model, np.full((opts.chains, model.checked.n_state), np.nan), rng)
            self.chains = start
        self.replicas = None                               # parallel tempering, when asked
        if opts.tempering != 1:
            from ebmlang.infer.hmc import gradient_families
            if gradient_families(model):
                raise UserError("parallel tempering does not run hmc or mala families yet; use "
                                "sampler mh for them, or no --tempering")
            from ebmlang.infer.tempering import Replicas
            self.replicas = Replicas(model, self.chains, None, opts.tempering,
                                     opts.tempering_min, [self._tempered_sweep],
                                     compiled=opts.backend != "numpy")
        # the states the model side of the stats is read from: pcd's chains, cd's last
        # k-sweep samples; none for pl, which matches conditionals at the data, not stats
        self.model_states = None if opts.method == "pl" else self.chains
        self.bipartite = None                              # a binary RBM's in-place update
        if opts.method == "pcd" and opts.k == 1 and self.replicas is None and \
                not self.any_missing and self.summed is not None:
            self.bipartite = BipartitePCD.build(self.fused, model,
                                                [p.family for p in self.summed.parts])
        if self.bipartite is not None:
            self.bipartite.start(self.rows, self.chains, opts.batch_size, model.checked.n_theta)

    def gap(self, batch: np.ndarray) -> np.ndarray:
        """E_data[dF/dtheta] - E_model[dF/dtheta] for one minibatch, after the model phase's
        sweeps; for a binary RBM one in-place update (`BipartitePCD`), whose chains `sync`
        writes back to `chains`."""
        if self.bipartite is not None:
            return self.bipartite.gap(batch, self.model.params.theta, self.rng)
        return self.positive(batch) - self.negative(batch)

    def warm_up(self) -> None:
        """Where the chains run an HMC / MALA move or adapt an MH scale: WARM_UP sweeps of
        them at the initial params before the first update, so that the step (or scale) has
        adapted from its first guess and the chains have left their N(0, 1) start (else the
        first updates, with large steps from stale chains, can throw the params far off)."""
        from ebmlang.infer.hmc import gradient_families
        adaptive = any(m[0] == "mh" and m[2] for m in self.sampling.methods.values())
        if self.replicas is not None or self.fused is not None or not (
                adaptive or gradient_families(self.sampling)):
            return
        for _ in range(WARM_UP):
            self.sweep(self.chains)
        if self.move is not None:
            self.move.take_tally()        # the epochs report their own moves

    def sync(self) -> None:
        if self.bipartite is not None:
            self.bipartite.write_chains(self.chains)

    def positive(self, batch: np.ndarray) -> np.ndarray:
        model, w = self.model, np.full(len(batch), 1.0 / len(batch))
        x = self.rows[batch]
        if self.opts.method == "pl":
            return pseudo_gradient(model, x, w, self.pl_parts)
        missing = self.any_missing and self.missing[batch].any()
        exact = self.summed is not None and not missing
        if exact and self.fused is not None:
            return self.fused.summed_stats(x, model.params.theta,
                                           [p.family for p in self.summed.parts])
        if exact:
            return self.summed.expected_stats(x, w)
        if len(self.latent) or missing:
            self.sweep(x, self.clamp[batch])
            self.rows[batch] = x
        return self.stats(x)

    def negative(self, batch: np.ndarray) -> np.ndarray:
        model, opts = self.model, self.opts
        if opts.method == "pl":
            return np.zeros(model.checked.n_theta)
        if opts.method == "cd":
            x = self.rows[batch].copy()
        elif self.has_inputs:
            x = self.chains[batch]
        else:
            x = self.chains
        if self.replicas is not None:
            x = self.replicas.persistent(batch if self.has_inputs else None, opts.k, self.rng,
                                         model.params.theta)
        for _ in range(opts.k if self.replicas is None else 0):
            self.cluster_sweep(x, self.rng)
            self.sweep(x)
        if opts.method == "pcd":
            if self.has_inputs:
                self.chains[batch] = x
            else:
                self.chains = x
        self.model_states = self.chains if opts.method == "pcd" else x
        return self.stats(x)

    def sweep(self, x: np.ndarray, clamp: np.ndarray | None = None) -> None:
        """One Gibbs sweep of x in place: fused where it applies, otherwise the block parts of
        the backend, compiled on first use."""
        theta = self.model.params.theta
        if self.fused is not None:
            self.fused.sweep(x, theta, self.rng, clamp)
            return
        if self._sweeper is None:
            self._sweeper = self._build_sweeper()
        parts, model_step, data_step = self._sweeper
        (model_step if clamp is None else data_step)(parts, x, theta, self.rng, clamp)
        if clamp is None:                     # adaptive MH scales follow the changing model
            adapt_scales(parts, at_least=ADAPT_AFTER)

    def _build_sweeper(self):
        """(parts, model-phase sweep, data-phase sweep): the block parts of the backend, each
        sweep followed by the joint HMC / MALA move of the families sampled so (`fit_moves`),
        one move (and step size) for the chains and one for the clamped data rows; the
        adaptive MH scales move toward acceptance 0.44 after every ADAPT_AFTER proposals of
        the model phase, never frozen (the params change every update, as for the HMC step;
        each kernel leaves the current model invariant). A family on HMC by default keeps
        its random-walk MH update before the move: where the gradient grows faster than
        linearly (x^4), a chain left in the tail by a jump of the params diverges at every
        leapfrog step the bulk allows, and MH brings it back."""
        from ebmlang.infer.hmc import fit_moves
        parts, step = _sweeper(self.model, self.opts.backend)
        reset_scales(self.model, parts)       # the declared scales, whatever ran before
        (model_step, self.move), (data_step, _) = fit_moves(self.sampling, step), \
            fit_moves(self.sampling, step)
        return parts, model_step, data_step

    def _tempered_sweep(self, x, theta, rng, clamp, beta) -> None:
        """`sweep` with chain c at inverse temperature beta[c] (the replicas' sweep kind),
        cluster moves first where they apply."""
        self.cluster_sweep(x, rng, clamp, beta)
        if self.fused is not None:
            self.fused.sweep(x, theta, rng, clamp, beta)
            return
        if self._sweeper is None:
            self._sweeper = self._build_sweeper()
        from ebmlang.infer.tempering import tempered_sweep
        tempered_sweep(self._sweeper[0], x, theta, rng, clamp, beta)

    def cluster_sweep(self, x: np.ndarray, rng, clamp=None, beta=1.0) -> None:
        """One cluster move of every group where cluster moves apply (`cluster_moves`), at
        inverse temperature beta (one per chain, or a number): the model phase's chains mix
        where single-site Gibbs stalls. None where the fused sweep runs: it draws each family
        whole by exact block Gibbs, and the params change every minibatch, so the moves would
        tabulate every pair's K again each step (392,000 at 784 x 500: 80% of a PCD epoch,
        bench/pcd_sklearn.py --profile)."""
        if self.fused is not None:
            return
        if getattr(self, "_moves", None) is None:
            from ebmlang.infer.cluster_moves import cluster_moves
            self._moves = cluster_moves(self.model) or False
        if self._moves:
            self._moves.sweep(x, self.model.params.theta, rng, clamp, beta)

    def stats(self, x: np.ndarray) -> np.ndarray:
        """The average of dF/dtheta over the rows of x."""
        if self.fused is not None:
            return self.fused.stats(x, self.model.params.theta)
        return expected_stats(self.model, x, np.full(len(x), 1.0 / len(x)))


def _sweeper(model, backend: str):
    """(block parts, sweep function): compiled numba parts, except where every update of a
    part is a contraction (einsum, the RBM's matrix products, faster than a per-instance
    kernel) or the backend is numpy."""
    if backend == "numpy":
        return model.parts(), gibbs_step
    if backend == "auto":
        from ebmlang.backends.preact import PreactPart, preact_step, why_not
        if why_not(model) is None:
            return [[PreactPart(model)]], preact_step
    from ebmlang.backends.numba_backend import gibbs_step as mixed_step
    compiled, plain = model.parts("numba"), model.parts()
    if backend == "auto":
        compiled = [[p if any(t.dense for t in plain[b][q].touches) else c
                     for q, (c, p) in enumerate(zip(cblock, plain[b]))]
                    for b, cblock in enumerate(compiled)]
    return compiled, mixed_step


def _fill(model, x: np.ndarray, rng) -> np.ndarray:
    """Copy of x with every NaN of a sampled variable replaced by a uniform random value."""
    out = x.copy()
    for f in model.vars.values():
        if not f.sampled:
            continue
        sl = slice(f.offset, f.offset + f.space.size)
        block = out[:, sl]
        gaps = np.isnan(block)
        if f.domain.finite:
            block[gaps] = f.domain.values[rng.integers(0, f.domain.size, int(gaps.sum()))]
        else:
            block[gaps] = rng.standard_normal(int(gaps.sum()))
        out[:, sl] = block
    return out


def _keep_proper(model, phases, good, theta, epoch) -> None:
    """Shrink a step that would make a Gaussian conditional improper; stop if none is proper."""
    from ebmlang.infer.proper import improper
    delta = theta - good
    for _ in range(40):
        if improper(model, phases.chains) is None:
            return
        delta *= 0.5
        theta[:] = good + delta
    theta[:] = good
    err = improper(model, phases.chains)
    if err is not None:
        raise Diverged(f"the fit stopped at epoch {epoch}: {err.message}")


def _checked_step(model, phases, optimizer, theta, gap, epoch, b, history) -> None:
    """`result.checked_step`, with a Gaussian conditional kept proper (the step `ProvedSteps`
    could not prove safe)."""
    fix = (lambda good, th: _keep_proper(model, phases, good, th, epoch)) if phases.gaussian \
        else None
    checked_step(model, phases.opts, optimizer, theta, gap, epoch, b, history, fix=fix,
                 stopping=phases.sync)


def fit(model, data, **kwargs) -> FitResult:
    """Fit the params to data; updates model.params in place and returns the history."""
    opts = FitOptions(**kwargs)
    opts.check()
    data = load_data(model, data)
    if opts.method == "exact":
        from ebmlang.learn.fit_exact import fit_exact
        return fit_exact(model, data, opts)
    if opts.method == "sm":
        from ebmlang.learn.score_matching import fit_sm
        return fit_sm(model, data, opts)
    if opts.method == "nce":
        from ebmlang.learn.nce import fit_nce
        return fit_nce(model, data, opts)
    if opts.sampler == "langevin":
        from ebmlang.learn.langevin import fit_langevin
        return fit_langevin(model, data, opts)
    rng = np.random.default_rng(opts.seed)
    phases = _Phases(model, data, opts, rng)
    phases.warm_up()
    theta = model.params.theta
    optimizer = make_optimizer(opts, len(theta))
    proved = ProvedSteps(opts, theta, GAP_BOUND if phases.bipartite else None, phases.gaussian)
    metric = Metric(model, data, phases, rng)
    history = []
    base_lr = optimizer.lr
    epoch_start = theta.copy()
    total = opts.epochs * -(-data.rows // opts.batch_size)
    step = 0
    for epoch in range(1, opts.epochs + 1):
        start, gap_sum, batches = time.perf_counter(), np.zeros(len(theta)), 0
        order = rng.permutation(data.rows)
        for b in range(0, data.rows, opts.batch_size):
            batch = order[b:b + opts.batch_size]
            gap = phases.gap(batch)
            if opts.schedule == "linear":
                optimizer.lr = base_lr * (1.0 - step / total)
            step += 1
            if not proved.apply(theta, gap, optimizer.lr, gap_sum):  # provably finite: unchecked
                _checked_step(model, phases, optimizer, theta, gap, epoch, b, history)
                gap_sum += gap
            batches += 1
        phases.sync()
        with np.errstate(all="ignore"):
            measured = metric.evaluate()
        if measured["value"] is not None and not np.isfinite(measured["value"]):
            theta[:] = epoch_start
            err = Diverged(f"the fit diverged: the {measured['metric']} became "
                           f"{measured['value']} at epoch {epoch} (largest param "
                           f"{_param_at(model, int(np.argmax(np.abs(theta))))}); the params are "
                           "left at the start of that epoch (try a smaller --lr)")
            err.result = FitResult(model.params.to_dict(), history, opts.method)
            raise err
        epoch_start = theta.copy()
        entry = {"epoch": epoch, "lr": float(optimizer.lr), **measured, "gaps": _gaps(model, gap_sum / batches),
                 "stats": metric.stats(), "seconds": round(time.perf_counter() - start, 4)}
        if phases.move is not None:       # the chains' HMC / MALA move over this epoch
            entry["gradient_move"] = phases.move.take_tally()
            if opts.method != "pcd" or phases.has_inputs:   # other rows each update
                entry["gradient_move"]["unmoved"] = None
        history.append(entry)
        if opts.progress is not None:
            opts.progress(entry, opts)
    return FitResult(model.params.to_dict(), history, opts.method)

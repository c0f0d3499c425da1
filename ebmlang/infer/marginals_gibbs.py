"""Marginals from Gibbs draws, the last resort: each value's frequency over the chains, with
its Monte Carlo standard error (ArviZ's, from the effective sample size) and a warning when
the chains have not mixed (split R-hat above 1.01) or few draws are effective."""

from __future__ import annotations

import math

import numpy as np

from ebmlang.infer.diagnostics import bulk_ess, mcse_mean, split_rhat

RHAT_LIMIT = 1.01
MIN_ESS = 100          # bulk ESS per variable below this: a warning


def by_gibbs(model, x0, clamp: dict[int, float], res, domains, seed=None, sweeps: int = 1000,
             chains: int = 4, ray=None):
    """Fill `res` (a `marginals.Marginals`) from `chains` chains of `sweeps` kept sweeps
    (after the sampler's default burn-in of half as many); `domains`: (state ids, names,
    domain values) of the sampled variables."""
    input_ids = model.state_ids(("input",))
    inputs = x0[:, input_ids] if len(input_ids) else None
    row = None
    if clamp:
        row = np.full((1, model.checked.n_state), np.nan)
        for i, v in clamp.items():
            row[0, i] = v
    samples = model.sample(draws=sweeps, chains=chains, seed=seed, inputs=inputs, clamp=row,
                           ray=ray)
    full = samples.full                                   # (chains, draws, n_state)
    ids, names, values = domains
    probs, ses, worst_rhat, unmixed, few, least = [], [], 1.0, [], [], math.inf
    for i, name, vals in zip(ids, names, values):
        col = full[:, :, int(i)]
        p, se = [], []
        for v in vals:
            ind = (col == v).astype(float)
            p.append(ind.mean())
            s = mcse_mean(ind)
            se.append(s if math.isfinite(s) else math.sqrt(max(p[-1] * (1 - p[-1]), 0)
                                                         / ind.size))
        probs.append(np.array(p))
        ses.append(np.array(se))
        if int(i) not in clamp and not np.all(col == col.flat[0]):
            rh = split_rhat(col.astype(float))
            if not rh <= RHAT_LIMIT:                      # NaN counts as unmixed
                unmixed.append(name)
                worst_rhat = max(worst_rhat, rh) if math.isfinite(rh) else math.inf
            ess = bulk_ess(col.astype(float))
            if not ess >= MIN_ESS:
                few.append(name)
                least = min(least, ess) if math.isfinite(ess) else least
    res.names, res.values, res.probs, res.se = names, values, probs, ses
    res.detail = f"{chains} chains x {sweeps} draws of Gibbs sweeps; +- Monte Carlo standard errors"
    stats = model.stat_values(full.reshape(-1, full.shape[-1]))
    res.stats = {k: v.mean(axis=0) for k, v in stats.items()}
    if res.stats:
        res.stats_note = "stat means are Monte Carlo estimates"
    if unmixed:
        res.warnings.append(
            f"warning: the chains have not mixed for {len(unmixed):,} variables (split R-hat "
            f"up to {worst_rhat:.3g} > {RHAT_LIMIT}, e.g. {', '.join(unmixed[:3])}): these "
            "marginals are unreliable; use more --sweeps, or an exact method")
    if few:
        low = f"as few as {least:.0f}" if math.isfinite(least) else "too few to estimate"
        res.warnings.append(
            f"warning: few effective draws for {len(few):,} variables (bulk ESS {low} < "
            f"{MIN_ESS}, e.g. {', '.join(few[:3])}): their marginals and standard errors are "
            "rough; use more --sweeps, or an exact method")
    return res

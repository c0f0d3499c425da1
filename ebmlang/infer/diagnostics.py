"""Convergence diagnostics: rank-normalized split R-hat, bulk and tail effective sample size
and the Monte Carlo standard errors of the mean and sd (Vehtari, Gelman, Simpson, Carpenter
and Buerkner 2021, the definitions ArviZ and Stan use), for every declared stat and for the
energy; the summary table of `Samples.summary()`; and export of draws to ArviZ when it is
installed.

Tested against ArviZ's values on fixed inputs.
"""

from __future__ import annotations

import math

import numpy as np

RHAT_WARN = 1.01


def _normal_ppf(p: np.ndarray) -> np.ndarray:
    """Inverse of the standard normal CDF (scipy's ndtri)."""
    from scipy.special import ndtri
    return ndtri(p)


def _rank_normalize(x: np.ndarray) -> np.ndarray:
    """z-scores of the pooled ranks (average ranks for ties), with the Blom offset."""
    from scipy.stats import rankdata
    ranks = rankdata(x, method="average").reshape(x.shape)
    return _normal_ppf((ranks - 0.375) / (x.size + 0.25))


def _split(x: np.ndarray) -> np.ndarray:
    """(chains, draws) -> (2 chains, draws // 2): each chain cut in half."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, -half:]], axis=0)


def _rhat(x: np.ndarray) -> float:
    m, n = x.shape
    means = x.mean(axis=1)
    within = x.var(axis=1, ddof=1).mean()
    between = n * means.var(ddof=1)
    if within == 0:   # every split chain stuck: apart (never mixed) or all at one value
        return math.inf if between > 0 else math.nan
    var_hat = (n - 1) / n * within + between / n
    return float(np.sqrt(var_hat / within))


def split_rhat(x: np.ndarray) -> float:
    """Rank-normalized split R-hat of draws (chains, draws): the max of the bulk and the
    folded (tail) versions."""
    x = np.asarray(x, float)
    if x.shape[1] < 4 or np.all(x == x.flat[0]):
        return math.nan
    split = _split(x)
    bulk = _rhat(_rank_normalize(split))
    folded = np.abs(split - np.median(split))
    tail = _rhat(_rank_normalize(folded))
    return max(bulk, tail)


def _autocov(x: np.ndarray) -> np.ndarray:
    """Autocovariance of each row, by FFT."""
    n = x.shape[1]
    size = 2 ** int(np.ceil(np.log2(2 * n)))
    centred = x - x.mean(axis=1, keepdims=True)
    f = np.fft.rfft(centred, size, axis=1)
    acov = np.fft.irfft(f * np.conjugate(f), size, axis=1)[:, :n]
    return acov / n


def _ess(x: np.ndarray) -> float:
    """Effective sample size of (chains, draws) with Geyer's initial monotone sequence."""
    m, n = x.shape
    acov = _autocov(x)
    chain_mean = x.mean(axis=1)
    chain_var = acov[:, 0] * n / (n - 1)
    within = chain_var.mean()
    var_plus = within * (n - 1) / n
    if m > 1:
        var_plus += chain_mean.var(ddof=1)
    if var_plus <= 0:
        return math.nan
    rho = 1 - (within - acov.mean(axis=0)) / var_plus
    rho[0] = 1.0
    last = _positive_pairs(rho)
    tau = -1 + 2 * rho[: last + 1].sum() + rho[last + 1: last + 2].sum()
    tau = max(tau, 1 / np.log10(m * n))
    return float(m * n / tau)


def _positive_pairs(rho: np.ndarray) -> int:
    """Geyer's initial positive then initial monotone sequence over pairs of
    autocorrelations (Stan's estimator); edits rho in place, returns the last lag kept."""
    n = len(rho)
    t = 1
    even, odd = rho[0], rho[1]
    while t < n - 3 and even + odd > 0:
        even, odd = rho[t + 1], rho[t + 2]
        if even + odd < 0:
            rho[t + 1] = rho[t + 2] = 0.0  # not kept
        t += 2
    last = t - 2
    if even > 0 and last + 1 < n:
        rho[last + 1] = even
    t = 1
    while t <= last - 2:
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
            rho[t + 1] = rho[t + 2] = (rho[t - 1] + rho[t]) / 2
        t += 2
    return last


def bulk_ess(x: np.ndarray) -> float:
    """Bulk effective sample size: the ESS of the rank-normalized split chains."""
    x = np.asarray(x, float)
    if x.shape[1] < 4 or np.all(x == x.flat[0]):
        return math.nan
    return _ess(_rank_normalize(_split(x)))


def _ess_split(x: np.ndarray) -> float:
    """ESS of the split chains of x as they are (not rank-normalized), ArviZ's `_ess_mean`;
    a constant series (an indicator never or always true) counts every draw, as in ArviZ."""
    split = _split(np.asarray(x, float))
    if np.ptp(split) < np.finfo(float).resolution:
        return float(split.size)
    return _ess(split)


def tail_ess(x: np.ndarray) -> float:
    """Tail effective sample size: the smaller ESS of the indicators x <= q05 and x <= q95
    (quantiles of the pooled draws, numpy's linear rule, R's type 7, as ArviZ)."""
    x = np.asarray(x, float)
    if x.shape[1] < 4 or _constant(x):
        return math.nan
    return min(_ess_split(x <= np.quantile(x, p)) for p in (0.05, 0.95))


def mcse_mean(x: np.ndarray) -> float:
    """Monte Carlo standard error of the mean: sd / sqrt(ESS of the mean) (ArviZ's)."""
    x = np.asarray(x, float)
    if x.shape[1] < 4:
        return math.nan
    return 0.0 if _constant(x) else float(np.std(x, ddof=1) / np.sqrt(_ess_split(x)))


def mcse_sd(x: np.ndarray) -> float:
    """Monte Carlo standard error of the sd, by the delta method on the squared deviations
    (ArviZ's, after Vehtari et al. 2021): sqrt(Var(c^2) / ESS(c^2) / (4 E[c^2]))."""
    x = np.asarray(x, float)
    if x.shape[1] < 4:
        return math.nan
    if _constant(x):
        return 0.0
    c2 = (x - x.mean()) ** 2
    evar = c2.mean()
    varvar = ((c2 ** 2).mean() - evar ** 2) / _ess_split(c2)
    return float(np.sqrt(varvar / evar / 4))


def _constant(x: np.ndarray) -> bool:
    return bool(np.all(x == x.flat[0]))


def is_constant(x: np.ndarray) -> bool:
    """Whether a series (chains, draws) takes one value: it has no R-hat nor ESS to report."""
    return _constant(np.asarray(x, float))


SUMMARY_COLUMNS = ("mean", "sd", "mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat")


def summary_table(series: dict[str, np.ndarray]):
    """ArviZ's summary columns for each series (chains, draws): mean, sd (ddof 1), MCSE of
    both, bulk and tail ESS, rank-normalized split R-hat (NaN for one chain, as ArviZ; NaN
    ESS and R-hat for a constant series, where ArviZ reports an ESS of every draw). A
    pandas DataFrame when pandas is installed, else a `table.Table`."""
    from ebmlang.table import make_table
    rows = []
    for x in series.values():
        x = np.asarray(x, float)
        rows.append((float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else math.nan,
                     mcse_mean(x), mcse_sd(x), bulk_ess(x), tail_ess(x),
                     split_rhat(x) if x.shape[0] > 1 else math.nan))
    return make_table(rows, SUMMARY_COLUMNS, list(series))


def samples_summary(samples):
    """`summary_table` of kept draws: the energy (-log p - log Z) and every stat, an indexed
    stat one row per element (`m[0,1]`)."""
    from ebmlang.io.csvio import format_ground_name
    c, d = samples.chains, samples.draws
    series = {"energy": -samples.log_potential()}
    for name, vals in samples.stats().items():
        stat = samples.model.checked.stats[name]
        if stat.index is None:
            series[name] = vals
            continue
        flat = vals.reshape(c, d, -1)
        cols = [col.tolist() for col in stat.space.columns()]
        for k, idx in enumerate(zip(*cols)):
            series[format_ground_name(name, idx)] = flat[:, :, k]
    return summary_table(series)


def summarize(samples) -> list[tuple[str, float, float, float]]:
    """(name, mean, R-hat, bulk ESS) for the energy and every scalar summary of each stat
    (indexed stats: their mean over elements). `samples`: kept `Samples` or a `Trace`."""
    trace = samples.trace() if hasattr(samples, "trace") else samples
    rows = []
    series = {"energy": trace.energy, **trace.series}
    for name, x in series.items():
        rows.append((name, float(x.mean()), split_rhat(x), bulk_ess(x)))
    return rows


def warnings_for(rows) -> list[str]:
    return [f"warning: R-hat of {name} is {rhat:.3f} > {RHAT_WARN}: the chains have not mixed; "
            "run longer (more --burn-in and -n) or check for several modes"
            for name, _, rhat, _ in rows if not math.isnan(rhat) and rhat > RHAT_WARN]


def to_inference_data(samples):
    """The draws as ArviZ InferenceData (posterior: one variable per family, plus stats and
    the energy in sample_stats). Needs arviz: `pip install arviz`."""
    try:
        import arviz as az
    except ImportError:
        from ebmlang.errors import UserError
        raise UserError("exporting to ArviZ needs arviz: pip install arviz") from None
    model = samples.model
    posterior = {f.name: samples[f.name] for f in model.vars.values() if f.sampled}
    stats = {"energy": -samples.log_potential()}
    stats.update(samples.stats())
    return az.from_dict(posterior=posterior, sample_stats=stats)

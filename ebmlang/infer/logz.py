"""The partition function: log Z by enumeration, by variable elimination, or estimated by
annealed importance sampling, with `auto` choosing the cheapest exact method that fits.

    log Z = log sum_x exp F(x)      (an integral over real-valued variables)

Enumeration (`ebmlang.infer.exact`) and elimination (`ebmlang.infer.elimination`) are exact to rounding.
AIS (Neal 2001) anneals from a base distribution p0 we can sample and normalize (uniform over
each finite domain, N(0, 1) for a real variable) to exp F along

    gamma_b(x) = p0(x)^(1 - b) * exp(b * F(x)),    b from 0 to 1,

with one Gibbs sweep at each b, and averages the importance weights of independent chains; it
reports a standard error by the delta method and the effective sample size of the weights.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ebmlang.errors import UserError
from ebmlang.infer.exact import (
    MAX_STATES,
    exact_log_z_available,
    log_partition,
    logsumexp,
    state_count,
)
from ebmlang.backends import tempered

METHODS = ("auto", "exact", "ve", "ais")
SCHEDULES = ("sigmoid", "linear")


class LogZ(NamedTuple):
    """log Z and how it was found; `se` is None when the value is exact."""

    value: float
    se: float | None
    method: str               # exact | ve | ais
    detail: str               # what it did: states enumerated, elimination width, AIS runs
    why: str = ""             # why this method: "requested", or what `auto` saw
    width: int | None = None  # elimination width (ve)
    ess: float | None = None  # effective sample size of the AIS weights
    logw: np.ndarray | None = None  # the AIS runs' log-weights


def logz(model, method: str = "auto", inputs=None, params=None, seed=None, chains: int = 100,
         steps: int = 1000, schedule: str = "sigmoid", progress: bool | None = False,
         jobs=None) -> LogZ:
    """log Z of the model (conditioned on `inputs`, one row, for a conditional model).
    `chains`, `steps`, `schedule`, `seed`, `progress` and `jobs` are for AIS."""
    if method not in METHODS:
        raise UserError(f"unknown logz method '{method}'; use one of {', '.join(METHODS)}")
    model.params.update(params)
    x0 = _base_state(model, inputs)
    if method == "auto":
        method, why, the_plan = choose(model)
    else:
        why, the_plan = "requested", None
    if method == "exact":
        return _exact(model, x0, why)
    if method == "ve":
        return _ve(model, x0, why, the_plan)
    return ais(model, x0, why, seed=seed, chains=chains, steps=steps, schedule=schedule,
               progress=progress, jobs=jobs)


def _base_state(model, inputs) -> np.ndarray:
    """A state (1, n_state) holding the inputs; UserError when they are missing or not one row."""
    x0 = np.zeros((1, model.checked.n_state))
    ids = model.state_ids(("input",))
    if not len(ids):
        if inputs is not None and np.size(inputs):
            raise UserError("the model has no input variables; inputs are not needed")
        return x0
    names = ", ".join(f.name for f in model.vars.values() if f.kind == "input")
    if inputs is None:
        raise UserError(f"the model has inputs ({names}) and its log Z depends on them: give "
                        "one row of input values with --input X.csv (Python: inputs=...)")
    if isinstance(inputs, dict):
        from ebmlang.infer.sample import _inputs_from_dict
        inputs = _inputs_from_dict(model, inputs)
    vals = np.atleast_2d(np.asarray(inputs, float))
    if vals.shape[0] != 1:
        raise UserError(f"log Z is computed for one input row at a time; got {vals.shape[0]} rows")
    if vals.shape[1] != len(ids):
        raise UserError(f"inputs have {vals.shape[1]} columns, the model has {len(ids)} input "
                        "variables")
    x0[:, ids] = vals
    return x0


# ---------------------------------------------------------------- choosing a method

def choose(model):
    """(method, why, elimination plan or None): exact when the states can be enumerated
    (perhaps with one conditionally independent group summed out), else elimination when the
    tables of a heuristic order are small (the width alone does not say: domains differ in
    size), else AIS."""
    from ebmlang.infer.elimination import (
        MAX_TABLE,
        MAX_WORK,
        SCREEN_WIDTH,
        count_text,
        interaction_graph,
        plan,
        wider_than,
    )
    count = state_count(model)
    if count < 0:
        return "ais", "real-valued variables, and exact methods need finite domains", None
    if exact_log_z_available(model):
        return "exact", "small enough to enumerate", None
    states = f"{count_text(count)} states are too many to enumerate"
    try:
        wide = wider_than(interaction_graph(model), SCREEN_WIDTH)    # quick and loose
        the_plan = None if wide else plan(model)
    except UserError as err:
        return "ais", f"{states}, and {err.message}", None
    if the_plan is None:
        return "ais", (f"{states}, and greedy min-degree elimination is wider than "
                       f"{SCREEN_WIDTH}: too wide for variable elimination"), None
    if the_plan.quick:
        return "ve", f"{states}, but the elimination tables are small", the_plan
    return "ais", (f"{states}, and with {the_plan.describe()} and {count_text(the_plan.work)} "
                   f"in all, variable elimination is too costly (at most {count_text(MAX_TABLE)} "
                   f"entries in a table, {count_text(MAX_WORK)} in all)"), None


def _exact(model, x0, why: str) -> LogZ:
    ids = model.state_ids(("input",))
    value = log_partition(model, x0[0, ids] if len(ids) else None)
    count = state_count(model)
    how = (f"enumerated {count:,} states (at most {MAX_STATES:,})" if 0 < count <= MAX_STATES
           else "summed one conditionally independent group out in closed form and enumerated "
           "the rest")
    return LogZ(value, None, "exact", how, why)


def _ve(model, x0, why: str, the_plan) -> LogZ:
    from ebmlang.infer.elimination import log_partition_ve
    value, the_plan = log_partition_ve(model, x0, the_plan)
    return LogZ(value, None, "ve", the_plan.describe(), why, width=the_plan.width)


# ---------------------------------------------------------------- annealed importance sampling

def betas(steps: int, schedule: str = "sigmoid") -> np.ndarray:
    """steps + 1 inverse temperatures from 0 to 1. The sigmoid schedule (Grosse et al. 2013)
    takes small steps at both ends, where the weights change fastest."""
    if schedule not in SCHEDULES:
        raise UserError(f"unknown schedule '{schedule}'; use one of {', '.join(SCHEDULES)}")
    t = np.linspace(0.0, 1.0, steps + 1)
    if schedule == "linear":
        return t
    s = 1.0 / (1.0 + np.exp(-8.0 * (t - 0.5)))
    return (s - s[0]) / (s[-1] - s[0])


def ais(model, x0, why: str = "requested", seed=None, chains: int = 100, steps: int = 1000,
        schedule: str = "sigmoid", progress: bool | None = False, jobs=None,
        backend: str | None = None) -> LogZ:
    """Annealed importance sampling from p0 to exp F: `chains` independent runs of `steps`
    tempered Gibbs sweeps; log Z = log mean of the weights (p0 is normalized, so Z0 = 1).
    x0 (1, n_state) holds the inputs. `progress`: a tqdm bar (None: only on a terminal).
    The runs go in particle groups (`ebmlang.infer.groups`), each with a seed spawned from
    `seed`, run by `jobs(fn, model, kwargs)` (default: here, in turn; or as Ray tasks).
    `backend`: the kernels' choice (`backends.choice.sweep_parts`; "numpy": the reference)."""
    for name, v in (("chains", chains), ("steps", steps)):
        if int(v) != v or v < 1:
            raise UserError(f"{name} must be an integer >= 1, got {v}")
    from ebmlang.infer import groups
    sizes = groups.particle_groups(chains)
    kw = dict(x0=x0, steps=steps, schedule=schedule, backend=backend)
    if len(sizes) == 1 and jobs is None:
        logw = ais_weights(model, seed=seed, chains=chains, progress=progress, **kw)
    else:
        logw = np.concatenate((jobs or groups.local)(ais_weights, model, [
            dict(kw, seed=sd, chains=n) for n, sd in zip(sizes, groups.seeds(seed, len(sizes)))]))
    if not np.any(np.isfinite(logw)):
        raise UserError("every AIS run met a state of probability 0; use more --chains")
    value, se, ess = weight_summary(logw)
    detail = (f"{chains} chains x {steps} steps, {schedule} schedule, effective sample "
              f"size {ess:.1f} of {chains}")
    if ess < 10:
        detail += " (few effective samples: the standard error is unreliable; add --steps)"
    return LogZ(value, se, "ais", detail, why, ess=ess, logw=logw)


def ais_weights(model, x0, seed, chains: int, steps: int, schedule: str = "sigmoid",
                progress: bool | None = False, backend: str | None = None) -> np.ndarray:
    """The log-weights of `chains` AIS runs driven by one random stream. Each step's sweep
    runs the sampler's kernels at beta (`backends.choice`, `tempering.tempered_sweep`;
    `backend="numpy"`: the numpy reference), F by the compiled energy unless numpy; BLAS
    held to the threads its products are worth (`backends.resources`), as in sampling."""
    from ebmlang.backends.resources import blas_threads, product_flops
    with blas_threads(product_flops(model, chains)):   # the fused sweep's products
        return _ais_weights(model, x0, seed, chains, steps, schedule, progress, backend)


def _ais_weights(model, x0, seed, chains, steps, schedule, progress, backend) -> np.ndarray:
    from ebmlang.infer.tempering import annealing_parts, swap_energy, tempered_sweep
    b = betas(steps, schedule)
    rng = np.random.default_rng(seed)
    x = _draw_base(model, x0, chains, rng)
    theta, parts = model.params.theta, annealing_parts(model, backend)
    energy = swap_energy(model, backend != "numpy")
    from ebmlang.infer.progress import progress_bar
    bar = progress_bar(steps, progress, f"{model.name}: annealing", "step")
    logw = np.zeros(chains)
    for t in range(1, steps + 1):
        # x came from a kernel leaving gamma_b[t-1] invariant: weigh it by gamma_b[t] / gamma_b[t-1]
        logw += (b[t] - b[t - 1]) * (_log_potential(energy, x) - _log_base(model, x))
        if t < steps:
            tempered_sweep(parts, x, theta, rng, None, np.full(chains, b[t]), update=_tempered)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return logw


def weight_summary(logw: np.ndarray) -> tuple[float, float, float]:
    """(log mean w, its standard error by the delta method, effective sample size) from log
    weights: se^2 ~ var(w) / (n mean(w)^2), ess = (sum w)^2 / sum w^2."""
    n = len(logw)
    value = float(logsumexp(logw) - math.log(n))
    rel = np.exp(logw - value)                     # w / mean(w)
    se = float(np.std(rel, ddof=1) / math.sqrt(n)) if n > 1 else float("inf")
    ess = float(n * n / np.sum(rel * rel))
    return value, se, ess


def _log_potential(energy, x) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        f = np.asarray(energy(x), np.float64)
    if np.any(np.isnan(f) | (f == np.inf)):
        raise UserError("annealed importance sampling met a state whose log-potential is NaN or "
                        "+inf, so log Z is not finite")
    return f


def _draw_base(model, x0, chains, rng) -> np.ndarray:
    """Exact draws from p0: uniform over finite domains, N(0, 1) for real variables."""
    x = np.repeat(x0, chains, axis=0)
    for f in model.vars.values():
        if not f.sampled:
            continue
        sl = slice(f.offset, f.offset + f.space.size)
        if f.domain.finite:
            x[:, sl] = f.domain.values[rng.integers(0, f.domain.size, (chains, f.space.size))]
        else:
            x[:, sl] = rng.standard_normal((chains, f.space.size))
    return x


def _log_base(model, x) -> np.ndarray:
    """log p0(x), normalized: - sum log |D| over finite variables, log N(x; 0, 1) over reals."""
    out = np.zeros(x.shape[0])
    for f in model.vars.values():
        if not f.sampled:
            continue
        if f.domain.finite:
            out -= f.space.size * math.log(f.domain.size)
        else:
            v = x[:, f.offset:f.offset + f.space.size]
            out -= 0.5 * (v * v).sum(axis=1) + 0.5 * f.space.size * math.log(2 * math.pi)
    return out


def _tempered(part, x, theta, rng, beta) -> np.ndarray:
    """A numpy part's draw leaving p0^(1 - beta) exp(beta l) invariant (see `tempered`): a
    finite variable (even one sampled by MH in `sample`) from softmax(beta l), its base being
    uniform; a real one with a quadratic conditional exactly, with any other (MH, HMC) by one
    random-walk MH step."""
    if part.method == "gaussian":
        return tempered.tempered_gaussian(part, x, theta, rng, beta, base=1.0)
    if part.values is None:
        return tempered.tempered_mh(part, x, theta, rng, beta, base=1.0, count=False)
    return tempered.tempered_gibbs(part, x, theta, rng, beta)

"""The MAP task: the most probable joint state of the free variables, given the inputs and any
clamped (observed) cells, and imputation of missing cells by clamped Gibbs sampling.

Methods:
- graphcut: exact, for binary, pairwise, submodular models (see `graphcut`).
- icm: iterated conditional modes: each Gibbs block in turn set to its conditional mode (the
  argmax of its local logits; the mean of a Gaussian conditional), until nothing changes. Each
  step cannot lower log p, so it ends at a local optimum: no single variable's change improves.
- anneal: simulated annealing: Gibbs sweeps on the local log-potential times an inverse
  temperature rising geometrically from 0.1 to 10, then ICM; several chains, the best kept.
- auto: graphcut when it applies (and says why), otherwise anneal (and says why not graphcut).

Real-valued families: a Gaussian conditional is annealed by a tempered Gaussian draw and
maximized by its mean; a family sampled by Metropolis-Hastings is annealed by tempered MH and
finished by greedy MH steps, so `icm` refuses it (use anneal). Latent variables are maximized
jointly with the others (the joint MAP, not the marginal one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ebmlang.errors import UserError
from ebmlang.backends.runtime import gibbs_step, local_logits
from ebmlang.backends.tempered import quadratic as _quadratic, tempered_mh, tempered_update

METHODS = ("auto", "graphcut", "ve", "icm", "anneal")
ANNEAL_SWEEPS = 500
BETA0, BETA1 = 0.1, 10.0       # the annealing schedule's inverse temperatures
ICM_SWEEPS = 1000              # at most; ICM stops as soon as nothing changes
WARM_SWEEPS = 20               # Gibbs sweeps at temperature 1 that give ICM its start
GREEDY_SWEEPS = 200            # greedy MH sweeps that finish annealing for MH families
GREEDY_ADAPT = 10              # their step size adapted every this many sweeps
REAL_TOL = 1e-10               # a real value "changes" when it moves more than this (relative)


@dataclass
class MapResult:
    """The MAP state of each row: `states` (rows, n_state) with inputs, `log_potential`
    (log p up to log Z) per row, the method used and why."""

    model: object
    states: np.ndarray
    log_potential: np.ndarray
    method: str
    reason: str
    evidence: list[str] = field(default_factory=list)
    sweeps: int | None = None

    @property
    def names(self) -> list[str]:
        return self.model.ground_names()

    @property
    def values(self) -> np.ndarray:
        """(rows, ground var and latent variables), in the order of `names`."""
        return self.states[:, self.model.state_ids()]

    def __getitem__(self, family: str) -> np.ndarray:
        """(rows, *shape) for a family over plain ranges, else (rows, n)."""
        f = self.model.vars[family]
        block = self.states[:, f.offset:f.offset + f.space.size]
        if f.space.ndim == 0:
            return block[:, 0]
        return block.reshape((len(block),) + f.space.shape) if f.space.dense else block

    def describe(self) -> str:
        """`graphcut (binary, pairwise, submodular)`: the method and why, on one line."""
        return f"{self.method} ({self.reason})"

    def to_csv(self, path) -> None:
        """The MAP CSV: every ground var and latent, then log_potential; one row per row."""
        from ebmlang.io.csvio import write_samples_csv
        ints = [f.domain.integer for f in self.model.vars.values() if f.sampled
                for _ in range(f.space.size)]
        data = np.column_stack([self.values, self.log_potential])
        write_samples_csv(path, self.names + ["log_potential"], data,
                          np.array(ints + [False], bool))


# ---------------------------------------------------------------- rows to optimize

def clamp_rows(model, inputs=None, data=None) -> np.ndarray:
    """(rows, n_state): given values (inputs, observed cells), NaN where free.

    `inputs`: (rows, input variables) in state order, or a dict {family: array}; `data`:
    (rows, n_state) with NaN for missing cells, or anything `load_data` reads."""
    from ebmlang.infer.sample import _inputs_from_dict
    n = model.checked.n_state
    if data is not None and not isinstance(data, np.ndarray):
        from ebmlang.io.data import load_data
        data = load_data(model, data).x
    rows = np.full((1, n), np.nan) if data is None else np.array(data, float, ndmin=2)
    if rows.shape[1] != n:
        raise UserError(f"data rows have {rows.shape[1]} columns, the model has {n} variables")
    in_ids = model.state_ids(("input",))
    if inputs is not None:
        vals = _inputs_from_dict(model, inputs) if isinstance(inputs, dict) else \
            np.array(inputs, float, ndmin=2)
        if vals.shape[1] != len(in_ids):
            raise UserError(f"inputs have {vals.shape[1]} columns, the model has "
                            f"{len(in_ids)} input variables")
        if len(rows) not in (1, len(vals)) and len(vals) != 1:
            raise UserError(f"{len(vals)} input rows but {len(rows)} data rows")
        rows = np.repeat(rows, len(vals), axis=0) if len(rows) == 1 else rows.copy()
        rows[:, in_ids] = vals
    if len(in_ids) and np.isnan(rows[:, in_ids]).any():
        names = [f.name for f in model.vars.values() if f.kind == "input"]
        raise UserError(f"the model has inputs ({', '.join(names)}): give them with "
                        "--input FILE.csv (Python: inputs=...), every cell filled")
    return rows


def free_mask(model, clamp: np.ndarray) -> np.ndarray:
    """(rows, n_state): True for the sampled variables that a row leaves free."""
    sampled = np.zeros(model.checked.n_state, bool)
    sampled[model.state_ids()] = True
    return sampled[None, :] & np.isnan(clamp)


# ---------------------------------------------------------------- the task

def map_estimate(model, inputs=None, data=None, method: str = "auto", seed=None,
                 sweeps: int | None = None, chains: int = 4, params=None) -> MapResult:
    """The MAP state of each row (see the module docstring for the methods)."""
    if method not in METHODS:
        raise UserError(f"unknown MAP method '{method}': use one of {', '.join(METHODS)}")
    model.params.update(params)
    clamp = clamp_rows(model, inputs, data)
    rng = np.random.default_rng(seed)
    if method in ("auto", "graphcut"):
        verdicts = _graphcut_verdicts(model, clamp)
        bad = next((v for v in verdicts if not v[0].ok), None)
        if bad is None:
            return _by_graphcut(model, clamp, verdicts)
        if method == "graphcut":
            raise UserError(f"graph cuts cannot solve this model: {bad[0].reason}; use "
                            "--method ve, anneal or icm")
        plan, why_not = _elimination_plan(model, clamp)
        if plan is not None:
            return _by_elimination(model, clamp, plan,
                                   f"not graphcut: {bad[0].reason}; max-product elimination, "
                                   f"{plan.describe()}")
        return _by_search(model, clamp, "anneal", rng, sweeps, chains,
                          f"not graphcut: {bad[0].reason}; not ve: {why_not}")
    if method == "ve":
        plan, why_not = _elimination_plan(model, clamp)
        if plan is None:
            raise UserError(f"max-product elimination cannot solve this model: {why_not}; use "
                            "--method anneal or icm")
        return _by_elimination(model, clamp, plan, f"as asked: {plan.describe()}")
    why = "as asked" if method == "anneal" else "as asked: a local optimum"
    return _by_search(model, clamp, method, rng, sweeps, chains, why)


def _graphcut_verdicts(model, clamp):
    from ebmlang.infer import graphcut
    free = free_mask(model, clamp)
    out = []
    for r in range(len(clamp)):
        x = np.nan_to_num(clamp[r])
        out.append(graphcut.analyze(model, x, free[r]))
        if not out[-1][0].ok:
            break
    return out


def _elimination_plan(model, clamp):
    """(an elimination plan, None) when max-product elimination is feasible, else
    (None, why not)."""
    from ebmlang.infer.elimination import plan
    if np.any(~np.isnan(clamp[:, model.state_ids()])):
        return None, "some variables are clamped"
    try:
        the_plan = plan(model)
    except UserError as err:
        return None, err.message
    if not the_plan.quick:
        return None, f"{the_plan.describe()} is too costly"
    return the_plan, ""


def _by_elimination(model, clamp, the_plan, why) -> MapResult:
    """The exact MAP by max-product variable elimination, row by row (inputs fixed)."""
    from ebmlang.infer.elimination import ground_factors, maximize, sampled_sizes
    sizes = sampled_sizes(model)
    values = {}
    for f in model.vars.values():
        if f.sampled:
            values.update(dict.fromkeys(range(f.offset, f.offset + f.space.size),
                                        f.domain.values))
    states = np.nan_to_num(clamp)
    for r in range(len(states)):
        tables, _ = ground_factors(model, states[r:r + 1])
        _, assign = maximize(tables, the_plan.order, sizes)
        for v, k in assign.items():
            states[r, v] = values[v][k]
    return MapResult(model, states, model.log_potential(states), "ve", why)


def _by_graphcut(model, clamp, verdicts) -> MapResult:
    from ebmlang.infer import graphcut
    free = free_mask(model, clamp)
    v0, v1 = graphcut.binary_values(model)
    states = np.nan_to_num(clamp)
    for r, (verdict, energy) in enumerate(verdicts):
        ids = np.flatnonzero(free[r])
        labels = graphcut.solve(energy, free[r])
        states[r, ids] = np.where(labels == 1, v1[ids], v0[ids])
    return MapResult(model, states, model.log_potential(states), "graphcut",
                     verdicts[0][0].reason, verdicts[0][0].evidence)


def _by_search(model, clamp, method, rng, sweeps, chains, why) -> MapResult:
    """ICM or annealing, `chains` restarts per row, the best kept."""
    from ebmlang.infer.proper import check_proper
    from ebmlang.infer.sample import init_state, reset_scales
    if method == "icm":
        mh = sorted({p.family for b in model.parts() for p in b if p.method == "mh"})
        if mh:
            raise UserError(f"icm needs finite or Gaussian conditionals, and {', '.join(mh)} "
                            "is sampled by Metropolis-Hastings: use --method anneal")
    rows = len(clamp)
    big = np.repeat(clamp, chains, axis=0)
    x = init_state(model, len(big), rng, big[:, model.state_ids(("input",))])
    x = np.where(np.isnan(big), x, big)
    check_proper(model, x)
    reset_scales(model)
    theta = model.params.theta
    if method == "anneal":
        n = ANNEAL_SWEEPS if sweeps is None else sweeps
        anneal(model, x, big, theta, rng, n)
        used = n + icm(model, x, big, theta, rng=rng)
    else:
        for _ in range(WARM_SWEEPS):
            gibbs_step(model.parts(), x, theta, rng, clamp=big)
        used = icm(model, x, big, theta, ICM_SWEEPS if sweeps is None else sweeps)
    lp = model.log_potential(x).reshape(rows, chains)
    lp = np.where(np.isnan(lp), -np.inf, lp)
    best = lp.argmax(axis=1)
    states = x.reshape(rows, chains, -1)[np.arange(rows), best]
    return MapResult(model, states, lp[np.arange(rows), best], method, why, sweeps=used)


# ---------------------------------------------------------------- ICM

def icm(model, x, clamp, theta, max_sweeps: int = ICM_SWEEPS, rng=None) -> int:
    """Coordinate ascent over the Gibbs blocks until no variable changes (MH families, only
    with `rng`: GREEDY_SWEEPS sweeps of improving moves). Returns the sweeps run."""
    from ebmlang.infer.sample import adapt_scales
    parts = model.parts()
    has_mh = any(p.method == "mh" for b in parts for p in b)
    limit = min(max_sweeps, GREEDY_SWEEPS) if has_mh else max_sweeps
    for sweep in range(limit):
        changed = False
        for block in parts:
            new = [(p.ids, _clamped(_mode(p, x, theta, rng), clamp, p)) for p in block]
            for ids, vals in new:
                changed |= _moved(x[:, ids], vals)
                x[:, ids] = vals
        if not changed and not has_mh:
            return sweep + 1
        if has_mh and (sweep + 1) % GREEDY_ADAPT == 0:
            adapt_scales(parts)       # greedy moves are rarely accepted: the steps shrink
    return limit


def _clamped(vals, clamp, part):
    fixed = clamp[:, part.ids]
    return np.where(np.isnan(fixed), vals, fixed)


def _moved(old, new) -> bool:
    return bool(np.any(np.abs(new - old) > REAL_TOL * (1 + np.abs(old))))


def _mode(part, x, theta, rng) -> np.ndarray:
    """Each variable of the part at its conditional mode (ties keep the current value)."""
    current = x[:, part.ids]
    if part.method == "mh":
        return _tempered_mh(part, x, theta, rng, np.inf)
    ell = local_logits(part, x, theta)
    if part.method == "gaussian":
        a, b = _quadratic(ell)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a < 0, -b / (2 * a), current)
    ell = np.where(np.isnan(ell), -np.inf, ell)
    top = ell.max(axis=-1)
    here = np.take_along_axis(ell, _index(part, current)[..., None], axis=-1)[..., 0]
    keep = here >= top - 1e-12 * (1 + np.abs(top))
    return np.where(keep, current, part.values[ell.argmax(axis=-1)])


def _index(part, current) -> np.ndarray:
    return np.clip(np.searchsorted(part.values, current), 0, len(part.values) - 1)


# ---------------------------------------------------------------- annealing

def anneal(model, x, clamp, theta, rng, sweeps: int, backend: str | None = None) -> None:
    """Gibbs sweeps on beta * log p, beta rising geometrically from BETA0 to BETA1, with the
    sampler's kernels at beta (`backends.choice`; "numpy": the reference): compiled tables
    built at beta, the fused sweep's fields scaled by beta, numpy parts (MH, Gaussian) by
    `tempered.tempered_update`."""
    from ebmlang.infer.sample import ADAPT_EVERY, adapt_scales
    from ebmlang.infer.tempering import annealing_parts, tempered_sweep
    clamped = clamp is not None and not np.isnan(clamp[:, model.state_ids()]).all()
    parts = annealing_parts(model, backend, clamped)
    betas = np.geomspace(BETA0, BETA1, max(sweeps, 1)) if sweeps else []
    for t, beta in enumerate(betas):
        tempered_sweep(parts, x, theta, rng, clamp, np.full(len(x), beta), update=_annealed)
        if (t + 1) % ADAPT_EVERY == 0:
            adapt_scales(parts)


def _annealed(part, x, theta, rng, beta) -> np.ndarray:
    """A numpy part's update on beta * log p (beta one number: every chain shares it)."""
    return tempered_update(part, x, theta, rng, beta[0])


def _tempered_mh(part, x, theta, rng, beta) -> np.ndarray:
    """One random-walk MH step on beta * log p (beta = inf: only improving moves)."""
    if rng is None:
        raise UserError("Metropolis-Hastings families need random moves: use --method anneal")
    return tempered_mh(part, x, theta, rng, beta)


# ---------------------------------------------------------------- imputation

@dataclass
class Imputed:
    """Missing cells filled by clamped Gibbs: `filled` (rows, n_state) has each observed cell
    as given, each missing one at its posterior mode (finite domains) or mean (real); `mean` is
    the posterior mean of every cell (observed cells: their value)."""

    model: object
    filled: np.ndarray
    mean: np.ndarray
    missing: np.ndarray        # (rows, n_state) True where a sampled cell was not given


def impute(model, data, draws: int = 200, burn_in: int | None = None, chains: int = 1,
           seed=None, inputs=None) -> Imputed:
    """Fill the missing cells of `data` (NaN, or anything `load_data` reads) with their
    posterior mode or mean given the observed cells and inputs, by Gibbs sampling with the
    observed cells clamped (`gibbs_step(..., clamp=...)`)."""
    from ebmlang.infer.proper import check_proper
    from ebmlang.infer.sample import init_state
    clamp = clamp_rows(model, inputs, data)
    burn_in = draws // 2 if burn_in is None else burn_in
    rng = np.random.default_rng(seed)
    rows, n = clamp.shape
    big = np.repeat(clamp, chains, axis=0)
    x = init_state(model, len(big), rng, big[:, model.state_ids(("input",))])
    x = np.where(np.isnan(big), x, big)
    check_proper(model, x)
    total = np.zeros_like(x)
    counts = {f.name: np.zeros((len(big), f.space.size, f.domain.size))
              for f in model.vars.values() if f.sampled and f.domain.finite}
    for sweep in range(burn_in + draws):
        gibbs_step(model.parts(), x, model.params.theta, rng, clamp=big)
        if sweep >= burn_in:
            total += x
            for name, c in counts.items():
                f = model.vars[name]
                c += x[:, f.offset:f.offset + f.space.size, None] == f.domain.values
    mean = (total / draws).reshape(rows, chains, n).mean(axis=1)
    filled = mean.copy()
    for name, c in counts.items():
        f = model.vars[name]
        votes = c.reshape(rows, chains, f.space.size, -1).sum(axis=1)
        filled[:, f.offset:f.offset + f.space.size] = f.domain.values[votes.argmax(axis=-1)]
    missing = free_mask(model, clamp)
    filled = np.where(missing, filled, np.nan_to_num(clamp))
    mean = np.where(missing, mean, np.nan_to_num(clamp))
    return Imputed(model, filled, mean, missing)

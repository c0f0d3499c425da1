"""Fit sweeps: every setting of a grid of fit options and const overrides, fitted once per seed.

A setting is one value for each grid key; a key is a fit option (`lr`, `epochs`, `batch_size`,
`chains`, `k`, `method`, ...: a field of `FitOptions`) or a const of the model (`M`, the hidden
size), which makes a model of its own. Seed k of every setting is the k-th child of
`numpy.random.SeedSequence(seed)` (the seed itself when there is one seed, so a one-seed sweep
fits as `fit --seed S` does); settings share seed k's stream, so they differ by the setting, not
by luck (common random numbers). Each fit is a job `fit_job(model, **kw)`, run here in turn or
as a Ray task: the same fits, bit for bit, whatever the workers. The final metric of a fit is
the last one its history reports (`learn.metrics`); with held-out data, the same kind of
metric on every held-out row, and the table ranks by that.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from ebmlang.errors import UserError, did_you_mean
from ebmlang.infer import groups
from ebmlang.learn.fit import FitOptions
from ebmlang.learn.metrics import Metric
from ebmlang.learn.result import _finite

HIGHER_IS_BETTER = {"LL": True, "pseudo-LL": True, "SM": False, "NCE": False}
ALIASES = {"batch": "batch_size"}
NOT_GRID = ("seed", "progress")


def fit_keys() -> list[str]:
    return [f.name for f in dataclasses.fields(FitOptions) if f.name not in NOT_GRID]


def kind_of(key: str, consts) -> tuple[str, str]:
    """('fit' | 'const', canonical name) of a grid key; a const shadowed by a fit option's
    name is `const.NAME`."""
    if key.startswith("const.") and key[6:] in consts:
        return "const", key[6:]
    name = ALIASES.get(key.replace("-", "_"), key.replace("-", "_"))
    if name in fit_keys():
        return "fit", name
    if key in consts:
        return "const", key
    if key == "seed":
        raise UserError(f"--grid {key}: the seeds of a sweep are --seeds N (spawned from --seed)")
    known = fit_keys() + list(consts)
    raise UserError(f"--grid {key}: not a fit option nor a const of the model"
                    f"{did_you_mean(key, known)}; fit options: {', '.join(fit_keys())}; "
                    f"consts: {', '.join(consts) or 'none'}")


@dataclass(frozen=True)
class Setting:
    """One value per grid key: the fit options and the const overrides it sets."""
    fit: tuple = ()         # ((name, value), ...)
    consts: tuple = ()      # ((name, value), ...)
    texts: tuple = ()       # ((key, value as written), ...), in grid order

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.texts) or "(defaults)"

    @property
    def file_part(self) -> str:
        """The setting in a file name: `lr=0.01_M=16`."""
        return "_".join(f"{k}={v}" for k, v in self.texts) or "defaults"


def settings(grid: dict, consts) -> list[Setting]:
    """Every combination of the grid's values, the first key varying slowest. `grid`: key ->
    list of (value, text) pairs or plain values; `consts`: the model's const names."""
    keys = []
    for key, values in grid.items():
        values = [v if isinstance(v, tuple) else (v, _text(v)) for v in values]
        if not values:
            raise UserError(f"--grid {key}: the list of values is empty")
        texts = [t for _, t in values]
        if len(set(texts)) != len(texts):
            raise UserError(f"--grid {key}: a value is repeated ({', '.join(texts)})")
        keys.append((*kind_of(key, consts), values))
    names = [n for _, n, _ in keys]
    if len(set(names)) != len(names):
        raise UserError(f"--grid: a key is given twice ({', '.join(names)})")
    out = []
    for combo in itertools.product(*[v for _, _, v in keys]):
        pick = list(zip(keys, combo))
        out.append(Setting(tuple((n, v) for (k, n, _), (v, _) in pick if k == "fit"),
                           tuple((n, v) for (k, n, _), (v, _) in pick if k == "const"),
                           tuple((n, t) for (_, n, _), (_, t) in pick)))
    return out


def _text(v) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def seed_streams(seed, n: int) -> list:
    """The sweep's seeds: one stream per seed index, shared by the settings."""
    return groups.seeds(0 if seed is None else seed, n)


def seed_meta(seed, k: int, n: int):
    """How a params file names its seed: the number, or the root seed and the spawn index."""
    return seed if n == 1 else {"root": 0 if seed is None else seed, "spawn_key": [k]}


@dataclass
class Outcome:
    """One fit of a sweep, as a job returns it."""
    params: dict
    history: list
    method: str
    metric: str | None
    value: float | None
    valid_metric: str | None = None
    valid: float | None = None
    diverged: str | None = None


def fit_job(model, options: dict, seed, exact: bool, data, valid=None) -> Outcome:
    """One fit from the model's current params (here or on a Ray worker): its params, its
    history without timings (so that runs anywhere give the same files), its final metric and
    that metric on the held-out data."""
    from ebmlang.learn.fit import Diverged
    try:
        result, diverged = model.fit(data, **dict(options, seed=seed, progress=None)), None
    except Diverged as err:
        result, diverged = err.result, err.message
    history = [{k: v for k, v in e.items() if k != "seconds"} for e in result.history]
    last = history[-1] if history else {}
    out = Outcome(model.params.to_dict(), _finite(history), result.method, last.get("metric"),
                  _number(last.get("value")), diverged=diverged)
    if valid is not None and diverged is None:
        with np.errstate(all="ignore"):
            got = held_out(model, valid, seed, exact)
        out.valid_metric, out.valid = got["metric"], _number(got["value"])
    return out


def _number(v):
    return None if v is None or not np.isfinite(v) else float(v)


def held_out(model, data, seed, exact: bool = True) -> dict:
    """The fit's own kind of metric (exact LL where `exact` and the states can be enumerated,
    else pseudo-LL) on every row of `data`."""
    from ebmlang.infer.summed import SummedOut
    latent = model.state_ids(("latent",))
    summed = SummedOut(model, latent) if len(latent) and SummedOut.independent(model, latent) \
        else None
    phases = SimpleNamespace(has_inputs=len(model.state_ids(("input",))) > 0, latent=latent,
                             summed=summed, marginal=summed, pl_parts=None, model_states=None)
    metric = Metric(model, data, phases, np.random.default_rng(seed), max_rows=data.rows,
                    exact=exact)
    return metric.evaluate()


@dataclass
class Row:
    """A setting's line of the table: the metric's mean and spread over its seeds."""
    setting: Setting
    values: list            # the ranked metric per seed (None: diverged or not available)
    train: list             # the training metric per seed
    mean: float | None = None
    std: float | None = None
    lo: float | None = None
    hi: float | None = None
    diverged: int = 0
    best: bool = False


@dataclass
class SweepResult:
    """Every fit of a sweep and its table: `rows` best first (unranked ones last), `best`."""
    rows: list
    fits: list              # [(setting, seed index, Outcome)], in grid then seed order
    metric: str | None      # what ranks the rows, e.g. "valid LL"
    higher: bool = True
    notes: list = field(default_factory=list)

    @property
    def best(self) -> Row | None:
        return next((r for r in self.rows if r.best), None)

    def columns(self) -> list[str]:
        m = self.metric or "metric"
        return ["rank", "setting", f"{m} mean", "std", "min", "max", "seeds", "diverged"]

    def records(self) -> list[list]:
        return [[k + 1 if r.mean is not None else None, r.setting.label, r.mean, r.std, r.lo,
                 r.hi, len(r.values), r.diverged] for k, r in enumerate(self.rows)]

    def table(self) -> str:
        """The table as aligned text, the best setting marked."""
        cells = [self.columns() + [""]] + [
            [_cell(v) for v in rec] + ["<- best" if r.best else ""]
            for rec, r in zip(self.records(), self.rows)]
        widths = [max(len(c[k]) for c in cells) for k in range(len(cells[0]))]
        lines = ["  ".join(c.ljust(w) if k == 1 else c.rjust(w)
                           for k, (c, w) in enumerate(zip(row, widths))).rstrip()
                 for row in cells]
        return "\n".join(lines)

    def csv_text(self) -> str:
        head = [c.replace(" ", "_") for c in self.columns()]
        body = [",".join(_csv(v) for v in rec) for rec in self.records()]
        return "\n".join([",".join(head)] + body) + "\n"

    def __repr__(self) -> str:
        return self.table()


def _cell(v) -> str:
    if v is None:
        return "-"
    return f"{v:.5g}" if isinstance(v, float) else str(v)


def _csv(v) -> str:
    if v is None:
        return ""
    text = repr(v) if isinstance(v, float) else str(v)
    return '"' + text.replace('"', '""') + '"' if ("," in text or '"' in text) else text


def summarize(fits: list, plan: list[Setting], valid: bool) -> SweepResult:
    """The table of a sweep's fits: one row per setting, ranked by the held-out metric when
    there is one, else the training one; rows whose seeds all diverged rank last."""
    notes = []
    kinds = {(o.valid_metric if valid else o.metric) for _, _, o in fits if o.diverged is None}
    kinds.discard(None)
    name = None
    if len(kinds) == 1:
        name = kinds.pop()
    elif kinds:
        notes.append(f"the settings report different metrics ({', '.join(sorted(kinds))}): "
                     "they are not ranked (--valid FILE ranks them by one metric on FILE; "
                     "the training file will do)")
    elif fits:
        notes.append("no fit reported a metric: the settings are not ranked")
    higher = HIGHER_IS_BETTER.get(name, True)
    rows = []
    for s in plan:
        mine = [o for t, _, o in fits if t is s]
        row = Row(s, [o.valid if valid else o.value for o in mine], [o.value for o in mine],
                  diverged=sum(o.diverged is not None for o in mine))
        ok = [v for v in row.values if v is not None]
        if name is not None and ok:
            row.mean, row.lo, row.hi = float(np.mean(ok)), float(min(ok)), float(max(ok))
            row.std = float(np.std(ok, ddof=1)) if len(ok) > 1 else 0.0
        rows.append(row)
    ranked = sorted([r for r in rows if r.mean is not None],
                    key=lambda r: -r.mean if higher else r.mean)
    if ranked:
        ranked[0].best = True
    rows = ranked + [r for r in rows if r.mean is None]
    if any(r.diverged for r in rows):
        notes.append("diverged fits are left out of their setting's mean (their params files "
                     "hold the last good params)")
    label = None if name is None else (f"valid {name}" if valid else name)
    return SweepResult(rows, fits, label, higher, notes)


def fit_grid(model, variant, data, grid: dict, seeds: int, seed, valid, params, options: dict,
             run=None, progress=None) -> SweepResult:
    """`Model.fit_grid`: the plan of `grid`, a model per distinct const setting (`variant(consts)`)
    with `params` assigned, the data read for each, then `sweep` (here, or by `run`);
    `progress(done, total, outcome)` after each fit run here."""
    from ebmlang.io.data import load_data
    plan = settings(grid, list(model.checked.consts))
    models = {}
    for s in plan:
        if s.consts not in models:
            models[s.consts] = variant(dict(s.consts)) if s.consts else model
    for m in models.values():
        m.params.update(params)
    held = None if valid is None else {c: load_data(m, valid, "held-out data")
                                       for c, m in models.items()}
    return sweep(models, plan, {c: load_data(m, data) for c, m in models.items()}, held,
                 options, seeds, seed, run or (lambda fn, tasks: run_here(fn, tasks, progress)))


def enumerable(model) -> bool:
    """Whether the held-out metric of this model is the exact LL (else pseudo-LL)."""
    from ebmlang.infer.exact import state_count
    from ebmlang.learn.metrics import MAX_METRIC_STATES
    return not len(model.state_ids(("input",))) and 0 < state_count(model) <= MAX_METRIC_STATES


def sweep(models: dict, plan: list[Setting], data: dict, valid: dict | None, base: dict,
          seeds: int, seed, run) -> SweepResult:
    """Fit every setting of `plan` once per seed. `models`: the setting's consts -> its model
    (params at their start); `data`, `valid`: consts -> that model's Data; `base`: the fit
    options every setting starts from; `run(fn, tasks)` runs fn(model, **kw, **shared) for
    each (model, kw, shared) of tasks, results in order (`run_here`, or on Ray)."""
    streams = seed_streams(seed, seeds)
    exact = all(enumerable(m) for m in models.values())   # one held-out metric for all
    for s in plan:
        FitOptions(**dict(base, **dict(s.fit))).check()
    tasks, index = [], []
    for s in plan:
        shared = dict(data=data[s.consts], valid=None if valid is None else valid[s.consts])
        for k, stream in enumerate(streams):
            tasks.append((models[s.consts], dict(options=dict(base, **dict(s.fit)), seed=stream,
                                                 exact=exact), shared))
            index.append((s, k))
    outcomes = run(fit_job, tasks)
    fits = [(s, k, o) for (s, k), o in zip(index, outcomes)]
    return summarize(fits, plan, valid is not None)


def run_here(fn, tasks: list, progress=None) -> list:
    """Each task in turn, every one from its model's params as they were at the start (and
    the params left there after); `progress(done, total, result)` after each."""
    starts = {id(m): m.params.theta.copy() for m, _, _ in tasks}
    out = []
    try:
        for model, kw, shared in tasks:
            model.params.theta[:] = starts[id(model)]
            out.append(fn(model, **kw, **shared))
            if progress is not None:
                progress(len(out), len(tasks), out[-1])
    finally:
        for model, _, _ in tasks:
            model.params.theta[:] = starts[id(model)]
    return out

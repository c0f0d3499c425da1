"""Every ground variable's marginal distribution, given the inputs and any clamped values:
by enumeration (`exact`), by a calibrated clique tree from the elimination order (`ve`, see
`cliquetree`), by loopy belief propagation (`bp`, `ebmlang.infer.bp`) or from Gibbs draws with
Monte Carlo standard errors (`gibbs`); `auto` takes the first exact one that fits and says why.

Clamped variables (evidence) get a point mass; for a UAI network the .evid evidence is already
substituted into the tables when it is loaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ebmlang.errors import UserError

METHODS = ("auto", "exact", "ve", "bp", "gibbs")
PRINT_VARS = 20        # the repr and the printed table show at most this many variables


@dataclass
class Marginals:
    """Per ground variable (by name): its values and their probabilities; how they were found."""

    names: list[str]
    values: list[np.ndarray]          # each variable's domain values
    probs: list[np.ndarray]           # P(value), same order
    method: str                       # exact | ve | bp | gibbs
    why: str                          # "requested", or what `auto` saw
    detail: str                       # what it did
    se: list[np.ndarray] | None = None        # Monte Carlo standard errors (gibbs)
    stats: dict[str, np.ndarray] = field(default_factory=dict)   # stat means, where exact
    stats_note: str = ""              # which stat means are omitted and why
    warnings: list[str] = field(default_factory=list)
    log_z: float | None = None        # log Z given the evidence (exact, ve; Bethe for bp)
    iterations: int | None = None     # bp
    converged: bool | None = None     # bp

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.probs[self.names.index(name)]
        except ValueError:
            raise KeyError(name) from None

    def as_dict(self) -> dict[str, np.ndarray]:
        return dict(zip(self.names, self.probs))

    def table(self, limit: int = PRINT_VARS) -> str:
        """A short text table: each variable's P(value) (and +- se), the rest counted."""
        lines = []
        for k, (n, vals, p) in enumerate(zip(self.names, self.values, self.probs)):
            if k == limit:
                lines.append(f"... {len(self.names) - limit:,} more variables (-o OUT.csv "
                             "writes them all)")
                break
            cells = [f"P={v:g}: {q:.6f}" + (f" +- {self.se[k][j]:.1g}" if self.se else "")
                     for j, (v, q) in enumerate(zip(vals, p))]
            lines.append(f"{n}  " + "  ".join(cells[:8]) +
                         (f"  ... ({len(cells)} values)" if len(cells) > 8 else ""))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<Marginals of {len(self.names):,} variables by {self.method}: {self.detail}>\n"
                + self.table(5))


def marginals(model, method: str = "auto", inputs=None, evidence=None, params=None, seed=None,
              sweeps: int = 1000, chains: int = 4, damping: float = 0.5, max_iter: int = 1000,
              tol: float = 1e-6, schedule: str = "residual", ray=None) -> Marginals:
    """Every sampled variable's marginal given `inputs` (one row, conditional models) and
    `evidence` ({ground name: value} or a state row with NaN where free: clamped variables).
    `ray` (gibbs only): True or a cluster address runs the chain groups as Ray tasks."""
    if method not in METHODS:
        raise UserError(f"unknown marginals method '{method}'; use one of {', '.join(METHODS)}")
    from ebmlang.infer.logz import _base_state
    model.params.update(params)
    x0 = _base_state(model, inputs)
    clamp = _clamp(model, evidence)
    if method == "auto":
        method, why = choose(model, clamp)
    else:
        why = "requested"
    if method == "gibbs":
        from ebmlang.infer.marginals_gibbs import by_gibbs
        return by_gibbs(model, x0, clamp, Marginals([], [], [], "gibbs", why, ""), _domains(model),
                        seed=seed, sweeps=sweeps, chains=chains, ray=ray)
    if method == "exact":
        return _by_enumeration(model, x0, clamp, why)
    return _by_tables(model, x0, clamp, why, method, dict(damping=damping, max_iter=max_iter,
                                                           tol=tol, schedule=schedule))


def _clamp(model, evidence) -> dict[int, float]:
    """{state id: value} of the clamped sampled variables; UserError for a value outside its
    domain or a name that is not a sampled variable."""
    if evidence is None:
        return {}
    ids = dict(zip(model.ground_names(), model.state_ids()))
    if isinstance(evidence, dict):
        items = []
        for name, value in evidence.items():
            if name not in ids:
                raise UserError(f"evidence names '{name}', which is not a var or latent "
                                "variable of the model")
            items.append((int(ids[name]), float(value)))
    else:
        row = np.asarray(evidence, float).reshape(-1)
        items = [(int(i), float(row[i])) for i in model.state_ids() if not np.isnan(row[i])]
    out = {}
    for i, value in items:
        fam = family_of(model, i)
        if fam.domain.finite and value not in set(fam.domain.values.tolist()):
            raise UserError(f"evidence {fam.name} = {value:g} is outside its domain "
                            f"{fam.domain.text}")
        out[i] = value
    return out


def family_of(model, i: int):
    for f in model.vars.values():
        if f.sampled and f.offset <= i < f.offset + f.space.size:
            return f
    raise KeyError(i)


def choose(model, clamp) -> tuple[str, str]:
    """(method, why): enumeration when small, the clique tree when the elimination tables are
    small, else loopy BP; Gibbs when a variable is real-valued (or unbounded)."""
    from ebmlang.infer.elimination import (
        MAX_MESSAGES,
        SCREEN_WIDTH,
        count_text,
        interaction_graph,
        memory_text,
        plan,
        wider_than,
    )
    from ebmlang.infer.exact import MAX_STATES, state_count
    count = state_count(model)
    if count < 0:
        return "gibbs", "real-valued variables: exact methods and BP need finite domains"
    if count <= MAX_STATES:
        return "exact", f"{count_text(count)} states: small enough to enumerate"
    states = f"{count_text(count)} states are too many to enumerate"
    try:
        wide = wider_than(interaction_graph(model), SCREEN_WIDTH)
        the_plan = None if wide else plan(model)
    except UserError as err:
        return "bp", f"{states}, and {err.message}"
    if the_plan is None:
        return "bp", (f"{states}, and greedy min-degree elimination is wider than "
                      f"{SCREEN_WIDTH}: too wide for an exact clique tree")
    if the_plan.quick and the_plan.messages > MAX_MESSAGES:
        return "bp", (f"{states}, and the clique tree would keep {count_text(the_plan.messages)} "
                      f"entries of messages ({memory_text(the_plan.messages)}; at most "
                      f"{count_text(MAX_MESSAGES)}, {memory_text(MAX_MESSAGES)}): "
                      f"{the_plan.describe()}")
    if the_plan.quick:
        return "ve", (f"{states}, but the clique tree's tables are small ("
                      f"{memory_text(the_plan.messages)} of messages)")
    return "bp", (f"{states}, and the clique tree is too costly ({the_plan.describe()}, "
                  f"{count_text(the_plan.work)} entries in all)")


# ---------------------------------------------------------------- the methods

def _domains(model):
    """(state ids, names, domain values) of every sampled ground variable, in state order."""
    ids = model.state_ids()
    names = model.ground_names()
    values = [family_of(model, int(i)).domain.values for i in ids]
    return ids, names, values


def _by_enumeration(model, x0, clamp, why) -> Marginals:
    from ebmlang.infer.exact import probabilities
    input_ids = model.state_ids(("input",))
    x, p = probabilities(model, x0[0, input_ids] if len(input_ids) else None)
    keep = np.ones(len(p), bool)
    for i, value in clamp.items():
        keep &= x[:, i] == value
    if not keep.any() or p[keep].sum() == 0:
        raise UserError("the evidence has probability 0: no marginals")
    x, p = x[keep], p[keep] / p[keep].sum()
    ids, names, values = _domains(model)
    probs = [np.array([p[x[:, i] == v].sum() for v in vals]) for i, vals in zip(ids, values)]
    stats = {name: np.tensordot(p, s, axes=1) for name, s in model.stat_values(x).items()}
    return Marginals(names, values, probs, "exact", why, f"enumerated {len(p):,} states",
                     stats=stats)


def _by_tables(model, x0, clamp, why, method, bp_options) -> Marginals:
    """The clique tree (ve) or loopy BP (bp) on the ground factor tables, the clamped
    variables substituted."""
    from ebmlang.infer.elimination import (
        MAX_TABLE,
        MAX_WORK,
        ground_factors,
        plan,
        sampled_sizes,
    )
    sizes = sampled_sizes(model)
    tables, const = ground_factors(model, x0)
    index = {i: {v: k for k, v in enumerate(family_of(model, i).domain.values.tolist())}
             for i in clamp}
    clamp_index = {i: index[i][v] for i, v in clamp.items()}
    tables, const = condition_tables(tables, clamp_index, const)
    free = {i: n for i, n in sizes.items() if i not in clamp}
    res = Marginals([], [], [], method, why, "")
    if method == "ve":
        from ebmlang.infer import stat_means as sm
        from ebmlang.infer.cliquetree import calibrate
        the_plan = plan(model)
        if not the_plan.feasible:
            raise UserError(the_plan.refusal().replace("--method ais", "--method bp or gibbs"))
        terms = sm.stat_terms(model, x0, clamp_index) if model.checked.stats else []
        covered, extra = sm.cover(tables, terms, free)
        if extra:
            largest, work = sm.cost(model, the_plan.order, extra)
            if largest > MAX_TABLE or work > max(MAX_WORK, 2 * the_plan.work):
                res.stats_note = sm.too_costly(largest, work) + "; stat means omitted"
                covered, terms = tables, []
        joints = dict.fromkeys(s for _, _, s, _ in terms if s)
        log_z, probs = calibrate(covered, [v for v in the_plan.order if v in free], free,
                                 joints)
        res.log_z, res.detail = const + log_z, "clique tree: " + the_plan.describe()
        if model.checked.stats and not res.stats_note:
            res.stats = sm.means(model, terms, joints)
    else:
        probs = _by_bp(tables, free, bp_options, res)
        res.log_z = const + res.log_z
        if model.checked.stats:
            res.stats_note = ("stat means are exact by enumeration or the clique tree "
                              "(--method exact or ve); BP's would be approximate: omitted")
    ids, res.names, res.values = _domains(model)
    for i, vals in zip(ids, res.values):
        i = int(i)
        res.probs.append(probs[i] if i not in clamp else (vals == clamp[i]).astype(float))
    return res


def _by_bp(tables, sizes, options, res) -> dict[int, np.ndarray]:
    from ebmlang.infer.bp import loopy_bp
    out = loopy_bp(tables, sizes, **options)
    res.log_z, res.iterations, res.converged = out.log_z, out.iterations, out.converged
    state = "converged" if out.converged else "did NOT converge"
    res.detail = (f"loopy belief propagation {state} after {out.iterations:,} iterations "
                  f"(largest residual {out.max_residual:.2g}, damping {options['damping']}, "
                  f"{options['schedule']} schedule); "
                  "approximate marginals")
    if not out.converged:
        res.warnings.append(f"warning: belief propagation did not converge in "
                            f"{out.iterations:,} iterations (largest residual "
                            f"{out.max_residual:.2g} > {options['tol']:g}): the marginals may "
                            "be far off")
    return {int(v): np.asarray(p, float) for v, p in out.marginals.items()}


def condition_tables(tables, clamp_index: dict[int, int], const: float = 0.0):
    """The tables with the clamped variables (id -> value index) substituted; tables left
    over no variable are added to the constant."""
    if not clamp_index:
        return tables, const
    out: dict[tuple, np.ndarray] = {}
    for scope, table in tables.items():
        sl = tuple(clamp_index.get(u, slice(None)) for u in scope)
        scope = tuple(u for u in scope if u not in clamp_index)
        table = np.asarray(table[sl])
        if not scope:
            const += float(table)
        else:
            out[scope] = out[scope] + table if scope in out else table
    if not math.isfinite(const) and const < 0:
        raise UserError("the evidence has probability 0: no marginals")
    return out, const

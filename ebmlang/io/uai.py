"""UAI networks (the UAI inference competitions' format) as ebmlang models.

A MARKOV (or BAYES: the product of its tables) file lists variables with their cardinalities,
factor scopes and tables (last variable fastest). Evidence (`X.uai.evid`: a count, then
variable/value pairs) is substituted into the tables, so the model is the network conditioned
on it and its log Z is log P(evidence) (times the network's own Z).

Variables become one family per cardinality (`x[i] : cat(K)`); factors become families grouped
by the families of their scopes, each a table param indexed by variables:

    set S0 = load("S0.csv")                       # rows (f, u, v): factor f's scope
                                                  # (convert -o OUT.ebm: OUT.S0.csv)
    param T0[f in 0..G-1, a in 0..1, b in 0..1] = 1
    factor f0[(f, u, v) in S0] : log(T0[f, x[u], x[v]])

so a 20 x 20 grid is a few families, not 1,160 one-off factors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ebmlang.errors import Span, UserError, count


@dataclass
class Network:
    kind: str                       # MARKOV | BAYES
    cards: list[int]
    scopes: list[tuple[int, ...]]
    tables: list[np.ndarray]        # each shaped by its scope's cardinalities
    keep: list[int] | None = None   # original indices of the variables left after evidence


class _Tokens:
    """Whitespace-separated tokens with their line numbers, for errors that name the line."""

    def __init__(self, path: str):
        self.path = path
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise UserError(f"cannot read UAI file: {exc.strerror or exc}", file=path) from None
        self.items = [(tok, n) for n, line in enumerate(text.splitlines(), 1)
                      for tok in line.split()]
        self.pos = 0

    def error(self, message: str, line: int | None = None):
        if line is None:
            line = self.items[min(self.pos, len(self.items) - 1)][1] if self.items else 1
        return UserError(message, Span(line, 1), file=self.path)

    def word(self, what: str) -> tuple[str, int]:
        if self.pos >= len(self.items):
            raise self.error(f"the file ends early: expected {what}")
        self.pos += 1
        return self.items[self.pos - 1]

    def int(self, what: str, lo: int = 0) -> int:
        tok, line = self.word(what)
        try:
            value = int(tok)
        except ValueError:
            raise self.error(f"expected {what} (an integer), got '{tok}'", line) from None
        if value < lo:
            raise self.error(f"{what} must be >= {lo}, got {value}", line)
        return value

    def number(self, what: str) -> float:
        tok, line = self.word(what)
        try:
            value = float(tok)
        except ValueError:
            raise self.error(f"expected {what} (a number), got '{tok}'", line) from None
        if not np.isfinite(value) or value < 0:
            raise self.error(f"{what} must be a finite number >= 0, got {tok}", line)
        return value


def read_uai(path: str) -> Network:
    """Parse a MARKOV or BAYES file; malformed input is a UserError naming the line."""
    t = _Tokens(str(path))
    kind, line = t.word("the header MARKOV or BAYES")
    if kind.upper() not in ("MARKOV", "BAYES"):
        raise t.error(f"unknown header '{kind}': expected MARKOV or BAYES", line)
    n = t.int("the number of variables", 1)
    cards = [t.int(f"the cardinality of variable {i}", 1) for i in range(n)]
    scopes = []
    for c in range(t.int("the number of factors")):
        size = t.int(f"the scope size of factor {c}")
        scope = tuple(t.int(f"variable {k} of factor {c}'s scope") for k in range(size))
        for v in scope:
            if v >= n:
                raise t.error(f"factor {c} names variable {v}, but there are {n}")
        if len(set(scope)) != len(scope):
            raise t.error(f"factor {c} names a variable twice")
        scopes.append(scope)
    tables = []
    for c, scope in enumerate(scopes):
        line = t.items[t.pos][1] if t.pos < len(t.items) else None
        count = t.int(f"the table size of factor {c}")
        shape = tuple(cards[v] for v in scope)
        if count != int(np.prod(shape, dtype=np.int64)):
            raise t.error(f"factor {c}'s table has {count} entries; its scope {list(scope)} "
                          f"needs {int(np.prod(shape, dtype=np.int64))}", line)
        values = [t.number(f"entry {k} of factor {c}'s table") for k in range(count)]
        tables.append(np.array(values, float).reshape(shape))
    if t.pos < len(t.items):
        raise t.error(f"unexpected '{t.items[t.pos][0]}' after the last table", t.items[t.pos][1])
    return Network(kind.upper(), cards, scopes, tables)


def read_evidence(path: str, cards: list[int]) -> dict[int, int]:
    """Evidence: a count, then that many variable/value pairs (UAI 2014 format)."""
    t = _Tokens(str(path))
    if not t.items:
        return {}
    count = t.int("the number of observed variables")
    out = {}
    for _ in range(count):
        var = t.int("an observed variable")
        value = t.int(f"the value of variable {var}")
        if var >= len(cards) or value >= cards[var]:
            raise t.error(f"evidence {var} = {value} is outside the network")
        out[var] = value
    return out


def condition(net: Network, evidence: dict[int, int]) -> Network:
    """The network with the evidence substituted into its tables and the observed variables
    removed (factors over observed variables only become constants)."""
    keep = [v for v in range(len(net.cards)) if v not in evidence]
    new_index = {v: k for k, v in enumerate(keep)}
    scopes, tables = [], []
    for scope, table in zip(net.scopes, net.tables):
        index = tuple(evidence.get(v, slice(None)) for v in scope)
        scopes.append(tuple(new_index[v] for v in scope if v not in evidence))
        tables.append(np.asarray(table[index], float))
    return Network(net.kind, [net.cards[v] for v in keep], scopes, tables, keep)


# ---------------------------------------------------------------- UAI -> ebmlang

@dataclass
class Translation:
    text: str                       # readable .ebm source
    sets: dict[str, np.ndarray]     # set name -> rows
    tables: dict[str, np.ndarray]   # param name -> its values
    names: list[str]                # ground ebmlang name of each (remaining) UAI variable


def _families(cards: list[int]) -> tuple[dict[int, str], list[tuple[str, int]]]:
    distinct = sorted(set(cards))
    fam = {k: ("x" if len(distinct) == 1 else f"x{k}") for k in distinct}
    local, counts = [], {k: 0 for k in distinct}
    for k in cards:
        local.append((fam[k], counts[k]))
        counts[k] += 1
    return fam, local


def translate(net: Network, name: str) -> Translation:
    """ebmlang source for a network: variable families by cardinality, factor families by the
    families of their scopes, tables as params indexed by variables."""
    fam, local = _families(net.cards)
    sizes = {f: sum(1 for n, _ in local if n == f) for f in fam.values()}
    lines = [f"model {name}", f"# converted from UAI: {count(len(net.cards), 'variable')}, "
             f"{count(len(net.scopes), 'factor')}"]
    for k, f in sorted(fam.items()):
        lines.append(f"var {f}[i in 0..{sizes[f] - 1}] : cat({k})")
    groups: dict[tuple, list[int]] = {}
    constant = 0.0
    for c, scope in enumerate(net.scopes):
        if not scope:
            value = float(net.tables[c])
            if value <= 0:
                raise UserError(f"factor {c} is zero at the evidence: the evidence has "
                                "probability zero")
            constant += np.log(value)
            continue
        key = tuple(local[v][0] for v in scope)
        groups.setdefault(key, []).append(c)
    sets, tables = {}, {}
    for g, (key, members) in enumerate(groups.items()):
        rows = np.array([[i] + [local[v][1] for v in net.scopes[c]]
                         for i, c in enumerate(members)], np.int64)
        sets[f"S{g}"] = rows
        tables[f"T{g}"] = np.stack([net.tables[c] for c in members])
        us = [f"u{k}" for k in range(len(key))]
        axes = ", ".join(f"a{k} in 0..{net.cards[net.scopes[members[0]][k]] - 1}"
                         for k in range(len(key)))
        reads = ", ".join(f"{fname}[{u}]" for fname, u in zip(key, us))
        lines += [f'set S{g} = load("S{g}.csv")',
                  f"param T{g}[f in 0..{len(members) - 1}, {axes}] = 1",
                  f"factor f{g}[(f, {', '.join(us)}) in S{g}] : log(T{g}[f, {reads}])"]
    if constant != 0.0:
        lines.append(f"factor evidence : {float(constant)!r}")
    names = [f"{f}[{i}]" for f, i in local]
    return Translation("\n".join(lines) + "\n", sets, tables, names)


def evidence_path(path: Path, evidence) -> Path | None:
    if evidence is not None:
        return Path(evidence)
    beside = Path(str(path) + ".evid")
    return beside if beside.exists() else None


@dataclass
class Reading:
    """A UAI network read and conditioned: its .ebm translation, the evidence, the size."""
    translation: Translation
    observed: dict[int, int]
    n_vars: int
    cards: list[int] | None = None  # every original variable's cardinality

    def ground_names(self) -> list[str | None]:
        """The ground ebmlang name of each original variable (None where observed)."""
        names = iter(self.translation.names)
        return [None if v in self.observed else next(names) for v in range(self.n_vars)]


def read_network(path, evidence=None) -> Reading:
    """A UAI network conditioned on its evidence (`evidence`, or the .evid file beside it),
    translated to ebmlang text; the driver (`ebmlang.load`) compiles it like any model."""
    path = Path(path)
    net = read_uai(str(path))
    ev_path = evidence_path(path, evidence)
    observed = read_evidence(str(ev_path), net.cards) if ev_path is not None else {}
    reduced = condition(net, observed)
    if not reduced.cards:
        raise UserError("every variable is observed: nothing to sample", file=str(path))
    return Reading(translate(reduced, _model_name(path)), observed, len(net.cards), net.cards)


def _model_name(path: Path) -> str:
    stem = path.name.split(".")[0]
    clean = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in stem)
    return clean if clean and not clean[0].isdigit() else f"m_{clean}"


def read_marginals(path: str) -> list[np.ndarray]:
    """A .MAR file: `MAR`, then the number of variables and, for each, its cardinality and
    probabilities."""
    t = _Tokens(str(path))
    t.word("MAR")
    out = []
    for v in range(t.int("the number of variables")):
        k = t.int(f"the cardinality of variable {v}", 1)
        out.append(np.array([t.number(f"P(variable {v} = {i})") for i in range(k)]))
    return out


def read_pr(path: str) -> float:
    """A .PR file: `PR`, then log10 of the partition function (of P(evidence))."""
    t = _Tokens(str(path))
    t.word("PR")
    tok, line = t.word("log10 Z")
    try:
        return float(tok)
    except ValueError:
        raise t.error(f"expected a number, got '{tok}'", line) from None


def sampled_marginals(model, samples) -> list[np.ndarray | None]:
    """Per original UAI variable, its marginal from the draws (None where observed)."""
    out = []
    full = samples.full.reshape(-1, samples.full.shape[-1])
    index = {n: i for n, i in zip(model.ground_names(), model.state_ids())}
    for name in model.uai_names:
        if name is None:
            out.append(None)
            continue
        fam = model.vars[name.split("[")[0]]
        col = full[:, index[name]]
        out.append(np.array([(col == v).mean() for v in fam.domain.values]))
    return out


# ---------------------------------------------------------------- ebmlang -> UAI

def ground_tables(model) -> tuple[list[int], list[tuple[int, ...]], list[np.ndarray]]:
    """(cardinalities, scopes, tables) of a finite model: one UAI factor per term instance,
    its table exp(value) over the values of the distinct variables it reads."""
    sampled = [f for f in model.vars.values() if f.sampled]
    if any(not f.domain.finite for f in sampled):
        raise UserError("only models with finite domains convert to UAI")
    if len(model.state_ids(("input",))):
        raise UserError("a conditional model (with inputs) does not convert to UAI")
    ids = model.state_ids()
    position = {int(i): k for k, i in enumerate(ids)}
    cards = [f.domain.size for f in sampled for _ in range(f.space.size)]
    scopes, tables = [], []
    for kernel in model.kernels:
        term = kernel.term
        if not term.size:
            continue
        scopes_t, tables_t = _term_tables(model, kernel, position)
        scopes += scopes_t
        tables += tables_t
    return cards, scopes, tables


def _term_tables(model, kernel, position):
    term = kernel.term
    ids = np.stack([r.ids for r in term.reads]).astype(np.int64) if term.reads else np.zeros((0, term.size), np.int64)
    if len(ids) and np.any([len(set(col)) < len(col) for col in ids.T]):
        raise UserError(f"factor {term.owner} reads the same variable twice in one instance; "
                        "it cannot be written as a UAI table")
    domains = [model.vars[r.family].domain.values for r in term.reads]
    shape = tuple(len(d) for d in domains)
    values = np.empty((term.size,) + shape)
    theta = model.params.theta
    for combo in np.ndindex(*shape):
        V = [np.full((1, term.size), domains[k][c]) for k, c in enumerate(combo)]
        P = [p.pos if p.dynamic else theta[p.pos] for p in term.preads]
        I = term.space.columns()
        with np.errstate(all="ignore"):
            out = np.broadcast_to(np.asarray(kernel.fn(V, P, I, theta), float), (1, term.size))
        values[(slice(None),) + combo] = term.sign * out[0]
    if np.any(values > 700):
        raise UserError(f"factor {term.owner} has log-potentials above 700: exp overflows in a "
                        "UAI table")
    scopes = [tuple(position[int(i)] for i in col) for col in ids.T]
    return scopes, [np.exp(v) for v in values]


def write_uai(model, path: str) -> None:
    from ebmlang.io.csvio import atomic_write
    cards, scopes, tables = ground_tables(model)
    with atomic_write(path) as fh:
        fh.write(f"MARKOV\n{len(cards)}\n{' '.join(map(str, cards))}\n{len(scopes)}\n")
        for s in scopes:
            fh.write(f"{len(s)} {' '.join(map(str, s))}\n")
        for t in tables:
            fh.write(f"\n{t.size}\n{' '.join(repr(float(v)) for v in t.ravel())}\n")


def ebm_outputs(model, path: str) -> list[tuple[str, str]]:
    """(file, kind) of everything `write_ebm` writes for `path` (OUT.ebm): the model, its set
    files named after it (OUT.S0.csv, ...: two networks converted into one folder never share
    one) and its params file (OUT.params.json)."""
    out = Path(path)
    stem = out.name[:-len(out.suffix)] if out.suffix else out.name
    if '"' in stem or "\n" in stem:
        raise UserError(f"the output name {stem!r} cannot be written in a set's load(\"...\")")
    sets = [(str(out.parent / f"{stem}.{name}.csv"), "set") for name in model.uai.sets]
    return [(str(out), "ebm"), *sets, (str(out.parent / f"{stem}.params.json"), "params")]


def write_ebm(model, path: str) -> list[str]:
    """A UAI-loaded model as readable .ebm text, its set files beside it, and its tables as a
    params file (see `ebm_outputs`); returns the files written."""
    from ebmlang.io.csvio import atomic_write, write_params_json
    tr = model.uai
    files = [f for f, _ in ebm_outputs(model, path)]
    text = tr.text
    for name, target in zip(tr.sets, files[1:-1]):  # the set lines translate() wrote
        text = text.replace(f'load("{name}.csv")', f'load("{Path(target).name}")')
    with atomic_write(files[0]) as fh:
        fh.write(text)
    for rows, target in zip(tr.sets.values(), files[1:-1]):
        with atomic_write(target) as fh:
            width = rows.shape[1]
            fh.write(",".join(["f"] + [f"u{k}" for k in range(width - 1)]) + "\n")
            fh.write("".join(",".join(map(str, r)) + "\n" for r in rows))
    write_params_json(files[-1], {k: model.params[k] for k in tr.tables}, {"converted": "uai"})
    return files

"""Tabulated conditionals for the compiled backend: issue 5's "a conditional whose blanket is
finite takes only a few values".

When no term of a part reads its bound indices or a param that differs between instances, and
every neighbour has a finite arithmetic domain (bool, spin, cat, a..b, evenly spaced sets), the
conditional of a variable is a function of its neighbours' values alone. Variables are grouped by
blanket signature (the sequence of terms and hit masks in their incidence, which fixes the
function); the generated `table_f` evaluates it once per signature and neighbour configuration
(a mixed-radix code) and stores cumulative probabilities, rebuilt only when the params change.

The kernel (`tabled_source`) then needs, per variable, where its neighbours are and how to
weigh their values into the code. Both are shared by many variables: on a lattice, every interior
site sees its neighbours at the same offsets. So variables are grouped again into patterns
(signature + neighbour offsets from the variable's own id): `code = cst[p] + sum_e coef[p, e] *
x[id + rel[p, e]]`, one sum and no search, then a draw from cdf[pbase[p] + code * K ...]. An
irregular graph simply has more patterns (at worst one per variable: the explicit neighbour
list). Where a pattern's variables lie at evenly spaced ids (a lattice's rows), the part is
given as runs (start, step, length, pattern) and the kernel computes ids from the loop index,
reading the pattern once per run; otherwise it reads an id and a pattern per variable.

Building this needs no incidence of the whole part: patterns are found CHUNK variables at a
time, and only the representatives' incidence is kept (for `table_f`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ebmlang import __version__
from ebmlang.backends.numba_codegen import _JIT, term_sig
from ebmlang.backends.numba_ground import _hitting, incidence

MAX_TABLE = 1 << 16       # table entries (configurations x values) per part
MIN_TABLE = 1024          # tabulate whenever the configurations are fewer than this
MIN_RUN = 4               # variables per run, on average, for the kernel by runs
CHUNK = 1 << 16           # variables whose incidence is built at a time, for their patterns


@dataclass
class Table:
    # for the builder: one representative variable per signature g, its neighbours' domains;
    # the part keeps the incidence of the representatives only (see `tabulation`)
    reps: np.ndarray              # (G,) a variable of each signature
    base: np.ndarray              # (G + 1,) offsets into cdf
    nb_dom: np.ndarray            # the representatives' neighbours' domains, in their order
    dom_vals: np.ndarray          # (domains, most values) padded
    dom_k: np.ndarray             # values per domain
    # for the kernel: per variable its pattern p
    pat: np.ndarray               # (m,) pattern of each variable
    rel: np.ndarray               # (P, W) neighbour ids minus the variable's id
    coef: np.ndarray              # (P, W) weight of each neighbour's value in the code
    wid: np.ndarray               # (P,) neighbours
    cst: np.ndarray               # (P,) constant of the code (+ 0.5, for rounding)
    pbase: np.ndarray             # (P,) = base[signature of p]
    cdf: np.ndarray               # cumulative probabilities, K per configuration
    theta: bytes | None = None        # the params cdf holds the conditional for
    runs: np.ndarray | None = None    # (R, 4): start, step, length, pattern per run; `runs`

    def refresh(self, build, theta, values, inc) -> None:
        key = theta.tobytes()
        if key != self.theta:
            self.build(build, theta, values, inc, self.cdf, 1.0)
            self.theta = key

    def build(self, build, theta, values, inc, cdf, beta: float) -> None:
        """The conditionals raised to the power beta into cdf (parallel tempering's tables)."""
        build(theta, values, inc.nb_ptr, self.nb_dom, self.dom_vals, self.dom_k, self.reps,
              self.base, cdf, beta, *inc.flat)


def _arithmetic(values: np.ndarray) -> tuple[float, float] | None:
    """(lo, 1 / step) when (v - lo) / step recovers each value's position exactly."""
    if len(values) == 1:
        return float(values[0]), 1.0
    inv = 1.0 / (values[1] - values[0])
    pos = ((values - values[0]) * inv + 0.5).astype(np.int64)
    return (float(values[0]), inv) if np.array_equal(pos, np.arange(len(values))) else None


def _padded(ptr: np.ndarray, values: np.ndarray, fill: int) -> np.ndarray:
    """Rows of a CSR list as an (m, widest) int64 array, `fill` after each row's end."""
    c = np.diff(ptr)
    m = len(c)
    out = np.full((m, int(c.max()) if m else 0), fill, np.int64)
    owner = np.repeat(np.arange(m), c)
    out[owner, np.arange(len(values)) - ptr[:-1][owner]] = values
    return out


def _unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows and the number of each row's. By one int64 key (the columns' ranks in
    mixed radix) when it fits: np.unique(axis=0) sorts void records, 20x slower."""
    m, n = rows.shape
    if n == 0 or m == 0:
        return rows[:1], np.zeros(m, np.int64)
    key, room = np.zeros(m, np.int64), 1
    for col in rows.T:
        u = np.unique(col)
        room *= len(u)
        if room >= 1 << 62:
            found, inverse = np.unique(rows, axis=0, return_inverse=True)
            return found, inverse.reshape(-1)
        key = key * len(u) + np.searchsorted(u, col)
    order = np.argsort(key, kind="stable")
    k = key[order]
    new = np.concatenate([[True], k[1:] != k[:-1]])
    inverse = np.empty(m, np.int64)
    inverse[order] = np.cumsum(new) - 1
    return rows[order[new]], inverse


def _static(model, ids, terms, where) -> bool:
    """No term uses its bound indices and every param read is the same for every instance
    that reads one of the variables `ids`."""
    where[ids] = 0
    try:
        for k in terms:
            t = model.terms[k]
            if term_sig(t, model.checked.consts)[1].n_index:
                return False
            rows = _hitting(t, where)
            if any(np.any(p.pos[rows] != p.pos[rows[0]]) for p in t.preads if len(rows)):
                return False
        return True
    finally:
        where[ids] = -1


def _domains(model, terms):
    """For every family the terms read: its values, their count and (lo, 1 / step), or None
    when one is not finite and evenly spaced; `dom` maps family numbers to these rows."""
    fams = list(model.vars.values())              # numbered as graph.family_of numbers them
    number = {f.name: k for k, f in enumerate(fams)}
    used = sorted({number[r.family] for k in terms for r in model.terms[k].reads})
    doms = [fams[f].domain.values for f in used]
    if any(d is None for d in doms):
        return None
    steps = [_arithmetic(d) for d in doms]
    if any(st is None for st in steps):
        return None
    dom_k = np.array([len(d) for d in doms], np.int64)
    dom_vals = np.zeros((len(doms), int(dom_k.max()) if doms else 1))
    for d, vals in enumerate(doms):
        dom_vals[d, :len(vals)] = vals
    dom = np.full(len(fams), -1, np.int64)
    dom[used] = np.arange(len(used))
    return dom, dom_vals, dom_k, steps


def _weights(doms, nb_dom, lo, hi) -> tuple[np.ndarray, float, int]:
    """For one variable's neighbours nb_dom[lo:hi]: the weight of each value in the code, the
    constant, and the number of configurations."""
    dom_vals, dom_k, steps = doms
    ds = nb_dom[lo:hi]
    ks = [int(dom_k[d]) for d in ds]
    mult = [int(np.prod(ks[e + 1:], dtype=object)) for e in range(len(ks))]
    coef = np.array([mu * steps[d][1] for mu, d in zip(mult, ds)])
    cst = -sum(c * steps[d][0] for c, d in zip(coef, ds)) + 0.5
    return coef, cst, int(np.prod(ks, dtype=object))


def _chunk_rows(model, ids, terms, where) -> tuple[np.ndarray, list[int]]:
    """Each variable's pattern as a row: per term its hit masks (+ 1, 0-padded), then its
    neighbours' ids minus its own; and the width of each of these blocks."""
    inc = incidence(model, ids, terms, where, params="none")
    blocks = [_padded(ptr, hit + 1, 0) for ptr, _inst, hit, _pos, _idx in inc.terms]
    owner = np.repeat(np.arange(len(ids)), np.diff(inc.nb_ptr))
    blocks.append(_padded(inc.nb_ptr, inc.nb_ids.astype(np.int64) - ids[owner], 0))
    return np.hstack(blocks), [b.shape[1] for b in blocks]


def _patterns(model, ids, terms, where) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(pattern of each variable, the patterns' rows, block widths), CHUNK variables at a
    time: only the distinct rows of a chunk are kept."""
    found, inverses = [], []
    for lo in range(0, len(ids), CHUNK):
        rows, widths = _chunk_rows(model, ids[lo:lo + CHUNK], terms, where)
        u, inverse = _unique_rows(rows)
        found.append((u, widths))
        inverses.append(inverse)
    widths = [max(w[b] for _, w in found) for b in range(len(found[0][1]))]
    padded = []
    for u, w in found:                     # every chunk's rows to the widest blocks
        cols = np.cumsum([0] + w)
        padded.append(np.hstack([np.pad(u[:, cols[b]:cols[b + 1]],
                                        ((0, 0), (0, widths[b] - w[b]))) for b in range(len(w))]))
    rows, inverse = _unique_rows(np.vstack(padded))
    offsets = np.cumsum([0] + [len(u) for u, _ in found])
    pat = np.concatenate([inverse[o + inv] for o, inv in zip(offsets, inverses)])
    return pat.astype(np.int32), rows, widths


def tabulation(model, ids, terms, values, tabulate, where):
    """(the tables and patterns of a part, the incidence of its representatives), or None when
    the conditional is not a function of finite neighbour values alone, or (tabulate None:
    automatic) the tables would be large."""
    m, K = len(ids), len(values)
    if tabulate is False or m == 0 or not _static(model, ids, terms, where):
        return None
    found = _domains(model, terms)
    if found is None:
        return None
    dom, dom_vals, dom_k, steps = found
    pat, rows, widths = _patterns(model, ids, terms, where)
    S = sum(widths[:-1])
    _, psig = _unique_rows(rows[:, :S])
    first = np.full(len(rows), m, np.int64)
    np.minimum.at(first, pat, np.arange(m))
    reps = np.full(psig.max() + 1, m, np.int64)
    np.minimum.at(reps, psig, first)
    inc = incidence(model, ids[reps], terms, where)
    nb_dom = dom[model.graph.family_of[inc.nb_ids]]
    weights = [_weights((dom_vals, dom_k, steps), nb_dom, inc.nb_ptr[g], inc.nb_ptr[g + 1])
               for g in range(len(reps))]
    codes = sum(w[2] for w in weights)
    if codes * K > MAX_TABLE or (tabulate is None and codes > max(m, MIN_TABLE)):
        return None
    base = np.concatenate([[0], np.cumsum([w[2] * K for w in weights])]).astype(np.int64)
    rel = np.ascontiguousarray(rows[:, S:])
    coef = np.zeros(rel.shape)
    for p, g in enumerate(psig):
        coef[p, :len(weights[g][0])] = weights[g][0]
    table = Table(np.arange(len(reps)), base, nb_dom, dom_vals, dom_k, pat, rel, coef,
                  np.diff(inc.nb_ptr)[psig], np.array([weights[g][1] for g in psig]),
                  base[psig], np.zeros(int(base[-1])))
    return table, inc


def runs(ids: np.ndarray, pat: np.ndarray, most: int) -> np.ndarray | None:
    """The variables as runs of one pattern at evenly spaced ids, rows (start, step, length,
    pattern), or None when that takes more than `most` runs. A lattice's part is a few
    runs per row (interior, edges), so the kernel reads a pattern per run instead of an id and a
    pattern per variable. The variables of a block are independent given the rest, so they are
    taken in order of (pattern, id), which makes the runs long."""
    order = np.lexsort((ids, pat))
    i, p = ids[order], pat[order]
    d = np.diff(i)
    link = p[1:] == p[:-1]                         # a and a + 1 may share a run
    stop = np.flatnonzero(~link[1:] | (d[1:] != d[:-1])) + 1    # link a does not continue a - 1
    out, a, m = [], 0, len(i)
    while a < m:
        if len(out) == most:
            return None
        if a == m - 1 or not link[a]:
            out.append((i[a], 1, 1, p[a]))
            a += 1
            continue
        k = np.searchsorted(stop, a, side="right")
        end = int(stop[k]) if k < len(stop) else m - 1   # the run's last variable
        out.append((i[a], d[a], end - a + 1, p[a]))
        a = end + 1
    return np.array(out, np.int64).reshape(-1, 4)


# ---------------------------------------------------------------- table kernels

MAX_UNROLL = 16           # widest blanket (and largest domain) given a kernel of its own


def _tabled_update(width: int, k: int, indent: str) -> str:
    """The update of the variable at `at` by table: the code's sum and the draw unrolled (no
    loop counters, no trip counts read from memory); r<e>, c<e>, cst, base: its pattern's.
    Every index is unsigned (a negative offset wraps modulo 2^64 to the same id): numba
    tests a signed index for negative wrap-around on every read, which cost a third of the
    sweep (bench/RESULTS.md, issue 14 item 4)."""
    terms = " +\n        ".join(["cst"] + [f"c{e} * xc[at + r{e}]" for e in range(width)])
    draw = " + ".join(f"(u >= cdf[t + {j}])" for j in range(k - 1)) or "0"
    store = "xc[at] = v1 if u >= cdf[t] else v0" if k == 2 else f"xc[at] = values[int({draw})]"
    lines = [f"code = ({terms})", f"t = base + uint64(code) * uint64({k})",
             "u, s0, s1 = _uniform(s0, s1)", store]
    return "\n".join(indent + line.replace("\n        ", "\n" + indent + "        ")
                     for line in lines)


def _pattern(width: int, indent: str) -> str:
    """Pattern p's neighbour offsets, weights, constant and table base into locals."""
    rel = "".join(f"r{e}, " for e in range(width))
    coef = "".join(f"c{e}, " for e in range(width))
    return "\n".join(indent + line for line in (
        f"{rel}base = {', '.join(f'uint64(rel[p, {e}])' for e in range(width + 1))}",
        f"{coef}cst = {', '.join(f'coef[p, {e}]' for e in range(width + 1))}"))


_TABLED = '''# generated by ebmlang {version}: by table, {width} neighbours x {k} values{what}
import numpy as np
from numba import njit, prange, uint64

from ebmlang.backends.numba_kernels import _seed, _uniform


{jit}
def _chain(c, x, seeds, {where}, values, rel, coef, cdf):
    """{doc}
    Pattern p: neighbours at + rel[p, :{width}] weighed by coef[p, :{width}]; the code's constant
    coef[p, {width}]; its conditionals from cdf[rel[p, {width}]], {k} per code."""
    s0, s1 = _seed(seeds[c, 0], seeds[c, 1])
    xc = x[c]
    v0, v1 = values[0], values[-1]
{body}


{jit}
def tabled(x, theta, seeds, {where}, values, rel, coef, cdf):
    """A heat-bath update of every variable of a part, in place, by table (see numba_tables);
    theta is not read (the table holds the params)."""
    for c in range(x.shape[0]):
        _chain(c, x, seeds, {where}, values, rel, coef, cdf)


@njit(cache=True, error_model="numpy", parallel=True)
def ptabled(x, theta, seeds, {where}, values, rel, coef, cdf):
    for c in prange(x.shape[0]):
        _chain(c, x, seeds, {where}, values, rel, coef, cdf)
'''


def tabled_source(width: int, k: int, runs: bool = False) -> str:
    """The update by table specialized to a blanket of `width` neighbours and a domain of `k`
    values (narrower patterns are padded with zero weights). Variables come as a stream (ids[a]
    and its pattern pat[a]) or, `runs`, as runs of one pattern at evenly spaced ids (a
    lattice's rows), the pattern read once per run."""
    if runs:
        where = "runs"
        doc = "Run q: the variables runs[q, 0] + n * runs[q, 1], n < runs[q, 2], of pattern\n" \
            "    runs[q, 3]."
        body = "\n".join(["    for q in range(runs.shape[0]):",
                          "        at, step, length, p = uint64(runs[q, 0]), uint64(runs[q, 1]), "
                          "runs[q, 2], runs[q, 3]", _pattern(width, " " * 8),
                          "        for n in range(length):", _tabled_update(width, k, " " * 12),
                          "            at += step"])
    else:
        where = "ids, pat"
        doc = "Variable ids[a] has pattern pat[a]."
        body = "\n".join(["    for a in range(ids.shape[0]):", "        p = pat[a]",
                          "        at = uint64(ids[a])", _pattern(width, " " * 8),
                          _tabled_update(width, k, " " * 8)])
    return _TABLED.format(version=__version__, width=width, k=k, what=", runs" * runs, jit=_JIT,
                          where=where, doc=doc, body=body)

"""Tabulated conditionals for the compiled backend: issue 5's "a conditional whose blanket is
finite takes only a few values".

When no term of a part reads its bound indices or a param that differs between instances, and
every neighbour has a finite arithmetic domain (bool, spin, cat, a..b, evenly spaced sets), the
conditional of a variable is a function of its neighbours' values alone. Variables are grouped by
blanket signature (the sequence of terms and hit masks in their incidence, which fixes the
function); the generated `table_f` evaluates it once per signature and neighbour configuration
(a mixed-radix code) and stores cumulative probabilities, rebuilt only when the params change.

The kernel (`numba_kernels.tabled`) then needs, per variable, where its neighbours are and how to
weigh their values into the code. Both are shared by many variables: on a lattice, every interior
site sees its neighbours at the same offsets. So variables are grouped again into patterns
(signature + neighbour offsets from the variable's own id), and the kernel reads per variable
only its pattern number: `code = cst[p] + sum_e coef[p, e] * x[id + rel[p, e]]`, one sum and no
search, then a draw from cdf[pbase[p] + code * K ...]. An irregular graph simply has more
patterns (at worst one per variable: the explicit neighbour list).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_TABLE = 1 << 16       # table entries (configurations x values) per part
MIN_TABLE = 1024          # tabulate whenever the configurations are fewer than this
MIN_RUN = 4               # variables per run, on average, for the kernel by runs


@dataclass
class Table:
    # for the builder: one representative variable per signature g, its neighbours' domains;
    # the part keeps the incidence of the representatives only (numba_backend.restrict)
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
            build(theta, values, inc.nb_ptr, self.nb_dom, self.dom_vals, self.dom_k, self.reps,
                  self.base, self.cdf, *inc.flat)
            self.theta = key


def _arithmetic(values: np.ndarray) -> tuple[float, float] | None:
    """(lo, 1 / step) when (v - lo) / step recovers each value's position exactly."""
    if len(values) == 1:
        return float(values[0]), 1.0
    inv = 1.0 / (values[1] - values[0])
    pos = ((values - values[0]) * inv + 0.5).astype(np.int64)
    return (float(values[0]), inv) if np.array_equal(pos, np.arange(len(values))) else None


def _group(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Group rows given as equal-length integer columns: (group of each row, first row of each
    group). Each column is ranked, and the ranks combined into one key when it fits 63 bits."""
    m = len(columns[0]) if columns else 0
    if not columns:
        return np.zeros(m, np.int64), np.zeros(min(m, 1), np.int64)
    key = np.zeros(m, np.int64)
    room = 1
    for col in columns:
        uniq, rank = np.unique(col, return_inverse=True)
        room *= len(uniq)
        if room >= 1 << 62:
            _, first, inverse = np.unique(np.stack(columns, axis=1), axis=0, return_index=True,
                                          return_inverse=True)
            return inverse.reshape(-1), first
        key = key * len(uniq) + rank.reshape(-1)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return inverse.reshape(-1), first


def _padded(ptr: np.ndarray, values: np.ndarray, fill: int) -> np.ndarray:
    """Rows of a CSR list as an (m, widest) array, `fill` after each row's end."""
    c = np.diff(ptr)
    m = len(c)
    out = np.full((m, int(c.max()) if m else 0), fill, values.dtype)
    owner = np.repeat(np.arange(m), c)
    out[owner, np.arange(len(values)) - ptr[:-1][owner]] = values
    return out


def _signatures(inc, m: int) -> tuple[np.ndarray, np.ndarray]:
    cols = []
    for ptr, _inst, hit, _pos, _idx in inc.terms:
        grid = _padded(ptr, hit + 1, 0)
        cols += [grid[:, q] for q in range(grid.shape[1])]
    return _group(cols)


def _static_params(inc) -> bool:
    """No term uses its bound indices and every param read is the same for all instances."""
    for _ptr, inst, _hit, pos, idx in inc.terms:
        if idx.size or (pos.size and len(inst) and np.any(pos[:, inst] != pos[:, inst[:1]])):
            return False
    return True


def _domains(model, nb_ids):
    fams = list(model.vars.values())
    used, nb_dom = np.unique(model.graph.family_of[nb_ids], return_inverse=True)
    doms = [fams[f].domain.values for f in used]
    if any(d is None for d in doms):
        return None
    steps = [_arithmetic(d) for d in doms]
    if any(s is None for s in steps):
        return None
    dom_k = np.array([len(d) for d in doms], np.int64)
    dom_vals = np.zeros((len(doms), int(dom_k.max()) if doms else 1))
    for d, vals in enumerate(doms):
        dom_vals[d, :len(vals)] = vals
    return nb_dom.reshape(-1).astype(np.int64), dom_vals, dom_k, steps


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


def tabulation(model, inc, values, tabulate) -> Table | None:
    """The tables and patterns of a part, or None when the conditional is not a function of
    finite neighbour values alone, or (tabulate None: automatic) the tables would be large."""
    m, K = len(inc.nb_ptr) - 1, len(values)
    if tabulate is False or m == 0 or not _static_params(inc):
        return None
    found = _domains(model, inc.nb_ids)
    if found is None:
        return None
    nb_dom, dom_vals, dom_k, steps = found
    sig, reps = _signatures(inc, m)
    weights = [_weights((dom_vals, dom_k, steps), nb_dom, inc.nb_ptr[a], inc.nb_ptr[a + 1])
               for a in reps]
    codes = sum(w[2] for w in weights)
    if codes * K > MAX_TABLE or (tabulate is None and codes > max(m, MIN_TABLE)):
        return None
    base = np.concatenate([[0], np.cumsum([w[2] * K for w in weights])]).astype(np.int64)
    owner = np.repeat(np.arange(m), np.diff(inc.nb_ptr))
    rel = _padded(inc.nb_ptr, inc.nb_ids - inc.ids[owner], 0)
    pat, first = _group([sig] + [rel[:, q] for q in range(rel.shape[1])])
    psig = sig[first]
    W = rel.shape[1]
    coef = np.zeros((len(first), W))
    for p, g in enumerate(psig):
        coef[p, :len(weights[g][0])] = weights[g][0]
    rep_dom = np.concatenate([nb_dom[inc.nb_ptr[a]:inc.nb_ptr[a + 1]] for a in reps])
    return Table(reps.astype(np.int64), base, rep_dom.astype(np.int64), dom_vals, dom_k,
                 pat.astype(np.int64), np.ascontiguousarray(rel[first]), coef,
                 np.diff(inc.nb_ptr)[first].astype(np.int64),
                 np.array([weights[g][1] for g in psig], np.float64), base[psig],
                 np.zeros(int(base[-1])))


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

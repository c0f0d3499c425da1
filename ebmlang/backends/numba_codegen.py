"""Generated numba source for the Gibbs updates of finite-domain families (the compiled backend).

The text depends only on the model's families and terms, never on its ground size, so a 1024 x
1024 Ising model compiles exactly as a 4 x 4 one. For each compiled family `f` it holds:

- `term_<owner>_<n>`: each term that reads `f` as a scalar function of its reads (V0, V1, ...),
  its params (P0, ...) and, if its body uses them, its bound indices (I0, ...), printed from the
  same AST as the numpy backend's vectorized `term_*`;
- `local_f`: the local log-potential of one variable of `f` at every value of its domain, a loop
  over the term instances that read it (CSR incidence arrays), the other reads coming from a
  buffer of its neighbours' values;
- `gibbs_f` / `pgibbs_f`: one heat-bath update of every variable of a block part, in
  place, chains in a loop (or numba's `prange`), each chain with its own xoroshiro128+ generator
  seeded from the caller's numpy Generator;
- `table_f`: the conditional tabulated once per parameter value, when a part's blanket is finite
  and its params do not vary by instance (see `numba_tables`). The update by table then needs
  nothing of the family: a kernel per blanket width and domain size (`numba_tables.tabled_source`)
  reads the neighbours' values, forms a code and draws from the table, with no exp per update.

Nothing here imports numba: `ebmlang check` and `ebmlang code` show the source and where each
block part runs without compiling anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from ebmlang import __version__
from ebmlang.frontend import ast as A
from ebmlang.frontend.printing import expr_text

MAX_READS = 62          # reads of one term: a bit each in the incidence `hit` mask
MAX_ARGS = 28           # values passed to one term function: CPython compiles a call with more
                        # than 30 arguments to CALL_FUNCTION_EX, which numba does not take


class Unsupported(Exception):
    """An expression or term the scalar printer does not compile (the family runs on numpy)."""


_CALLS = {"exp": "math.exp", "log": "math.log", "log1p": "math.log1p", "sqrt": "math.sqrt",
          "abs": "abs", "tanh": "math.tanh", "sigmoid": "_sigmoid", "softplus": "_softplus",
          "min": "_min", "max": "_max"}
_CMP = {"==", "!=", "<", "<=", ">", ">="}
_ARITH = {"+", "-", "*", "/"}


class ScalarPrinter:
    """AST -> numba scalar source: a term's reads as V0, V1, ..., params P0, ..., indices I0, ...
    with the numpy backend's semantics (floats throughout, numpy's error model)."""

    def __init__(self, term, consts: dict[str, float]):
        self.consts = consts
        self.vars = {r.node: k for k, r in enumerate(term.reads)}
        self.params = {p.node: k for k, p in enumerate(term.preads)}
        self.dyn = {p.node: p.dynamic for p in term.preads}
        self.index = {n: k for k, n in enumerate(term.names)}
        self.used_index = False

    def __call__(self, e: A.Expr) -> str:
        if isinstance(e, A.Num):
            return repr(float(e.value))
        if isinstance(e, (A.Name, A.Indexed)):
            return self._name(e)
        if isinstance(e, A.Call) and e.func in _CALLS:
            return f"{_CALLS[e.func]}({', '.join(self(a) for a in e.args)})"
        if isinstance(e, A.Unary):
            return f"(-{self(e.operand)})" if e.op == "-" else f"_b({self(e.operand)} == 0.0)"
        if isinstance(e, A.BinOp):
            return self._binop(e)
        raise Unsupported(f"{type(e).__name__} '{expr_text(e)}'")

    def _name(self, e) -> str:
        if e in self.vars:
            return f"V{self.vars[e]}"
        if e in self.params:
            return self._param(e)
        if isinstance(e, A.Name) and e.name in self.index:
            self.used_index = True
            return f"I{self.index[e.name]}"
        if isinstance(e, A.Name) and e.name in self.consts:
            return repr(float(self.consts[e.name]))
        raise Unsupported(f"name '{expr_text(e)}'")

    def _binop(self, e: A.BinOp) -> str:
        left, right = self(e.left), self(e.right)
        if e.op in _CMP:
            return f"_b({left} {e.op} {right})"
        if e.op in ("and", "or"):
            return f"_b(({left} != 0.0) {e.op} ({right} != 0.0))"
        if e.op == "^":
            if isinstance(e.right, A.Num) and e.right.value == 2:
                return f"_sq({left})"
            return f"({left} ** {right})"
        if e.op == "%" or e.op in _ARITH:
            return f"({left} {e.op} {right})"
        raise Unsupported(f"operator '{e.op}'")

    def _param(self, e) -> str:
        k = self.params[e]
        if not self.dyn[e]:
            return f"P{k}"
        parts = [f"P{k}"]
        for arg, stride, lo in self.dyn[e]:
            offset = f" - {float(lo)!r}" if lo else ""
            parts.append(f"{stride} * _i({self(arg)}{offset})")
        return f"theta[uint64({' + '.join(parts)})]"


# ---------------------------------------------------------------- which families compile

@dataclass(frozen=True)
class FamilyPlan:
    family: str
    terms: tuple            # indices into model.terms of the terms that read the family
    reason: str | None      # why it runs on numpy, or None when compiled


def family_terms(model, family: str) -> tuple[int, ...]:
    return tuple(k for k, t in enumerate(model.terms)
                 if t.size and any(r.family == family for r in t.reads))


def plan_family(model, family: str) -> FamilyPlan:
    """Whether the family's Gibbs update compiles, and if not, why (said by check and code)."""
    terms = family_terms(model, family)
    method = model.methods[family][0]
    if method != "gibbs":
        what = {"gaussian": "an exact Gaussian update", "mh": "a random-walk MH update",
                "hmc": "a joint HMC move", "mala": "a joint MALA move"}[method]
        return FamilyPlan(family, terms, f"{what} (numba compiles finite-domain Gibbs only)")
    for k in terms:
        t = model.terms[k]
        if len(t.reads) > MAX_READS:
            return FamilyPlan(family, terms, f"{t.owner} reads more than {MAX_READS} variables")
        if len(t.reads) + len(t.preads) > MAX_ARGS:
            return FamilyPlan(family, terms, f"{t.owner} reads {len(t.reads) + len(t.preads)} "
                              f"variables and params per instance (the compiled kernel takes "
                              f"at most {MAX_ARGS})")
        try:
            ScalarPrinter(t, model.checked.consts)(t.body)
        except Unsupported as exc:
            return FamilyPlan(family, terms, f"{t.owner}: unsupported {exc}")
    return FamilyPlan(family, terms, None)


def plans(model) -> dict[str, FamilyPlan]:
    return {f.name: plan_family(model, f.name) for f in model.vars.values() if f.sampled}


def placement_text(model) -> str:
    """Where each block part runs: the lines `ebmlang check` and `ebmlang code` print."""
    ps = plans(model)
    rows = []
    for b in model.graph.blocks:
        for p in b.parts:
            plan = ps[p.family]
            label = b.label if len(b.parts) == 1 else f"{b.label}: {p.family}"
            if plan.reason is None:
                where = ("numba", f"gibbs_{p.family}, or by table when its blanket is finite "
                         "and no param differs by instance")
            else:
                where = ("numpy", plan.reason)
            rows.append((f"{label} ({len(p.ids):,})",) + where)
    width = max(len(r[0]) for r in rows) if rows else 0
    return "\n".join(["backends   where sample runs each block part (--backend numpy: all on "
                      "numpy, the reference)"] +
                     [f"  {r[0]:<{width}}  {r[1]}  {r[2]}" for r in rows])


# ---------------------------------------------------------------- source

_JIT = '@njit(cache=True, error_model="numpy")'
MAX_INLINE_ARGS = 30      # CPython passes more arguments as a tuple, which numba cannot inline


def _decorator(n_args: int) -> str:
    """Inline the scalar and local functions into their callers (no call, no copies of the
    array arguments), unless they take too many arguments to inline."""
    return '@njit(inline="always")' if n_args <= MAX_INLINE_ARGS else _JIT


IMPORTS = """import math

import numpy as np
from numba import njit, prange, uint64

from ebmlang.backends.numba_kernels import (_b, _cdf, _draw, _i, _max, _min, _seed, _sigmoid, _softplus,
                                   _sq, _uniform, _width)

"""


def term_sig(t, consts) -> tuple[str, "TermSig"]:
    """The term's scalar body and the arguments its function takes."""
    pr = ScalarPrinter(t, consts)
    body = pr(t.body)
    dynamic = any(p.dynamic for p in t.preads)
    return body, TermSig(len(t.reads), len(t.preads), len(t.names) if pr.used_index else 0,
                         dynamic)


def term_source(t, consts) -> tuple[str, "TermSig"]:
    body, sig = term_sig(t, consts)
    kind = "energy" if t.sign < 0 else "factor"
    reads = ", ".join(f"V{k} = {expr_text(r.node)}" for k, r in enumerate(t.reads))
    preads = ", ".join(f"P{k} = {expr_text(p.node)}" for k, p in enumerate(t.preads))
    idx = ", ".join(f"I{k} = {n}" for k, n in enumerate(t.names[:sig.n_index]))
    doc = "\n".join(f"    {line}" for line in (reads, preads, idx) if line)
    return "\n".join([
        _decorator(len(sig.args())), f"def {term_name(t)}({', '.join(sig.args())}):",
        f'    """{kind} {t.owner}, term {t.number}: {expr_text(t.body)}', doc, '    """',
        f"    return {body}", "", ""]), sig


@dataclass(frozen=True)
class TermSig:
    n_reads: int
    n_params: int
    n_index: int           # bound indices the body uses (0: none are passed)
    dynamic: bool          # a param indexed by variables: theta is passed

    def args(self) -> list[str]:
        return [f"V{k}" for k in range(self.n_reads)] + [f"P{k}" for k in range(self.n_params)] \
            + [f"I{k}" for k in range(self.n_index)] + (["theta"] if self.dynamic else [])


def term_name(t) -> str:
    return f"term_{t.owner}_{t.number}"


def term_arrays(n_terms: int) -> str:
    """The incidence arrays of a family's terms, as arguments: ptr0, inst0, hit0, pos0, idx0,
    ptr1, ... (flat: numba's parallel loops take no tuples of arrays)."""
    names = ("ptr", "inst", "hit", "pos", "idx")
    return ", ".join(f"{a}{j}" for j in range(n_terms) for a in names)


def wrap(text: str, indent: int) -> str:
    import textwrap
    return textwrap.fill(text, 96, subsequent_indent=" " * indent, break_long_words=False,
                         break_on_hyphens=False)


def _local_source(model, family: str, terms: tuple, sigs: dict) -> str:
    head = f"def local_{family}(a, buf, values, theta, out, {term_arrays(len(terms))}):"
    out = [_decorator(5 + 5 * len(terms)), wrap(head, len(f"def local_{family}(")),
           f'    """out[k]: the local log-potential of variable a of {family} at values[k]; buf: '
           'the other\n    variables its terms read, term by term, instance by instance (every '
           'index\n    unsigned: numba tests a signed one for wrap-around on each read)."""',
           "    K = values.shape[0]", "    for k in range(K):", "        out[k] = 0.0",
           "    a = uint64(a)", "    b = uint64(0)"]
    for j, k in enumerate(terms):
        t = model.terms[k]
        out += _term_loop(t, j, family, sigs[k])
    return "\n".join(out + ["", ""])


def _term_loop(t, j: int, family: str, sig: TermSig) -> list[str]:
    out = [f"    # {t.owner}, term {t.number}: {expr_text(t.body)}",
           f"    for e in range(uint64(ptr{j}[a]), uint64(ptr{j}[a + uint64(1)])):",
           f"        n = uint64(inst{j}[e])",
           f"        h = hit{j}[e]"]
    for q, p in enumerate(t.preads):
        out.append(f"        P{q} = pos{j}[{q}, n]" if p.dynamic
                   else f"        P{q} = theta[uint64(pos{j}[{q}, n])]")
    out += [f"        I{q} = idx{j}[{q}, n]" for q in range(sig.n_index)]
    args = []
    for r, read in enumerate(t.reads):
        if read.family == family:
            out += [f"        V{r} = 0.0", f"        if h & {1 << r} == 0:",
                    f"            V{r} = buf[b]", "            b += uint64(1)"]
            args.append(f"u if h & {1 << r} else V{r}")
        else:
            out += [f"        V{r} = buf[b]", "        b += uint64(1)"]
            args.append(f"V{r}")
    args += sig.args()[sig.n_reads:]
    op = "+=" if t.sign > 0 else "-="
    out += ["        for k in range(K):", "            u = values[k]",
            f"            out[k] {op} {term_name(t)}({', '.join(args)})"]
    return out


_CHAIN = '''
        s0, s1 = _seed(seeds[c, 0], seeds[c, 1])
        buf = np.empty(_width(nb_ptr))
        logits = np.empty(values.shape[0])
        for a in range(uint64(ids.shape[0])):
            lo = uint64(nb_ptr[a])
            for e in range(lo, uint64(nb_ptr[a + uint64(1)])):
                buf[e - lo] = x[c, uint64(nb_ids[e])]
{call}{temper}
            u, s0, s1 = _uniform(s0, s1)
            x[c, uint64(ids[a])] = values[uint64(_draw(logits, u))]'''

_TEMPER = '''
            for k in range(values.shape[0]):
                logits[k] *= beta[c]'''

_FAMILY = '''{jit}
{gibbs_head}
    """A heat-bath update of every variable ids[a] of {f}, in place, in every chain."""
    for c in range(x.shape[0]):{chain}


@njit(cache=True, error_model="numpy", parallel=True)
{pgibbs_head}
    """gibbs_{f} with the chains spread over threads."""
    for c in prange(x.shape[0]):{chain}


{jit}
{tgibbs_head}
    """gibbs_{f} on beta[c] times the log-potential in chain c (parallel tempering)."""
    for c in range(x.shape[0]):{tchain}


@njit(cache=True, error_model="numpy", parallel=True)
{ptgibbs_head}
    """tgibbs_{f} with the chains spread over threads."""
    for c in prange(x.shape[0]):{tchain}


{jit}
{table_head}
    """The conditional of {f}, raised to the power beta, for every configuration of the
    neighbours of reps[g] (one representative per blanket signature g), as cumulative
    probabilities from cdf[base[g]]."""
    K = values.shape[0]
    logits = np.empty(K)
    for g in range(reps.shape[0]):
        a = reps[g]
        lo = nb_ptr[a]
        width = nb_ptr[a + 1] - lo
        buf = np.empty(width)
        for code in range((base[g + 1] - base[g]) // K):
            r = code
            for e in range(width - 1, -1, -1):
                d = nb_dom[lo + e]
                buf[e] = dom_vals[d, r % dom_k[d]]
                r //= dom_k[d]
{call}
            if beta != 1.0:
                for k in range(K):
                    logits[k] *= beta
            _cdf(logits, cdf, base[g] + code * K)


'''


def _family_source(f: str, n_terms: int) -> str:
    T = term_arrays(n_terms)
    heads = {}
    update = "x, theta, seeds, ids, values, nb_ptr, nb_ids"
    table = "theta, values, nb_ptr, nb_dom, dom_vals, dom_k, reps, base, cdf, beta"
    tupdate = "x, theta, seeds, beta, ids, values, nb_ptr, nb_ids"
    for name, args in (("gibbs", update), ("pgibbs", update), ("table", table),
                       ("tgibbs", tupdate), ("ptgibbs", tupdate)):
        heads[f"{name}_head"] = wrap(f"def {name}_{f}({args}, {T}):", len(f"def {name}_{f}("))
    call = wrap(f"            local_{f}(a, buf, values, theta, logits, {T})",
                 12 + len(f"local_{f}("))
    return _FAMILY.format(f=f, jit=_JIT, chain=_CHAIN.format(call=call, temper=""), call=call,
                          tchain=_CHAIN.format(call=call, temper=_TEMPER), **heads)


def generate_numba(model) -> str:
    """The numba module for every compiled family of the model (only the imports when none)."""
    consts = model.checked.consts
    out = [f"# generated by ebmlang {__version__} for model '{model.name}' (numba backend); "
           "do not edit", IMPORTS]
    compiled = [p for p in plans(model).values() if p.reason is None]
    sigs = {}
    for k in sorted({k for p in compiled for k in p.terms}):
        text, sigs[k] = term_source(model.terms[k], consts)
        out.append(text)
    for p in compiled:
        out.append(_local_source(model, p.family, p.terms, sigs))
        out.append(_family_source(p.family, len(p.terms)))
    return "\n".join(out).rstrip() + "\n"

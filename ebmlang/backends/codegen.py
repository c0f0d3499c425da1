"""Phase 6: generated Python source for every term's log-potential (numpy backend).

Each term becomes a function `(V, P, I, theta) -> values`, vectorized over chains and
instances: V[k] is the k-th distinct variable read (chains x instances), P[k] the k-th param read
(instances), I[k] the k-th bound index, theta the flat parameter vector (for tables indexed by
variables). Consts are inlined as literals. The text is deterministic and readable; `ebmlang
code` prints exactly what runs. It is compiled under a stable file name and registered with
linecache, as sympy's lambdify does, so tracebacks and inspect work.
"""

from __future__ import annotations

import functools
import hashlib
import linecache

from ebmlang.frontend import ast as A
from ebmlang import __version__
from ebmlang.middle.lower import Term
from ebmlang.frontend.printing import expr_text

PRELUDE = '''import numpy
import numpy as np


def _b(x):
    """A truth value as 1.0 or 0.0."""
    return np.asarray(x, dtype=np.float64)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _i(x):
    """A variable's value used as an index."""
    return np.rint(x).astype(np.int64)
'''

_CALLS = {"exp": "np.exp", "log": "np.log", "log1p": "np.log1p", "sqrt": "np.sqrt",
          "abs": "np.abs", "tanh": "np.tanh", "sigmoid": "_sigmoid", "min": "np.minimum",
          "max": "np.maximum"}
_CMP = {"==", "!=", "<", "<=", ">", ">="}


class _Printer:
    def __init__(self, term: Term, consts: dict[str, float]):
        self.consts = consts
        self.vars = {r.node: k for k, r in enumerate(term.reads)}
        self.params = {p.node: k for k, p in enumerate(term.preads)}
        self.dyn = {p.node: p.dynamic for p in term.preads}
        self.index = {n: k for k, n in enumerate(term.names)}

    def __call__(self, e: A.Expr) -> str:
        if isinstance(e, A.Num):
            return repr(int(e.value)) if e.is_int else repr(e.value)
        if isinstance(e, (A.Name, A.Indexed)):
            if e in self.vars:
                return f"V[{self.vars[e]}]"
            if e in self.params:
                return self._param(e)
            if isinstance(e, A.Name) and e.name in self.index:
                return f"I[{self.index[e.name]}]"
            if isinstance(e, A.Name) and e.name in self.consts:
                return repr(self.consts[e.name])
            raise KeyError(e)
        if isinstance(e, A.Call):
            args = ", ".join(self(a) for a in e.args)
            if e.func == "softplus":
                return f"np.logaddexp(0.0, {args})"
            return f"{_CALLS[e.func]}({args})"
        if isinstance(e, A.Unary):
            return f"(-{self(e.operand)})" if e.op == "-" else f"_b({self(e.operand)} == 0)"
        left, right = self(e.left), self(e.right)
        if e.op in _CMP:
            return f"_b({left} {e.op} {right})"
        if e.op in ("and", "or"):
            fn = "np.logical_and" if e.op == "and" else "np.logical_or"
            return f"_b({fn}({left} != 0, {right} != 0))"
        if e.op == "^":
            if isinstance(e.right, A.Num) and e.right.value == 2:
                return f"np.square({left})"
            return f"np.power({left}, {right})"
        if e.op == "%":
            return f"np.mod({left}, {right})"
        return f"({left} {e.op} {right})"

    def _param(self, e) -> str:
        k = self.params[e]
        dynamic = self.dyn[e]
        if not dynamic:
            return f"P[{k}]"
        parts = [f"P[{k}]"]
        for arg, stride, lo in dynamic:
            offset = f" - {lo}" if lo else ""
            scale = f"{stride} * " if stride != 1 else ""
            parts.append(f"{scale}_i({self(arg)}{offset})")
        return f"theta[{' + '.join(parts)}]"


def term_function_name(term: Term, is_stat: bool, kind: str = "") -> str:
    return f"{kind or ('stat' if is_stat else 'term')}_{term.owner}_{term.number}"


@functools.lru_cache(maxsize=1)
def _deriv_printer():
    """The printer class, made on first use: sympy is imported only when code is generated
    (a model loaded from the compiled-model cache runs without it)."""
    from sympy.printing.numpy import NumPyPrinter

    class _DerivPrinter(NumPyPrinter):
        """sympy -> numpy text, with a term's symbols printed as the kernel's arrays."""

        def __init__(self, names: dict[str, str]):
            super().__init__({"fully_qualified_modules": True, "strict": True})
            self.names = names

        def _print_Symbol(self, e):
            return self.names.get(e.name, e.name)

        def _print_Ind(self, e):
            return f"_b({self._print(e.args[0])})"

        def _print_sigmoid(self, e):
            return f"_sigmoid({self._print(e.args[0])})"

        def _print_softplus(self, e):
            return f"numpy.logaddexp(0.0, {self._print(e.args[0])})"

    return _DerivPrinter


SHARED_READS = 8  # a function call reading more symbols than this is computed once per grad_*


def _shared_calls(derivs: list):
    """([(symbol, call)], derivatives with those calls replaced): a large call that several
    derivatives share (sigmoid(c[j] + sum(i) W[i, j] v[i]) in each d/dW[i, j] of a softplus)
    is printed once, so the source grows with the number of reads, not its square."""
    import sympy as sp
    seen: dict = {}
    memo: dict = {}
    for d in derivs:
        for f in _calls(d, memo)[0]:
            seen[f] = seen.get(f, 0) + 1
    big = [f for f, n in seen.items() if n > 1 and len(memo[f][1]) > SHARED_READS]
    outer = [f for f in big if not any(f is not g and g.has(f) for g in big)]
    if not outer:
        return [], derivs
    names = {f: sp.Symbol(f"_c{k}") for k, f in enumerate(sorted(outer, key=sp.default_sort_key))}
    return [(s, f) for f, s in names.items()], [d.xreplace(names) for d in derivs]


def _calls(e, memo: dict) -> tuple[frozenset, frozenset]:
    """(the function calls in e, its free symbols), each distinct subtree walked once: `memo`,
    shared between calls, keeps both per node, so 785 derivatives that share one 784-term
    call cost one walk of it, not 785 (sympy's atoms and free_symbols walk it every time)."""
    import sympy as sp
    stack = [e]
    while stack:
        node = stack[-1]
        if node in memo:
            stack.pop()
            continue
        todo = [a for a in node.args if a not in memo]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        calls = frozenset().union(*(memo[a][0] for a in node.args))
        syms = frozenset().union(*(memo[a][1] for a in node.args))
        if isinstance(node, sp.Function):
            calls = calls | {node}
        if node.is_Symbol:
            syms = frozenset((node,))
        memo[node] = (calls, syms)
    return memo[e]


def _derivative_function(t: Term, consts) -> list[str]:
    """`grad_*` returns d(value)/d(param read k) for every k; `where_*` the theta positions of
    param reads whose index is read from variables (None for the others)."""
    from ebmlang.middle.derivatives import param_derivatives
    pr = _Printer(t, consts)
    names = {f"V{k}": f"V[{k}]" for k in range(len(t.reads))}
    names.update({f"I{k}": f"I[{k}]" for k in range(len(t.names))})
    names.update({f"P{k}": pr._param(p.node) for k, p in enumerate(t.preads)})
    printer = _deriv_printer()(names)
    shared, exprs = _shared_calls(param_derivatives(t, consts))
    derivs = [printer.doprint(d) for d in exprs]
    sign = "" if t.sign > 0 else "-"
    out = [f"def {term_function_name(t, False, 'grad')}(V, P, I, theta):",
           f'    """d/d(params) of {expr_text(t.body)}"""']
    out += [f"    {s.name} = {printer.doprint(e)}" for s, e in shared]
    out += [f"    return [{', '.join(f'{sign}({d})' for d in derivs)}]", ""]
    where = []
    for k, p in enumerate(t.preads):
        if p.dynamic:
            where.append(pr._param(p.node)[len("theta["):-1])
        else:
            where.append("None")
    out += [f"def {term_function_name(t, False, 'where')}(V, P, I):",
            f"    return [{', '.join(where)}]", ""]
    return out


def generate(model_name: str, terms: list[Term], stat_terms: list[Term],
             consts: dict[str, float]) -> str:
    """The whole generated module, as text."""
    out = [f"# generated by ebmlang {__version__} for model '{model_name}'; do not edit", "",
           PRELUDE]
    for is_stat, group in ((False, terms), (True, stat_terms)):
        for t in group:
            body = _Printer(t, consts)(t.body)
            reads = ", ".join(f"V[{k}] = {expr_text(r.node)}" for k, r in enumerate(t.reads))
            preads = ", ".join(f"P[{k}] = {expr_text(p.node)}" for k, p in enumerate(t.preads))
            idx = ", ".join(f"I[{k}] = {n}" for k, n in enumerate(t.names))
            kind = "stat" if is_stat else ("energy" if t.sign < 0 else "factor")
            doc = f"{kind} {t.owner}, term {t.number}: {expr_text(t.body)}"
            out += ["", f"def {term_function_name(t, is_stat)}(V, P, I, theta):",
                    f'    """{doc}', ""]
            for line in (reads, preads, idx):
                if line:
                    out.append(f"    {line}")
            out += ['    """', f"    return {body}", ""]
            if not is_stat:
                out += [""] + _derivative_function(t, consts)
    return "\n".join(out)


def load_module(source: str) -> dict:
    """Compile generated source (built from the checked AST only) into a namespace."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    filename = f"<ebmlang-generated-{digest}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {"__name__": f"ebmlang_generated_{digest}"}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace

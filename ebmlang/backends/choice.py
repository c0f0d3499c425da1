"""Which kernel runs each block part of a sampling sweep on the default backend ("auto"), and
the reason `ebmlang check` prints for it.

- Every term a contraction and every family drawn whole by exact Gibbs (`fused.unfused` says
  why not otherwise; RBMs, deep Boltzmann machines): the fused sweep, a few matrix products per
  family (`fused.FusedPart`). At 784 x 500 with 100 chains it is about 60x the per-instance
  compiled kernel, which loops over every (v, h) pair (bench/RESULTS.md).
- Otherwise, per part: a Gibbs part over a finite domain whose every term is a contraction
  runs as the numpy part, whose fields are matrix products (`dense.py`);
- every other part as the compiled numba kernel (table or direct, `numba_codegen`), or numpy
  where it does not compile (the reason from `numba_codegen.plan_family`).

- A model of one finite family whose every term is g(affine sum) (`backends/preact.py`; the
  free-energy RBM): one compiled scan per sweep with each term's sum kept up to date.

`backend="numba"` keeps the compiled kernels everywhere they compile, `backend="numpy"` the
numpy reference.
"""

from __future__ import annotations

from ebmlang.errors import UserError
from ebmlang.backends.fused import FusedModel, fused_parts, fused_step, unfused
from ebmlang.backends.runtime import PartKernel, gibbs_step as numpy_step


def contraction_part(part: PartKernel, finite: bool) -> bool:
    """A numpy part whose fields are all matrix products: exact Gibbs over a finite domain,
    every term touching it a contraction."""
    return part.method == "gibbs" and finite and bool(part.touches) and \
        all(t.dense for t in part.touches)


def auto_parts(model):
    """(block parts, sweep function) of the default backend, as described above."""
    fused = FusedModel.build(model)
    if fused is not None:
        return fused_parts(fused), fused_step
    from ebmlang.backends.preact import PreactPart, preact_step, why_not
    if why_not(model) is None:
        return [[PreactPart(model)]], preact_step
    from ebmlang.backends.numba_backend import gibbs_step
    compiled, plain = model.parts("numba"), model.parts()
    if not any(contraction_part(p, model.vars[p.family].domain.finite)
               for block in plain for p in block):
        return compiled, gibbs_step
    return [[p if contraction_part(p, model.vars[p.family].domain.finite) else c
             for c, p in zip(cblock, pblock)]
            for cblock, pblock in zip(compiled, plain)], gibbs_step


def sweep_parts(model, backend: str | None):
    """(block parts, sweep function) of a backend: "auto" (None) as above, "numba" the
    compiled kernels wherever they compile, "numpy" the reference. Sampling, parallel
    tempering, AIS and map's annealing all take their parts from here (the last three run
    them at an inverse temperature, `infer.tempering.tempered_sweep`)."""
    backend = "auto" if backend is None else backend
    if backend == "auto":
        return auto_parts(model)
    if backend == "numpy":
        return model.parts(), numpy_step
    if backend == "numba":
        from ebmlang.backends.numba_backend import gibbs_step
        return model.parts("numba"), gibbs_step
    raise UserError(f"unknown backend '{backend}': use auto, numba or numpy")


TEMPERED_TEXT = (
    "tempered   parallel tempering, logz's AIS and map's annealing run the parts above at an "
    "inverse temperature beta:\n"
    "           tables built at beta (direct kernels scale their logits by beta), the fused "
    "sweep and pre-activations\n"
    "           scale their fields by beta; real families keep their exact tempered Gaussian "
    "or MH moves (AIS mixing in its N(0, 1) base)")


def sample_text(model) -> str:
    """The lines `ebmlang check` prints on where `sample` runs each block part, and why."""
    why = unfused(model)
    head = "backends   where sample runs each block part (default; --backend numba: compiled " \
           "kernels where they compile, --backend numpy: all numpy, the reference)"
    rows = []
    if why is None:
        for b in model.graph.blocks:
            for p in b.parts:
                rows.append((_label(b, p), "matrix products",
                             "the fused sweep: every term a contraction, every family drawn "
                             "whole by exact Gibbs"))
        return _table(head, rows)
    from ebmlang.backends.preact import why_not
    preact = why_not(model)
    if preact is None:
        fam = next(iter(model.vars))
        return _table(head, [(f"{fam} ({model.vars[fam].space.size:,})", "numba pre-activations",
                              "every term g(affine sum of variables): one compiled scan per "
                              "sweep, each term's sum kept up to date incrementally")]) + \
            f"\n  not the fused sweep: {why}"
    from ebmlang.backends.numba_codegen import plans
    ps, plain = plans(model), model.parts()
    for b, pblock in zip(model.graph.blocks, plain):
        for p, part in zip(b.parts, pblock):
            if contraction_part(part, model.vars[p.family].domain.finite):
                rows.append((_label(b, p), "numpy matrix products",
                             "every term on it a contraction"))
            elif part.method in ("hmc", "mala"):
                from ebmlang.backends.xgrad import numpy_reason
                slow = numpy_reason(model, [p.family])
                rows.append((_label(b, p), "numba gradient" if slow is None else "numpy gradient",
                             f"a joint {part.method.upper()} move after the other parts"
                             + ("" if slow is None else f": {slow}")))
            elif ps[p.family].reason is None:
                rows.append((_label(b, p), "numba", f"gibbs_{p.family}, or by table when its "
                             "blanket is finite and no param differs by instance"))
            else:
                rows.append((_label(b, p), "numpy", ps[p.family].reason))
    return _table(head, rows) + f"\n  not the fused sweep: {why}"


def _label(block, part) -> str:
    label = block.label if len(block.parts) == 1 else f"{block.label}: {part.family}"
    return f"{label} ({len(part.ids):,})"


def _table(head: str, rows) -> str:
    w0 = max((len(r[0]) for r in rows), default=0)
    w1 = max((len(r[1]) for r in rows), default=0)
    return "\n".join([head] + [f"  {a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows])

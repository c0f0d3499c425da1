"""The compiled model and the driver that chains the phases: parse, check, lower, graph,
codegen, runtime. `ebmlang.load` and `ebmlang.compile` return a `Model`.

A compiled model is kept in the cache (`ebmlang.model_cache`), keyed by the model text and name,
the base directory, the const overrides, preloaded sets, ebmlang's source and the library
versions; the set files it read are checked by content when it is loaded. A warm load
unpickles the checked model, the ground terms, the graph's blocks and the generated numpy
source: no parsing, sympy or networkx (they load on demand, for `conditionals` or the
family graph)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import hashlib
import pickle

from ebmlang import model_cache
from ebmlang.errors import Source, UserError
from ebmlang.frontend.check import CheckedModel, check, parse_override
from ebmlang.middle.lower import Term, lower
from ebmlang.middle.graph import Graph, build_graph
from ebmlang.backends.codegen import load_module, term_function_name
from ebmlang.backends.params import Params, init_params
from ebmlang.backends.resources import blas_threads, product_flops, trim_heap
from ebmlang.backends.runtime import TermKernel, block_parts, total_log_potential


class Model:
    """A compiled ebmlang model: its declarations, terms, graph, generated code and params."""

    def __init__(self, checked: CheckedModel, path: Path | None):
        self.checked = checked
        self.path = path
        self.name = checked.name
        self.terms: list[Term] = []
        for f in checked.factors:
            outer = _owner_space(checked, f.index, f.name)
            self.terms += lower(checked, f.name, f.kind, f.index, f.expr, outer)
        self.stat_terms: list[Term] = []
        for s in checked.stats.values():
            self.stat_terms += lower(checked, s.name, "stat", s.index, s.expr, s.space)
        self.graph: Graph = build_graph(checked, self.terms)
        from ebmlang.backends.codegen import generate
        self.source = generate(self.name, self.terms, self.stat_terms, checked.consts)
        from ebmlang.backends.dense import detect
        self._link([detect(t, checked) for t in self.terms])
        from ebmlang.middle.symbolic import real_form
        self.real_forms = {f.name: real_form(self, f) for f in checked.vars.values()
                           if f.sampled and not f.domain.finite}
        self.gradient_why: dict[str, str | None] = {}  # undeclared non-Gaussian real families:
        # None where d log p / dx exists (sample's default is then HMC), else why not
        self.methods = {f.name: self._method(f) for f in checked.vars.values() if f.sampled}
        trim_heap()

    def _link(self, dense: list) -> None:
        """The kernels from the generated source, fresh params, no parts yet."""
        ns = load_module(self.source)
        self.kernels = [TermKernel(t, ns[term_function_name(t, False)],
                                   ns[term_function_name(t, False, "grad")],
                                   ns[term_function_name(t, False, "where")]) for t in self.terms]
        for k, d in zip(self.kernels, dense):
            k.dense = d
        self.stat_kernels = [TermKernel(t, ns[term_function_name(t, True)]) for t in self.stat_terms]
        self.params = Params(self.checked, init_params(self.checked))
        self._parts = None
        self._numba_parts = None

    _STORED = ("checked", "name", "terms", "stat_terms", "graph", "source", "methods",
               "gradient_why")

    def _stored_state(self) -> dict:
        """What the cache keeps: the compiled phases, not the kernels (made again from the
        source) nor the params; real forms without their sympy coefficients."""
        import dataclasses
        state = {k: getattr(self, k) for k in self._STORED}
        state["dense"] = [k.dense for k in self.kernels]
        state["real_forms"] = {n: dataclasses.replace(f, quad=None, lin=None)
                               for n, f in self.real_forms.items()}
        from ebmlang.infer.cluster import symbolic_pairs
        state["_pair_memo"] = symbolic_pairs(self)   # so that a warm run needs no sympy
        return state

    @classmethod
    def _restore(cls, state: dict, path: Path | None) -> "Model":
        model = cls.__new__(cls)
        for k in cls._STORED + ("real_forms", "_pair_memo"):
            setattr(model, k, state[k])
        model.path = path
        model._link(state["dense"])
        return model

    def _method(self, fam) -> tuple[str, float, bool]:
        """(method, MH scale, adapt the scale) for a sampled family."""
        decl = self.checked.samplers.get(fam.name)
        if decl is not None and decl.method == "mh":
            scale = decl.args.get("scale")
            return "mh", float(scale) if scale is not None else 1.0, scale is None
        if decl is not None and decl.method in ("swendsen_wang", "wolff") and \
                not fam.domain.finite:
            raise UserError(f"sampler {decl.method} for '{fam.name}' needs a finite domain",
                            decl.span)
        if decl is not None and decl.method in ("hmc", "mala"):
            if fam.domain.finite:
                raise UserError(f"sampler {decl.method} for '{fam.name}' needs a real domain "
                                "(it follows the gradient in x)", decl.span)
            return decl.method, float(decl.args.get("steps", 10)), True
        if fam.domain.finite:
            return "gibbs", 1.0, False
        if self.real_forms[fam.name].kind == "gaussian":
            return "gaussian", 1.0, False
        if decl is not None and decl.method == "gibbs":
            raise UserError(f"sampler gibbs for '{fam.name}' needs a finite domain or a quadratic "
                            "(Gaussian) conditional; use mh", decl.span)
        from ebmlang.backends.xgrad import gradient_why_not
        self.gradient_why[fam.name] = gradient_why_not(self, fam.name)
        return "mh", 1.0, True      # `sample` runs HMC where gradient_why is None (infer.hmc)

    def sampler_text(self, family: str) -> str:
        method, scale, adapt = self.methods[family]
        if method == "gibbs":
            from ebmlang.infer.cluster_moves import family_text
            return family_text(self, family) or "Gibbs, exact"
        if method == "gaussian":
            return "Gibbs, exact Gaussian"
        from ebmlang.infer.hmc import method_text
        return method_text(self, family)

    # ------------------------------------------------------------ structure
    @property
    def vars(self):
        return self.checked.vars

    @property
    def blocks(self):
        return self.graph.blocks

    def parts(self, backend: str = "numpy"):
        """Kernels per block part. backend "numba": compiled parts where the family compiles,
        the numpy ones elsewhere (see `numba_backend.compiled_parts`)."""
        if backend == "numba":
            if self._numba_parts is None:
                from ebmlang.backends.numba_backend import compiled_parts
                self._numba_parts = compiled_parts(self)
                trim_heap()
            return self._numba_parts
        if self._parts is None:
            self._parts = block_parts(self.graph.blocks, self.checked, self.kernels, self.methods)
        return self._parts

    def ground_names(self, kinds=("var", "latent")) -> list[str]:
        """Ground variable names in state order, e.g. `s[0,1]`."""
        return list(self.iter_ground_names(kinds))

    def iter_ground_names(self, kinds=("var", "latent"), chunk: int = 65536):
        """The ground names one at a time, their index tuples made a chunk at a time."""
        from ebmlang.io.csvio import format_ground_name
        for f in self.vars.values():
            if f.kind not in kinds:
                continue
            for start in range(0, f.space.size, chunk):
                rows = np.arange(start, min(start + chunk, f.space.size))
                cols = [c.tolist() for c in f.space.columns(rows)]
                for idx in zip(*cols) if cols else [()] * len(rows):
                    yield format_ground_name(f.name, idx)

    def state_ids(self, kinds=("var", "latent")) -> np.ndarray:
        ids = [np.arange(f.offset, f.offset + f.space.size) for f in self.vars.values()
               if f.kind in kinds]
        return np.concatenate(ids) if ids else np.zeros(0, np.int64)

    # ------------------------------------------------------------ evaluation
    def log_potential(self, x: np.ndarray) -> np.ndarray:
        """log p(x) + log Z for full states x of shape (n, n_state)."""
        return total_log_potential(self.kernels, np.atleast_2d(np.asarray(x, float)),
                                   self.params.theta)

    def stat_values(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every declared stat on states x (n, n_state): name -> (n, *stat shape)."""
        x = np.atleast_2d(x)
        out = {name: np.zeros((x.shape[0], s.space.size)) for name, s in self.checked.stats.items()}
        for k in self.stat_kernels:
            t = k.term
            if not t.size:
                continue
            vals = k.values(x, self.params.theta)
            acc = out[t.owner]
            if t.outer_rows is None:
                acc += vals
                continue
            rows, size = acc.shape                  # one bincount for every row at once
            bins = (np.arange(rows)[:, None] * size + t.outer_rows[None, :]).ravel()
            acc += np.bincount(bins, weights=vals.ravel(), minlength=rows * size).reshape(rows, size)
        res = {}
        for name, s in self.checked.stats.items():
            arr = out[name]
            res[name] = arr[:, 0] if s.index is None else (
                arr.reshape((x.shape[0],) + s.space.shape) if s.space.dense else arr)
        return res

    # ------------------------------------------------------------ tasks
    def sample(self, draws: int = 1000, chains: int = 4, burn_in: int | None = None,
               thin: int = 1, seed: int | None = None, inputs=None, params=None,
               progress: bool | None = False, clamp=None, backend: str | None = None,
               keep: bool = True, watch=(), tempering: int = 1, tempering_min=None, ray=None):
        """Gibbs draws; see `ebmlang.infer.sample.sample`. `ray`: True (RAY_ADDRESS, else a
        local Ray for the run) or a cluster address runs the chain groups as Ray tasks, with
        the same draws as here."""
        from ebmlang.infer.sample import sample
        try:
            with blas_threads(product_flops(self, chains)):
                return sample(self, draws=draws, chains=chains, burn_in=burn_in, thin=thin,
                              seed=seed, inputs=inputs, params=params, progress=progress,
                              clamp=clamp, backend=backend, keep=keep, watch=watch,
                              tempering=tempering, tempering_min=tempering_min,
                              jobs=self.ray_jobs(ray))
        except UserError as err:
            raise err.with_source(self.checked.source) from None

    def fit(self, data, method: str = "pcd", **kwargs):
        """Fit the params to data (a CSV path, a dict of arrays or a DataFrame); see
        `ebmlang.learn.fit.fit`. Updates `params` in place; returns the result with its history."""
        from ebmlang.learn.fit import fit
        rows = max(kwargs.get("batch_size", 10), kwargs.get("chains", 100))
        try:
            with blas_threads(product_flops(self, rows)):
                return fit(self, data, method=method, **kwargs)
        except UserError as err:
            raise err.with_source(self.checked.source) from None

    def logz(self, method: str = "auto", **kwargs):
        """log Z: exact, by variable elimination, or by annealed importance sampling; see
        `ebmlang.infer.logz.logz`."""
        from ebmlang.infer.logz import logz
        try:
            return logz(self, method=method, jobs=self.ray_jobs(kwargs.pop("ray", None)), **kwargs)
        except UserError as err:
            raise err.with_source(self.checked.source) from None

    def marginals(self, method: str = "auto", **kwargs):
        """Every ground variable's marginal: enumeration, a clique tree, loopy BP or Gibbs;
        see `ebmlang.infer.marginals.marginals`."""
        from ebmlang.infer.marginals import marginals
        try:
            with blas_threads():
                return marginals(self, method=method, **kwargs)
        except UserError as err:
            raise err.with_source(self.checked.source) from None

    def fit_grid(self, data, grid: dict, seeds: int = 1, seed: int = 0, valid=None, ray=None,
                 params=None, progress=None, **options):
        """Fit every setting of `grid` ({fit option or const: [values]}) once per seed, from
        the same start (`params`, a mapping, assigned to every setting's model; else the
        model's); `options` are the fit options every setting shares; `valid`: held-out data
        that ranks the settings; `ray`: True or an address runs the fits as Ray tasks;
        `progress(done, total, outcome)` is called after each fit run here. Returns
        a `SweepResult` (`.rows` best first, `.best`, `.fits`, `.table()`); see
        `ebmlang.learn.sweep`."""
        from ebmlang.learn.sweep import fit_grid
        try:
            return fit_grid(self, self._variant, data, grid, seeds, seed, valid, params, options,
                            None if ray in (None, False) else _ray_tasks(ray), progress)
        except UserError as err:
            raise err.with_source(self.checked.source) from None

    def _variant(self, consts: dict) -> "Model":
        """This model with some consts overridden (a sweep's setting)."""
        return _rebuild(**dict(self.recipe, consts=dict(self.recipe["consts"], **consts)))

    def ray_jobs(self, ray):
        """None (run here) or a job runner on Ray (`ray`: True or an address), which ships
        this model's recipe and params to the workers (`ebmlang.distributed.ray_jobs`)."""
        if ray is None or ray is False:
            return None
        from ebmlang.distributed.ray_jobs import runner
        return runner(self._recipe(), _address(ray))

    def _recipe(self):
        """(build, recipe, params): what a Ray worker compiles this model from."""
        if getattr(self, "recipe", None) is None:
            raise UserError("this model cannot be sent to Ray workers (it was not compiled "
                            "from text)")
        return _rebuild, self.recipe, self.params.theta.copy()

    def conditionals(self):
        """Each sampled family's full conditional, derived symbolically in index form."""
        from ebmlang.middle.symbolic import conditionals
        return conditionals(self)

    def code(self, backend: str = "numpy") -> str:
        """The generated source: the numpy terms, or (backend "numba") the compiled kernels."""
        if backend == "numba":
            from ebmlang.backends.numba_codegen import generate_numba
            return generate_numba(self)
        return self.source

    def __repr__(self) -> str:
        return f"<ebmlang.Model {self.name}: {self.checked.n_state} ground variables>"


def _address(ray):
    return True if ray is True or ray == "" else str(ray)


def _ray_tasks(ray):
    from ebmlang.distributed.ray_jobs import model_tasks
    return model_tasks(_address(ray))


def _owner_space(checked, index, name):
    from ebmlang.frontend.space import build_space
    return build_space(index, checked.env("in an index"), checked.ranges, checked.sets,
                       f"factor '{name}'")


def _overrides(kwargs: dict) -> dict[str, float]:
    out = {}
    for k, v in kwargs.items():
        if isinstance(v, str):
            k, v = parse_override(f"{k}={v}")
        elif isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise UserError(f"const {k}: expected a number, got {type(v).__name__}")
        out[k] = v.item() if isinstance(v, np.generic) else v
    return out


def compile_model(text: str, name: str = "<string>", base: str | Path | None = None,
                  path: Path | None = None, sets: dict | None = None, **consts) -> Model:
    """Compile model text; keyword arguments override consts; `sets` gives set rows directly;
    `base` (a str or Path, default the working directory) is where set files are found.
    A model compiled before from the same inputs is loaded from the cache instead."""
    source = Source(name, text)
    base = Path(base) if base is not None else Path.cwd()
    try:
        overrides = sorted(_overrides(consts).items())
    except UserError:
        overrides = None                  # not cached; compiling says why
    key = model_cache.key(text, name, base, overrides, sets)
    recipe = dict(text=text, name=name, base=str(base), sets=sets, consts=consts)
    recipe["ident"] = hashlib.sha256(pickle.dumps(recipe)).hexdigest()
    model = model_cache.read(key, lambda state: Model._restore(state, path))
    if model is not None:
        model.recipe = recipe
        return model
    from ebmlang.frontend.parse import parse
    try:
        program = parse(text, name)
        checked = check(program, source, base, _overrides(consts), sets)
        model = Model(checked, path)
    except UserError as err:
        raise err.with_source(source) from None
    if key is not None:
        model_cache.write(key, model._stored_state, model_cache.set_files(program, base, sets))
    model.recipe = recipe
    return model


def _rebuild(ident, text, name, base, sets, consts) -> Model:
    """The model of a recipe (on a Ray worker)."""
    return compile_model(text, name, base, sets=sets, **consts)


def load(path, evidence=None, **consts) -> Model:
    """Load and compile a model file (.ebm, or a UAI network .uai with optional evidence);
    keyword arguments override consts."""
    p = Path(path)
    if p.suffix.lower() == ".uai":
        return _load_uai(p, evidence)
    if evidence is not None:
        raise UserError("evidence files are for UAI networks (.uai)", file=str(evidence))
    try:
        text = p.read_text()
    except OSError as exc:
        raise UserError(f"cannot read model file: {exc.strerror or exc}", file=str(path)) from None
    except UnicodeDecodeError:
        raise UserError("model file is not UTF-8 text", file=str(path)) from None
    if "\x00" in text:
        raise UserError("model file is not text (it has NUL bytes)", file=str(path))
    return compile_model(text, str(path), p.resolve().parent, p, **consts)


def _load_uai(path: Path, evidence) -> Model:
    """A UAI network (conditioned on its evidence) through the same phases as .ebm text; the
    model remembers `uai_names`: the ground name of each original variable (None if observed)."""
    from ebmlang.io.uai import read_network
    reading = read_network(path, evidence)
    tr = reading.translation
    model = compile_model(tr.text, str(path) + ".ebm", path.parent, path, sets=tr.sets)
    for name, values in tr.tables.items():
        model.params[name] = values
    model.uai = tr
    model.uai_names = reading.ground_names()
    model.uai_evidence = reading.observed
    model.uai_cards = reading.cards
    return model

"""The sampling task: chains of blocked Gibbs sweeps, burn-in, thinning, inputs, and the draws."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ebmlang.errors import UserError
from ebmlang.middle.lower import id_slice
from ebmlang.infer.chains import Kept, counted_parts, gradient_summary
from ebmlang.infer.progress import progress_bar
from ebmlang.infer.proper import check_proper
from ebmlang.backends.choice import sweep_parts


@dataclass(repr=False)
class Samples:
    """Kept draws. `full` holds every kept state once, inputs included, in the narrowest dtype
    that stores the model's values exactly (int8 for spins and bits: a million-spin draw is
    1 MB); `states`, `family[...]` and the summaries read it as float64."""

    model: object
    full: np.ndarray | None # (chains, draws, n_state); None when sampled with keep=False
    ids: np.ndarray         # state positions of the var and latent families, in name order
    acceptance: dict        # MH family -> acceptance rate after burn-in
    chains: int
    draws: int
    ladder: np.ndarray | None = None           # parallel tempering: the inverse temperatures
    swap_acceptance: np.ndarray | None = None  # and each neighbour pair's swap rate after burn-in
    gradient: object = None  # the joint HMC / MALA move (infer.hmc.GradientMove), if any

    def kept(self) -> np.ndarray:
        """The kept draws (chains, draws, n_state), or an error when they were not kept."""
        if self.full is None:
            raise UserError("the draws were not kept (sample(..., keep=False)); keep them, or "
                            "pass watch= callbacks to see them as they are drawn")
        return self.full

    def trace(self):
        """The summaries' view of the draws (see `ebmlang.infer.trace`), computed a block at a time."""
        from ebmlang.infer.trace import Trace
        tr = Trace(self.model, self.chains, self.draws, self.ids)
        for k, xs in _blocks(self.kept()):
            tr.add(k, xs)
        return tr.finish(self.acceptance, self.gradient)

    @property
    def names(self) -> list[str]:
        """Ground names of the var and latent variables (`s[0,1]`), the columns of `states`."""
        return self.model.ground_names()

    @functools.cached_property
    def states(self) -> np.ndarray:
        """(chains, draws, ground variables) over var and latent families, float64 (made on
        first use, then kept)."""
        return self._sampled().astype(np.float64)

    def _sampled(self) -> np.ndarray:
        return self.kept()[..., sampled_columns(self.ids)]

    def __getitem__(self, family: str) -> np.ndarray:
        """(chains, draws, *shape) for a family over plain ranges, else (chains, draws, n)."""
        f = self.model.vars[family]
        block = self.kept()[:, :, f.offset:f.offset + f.space.size].astype(np.float64)
        if f.space.ndim == 0:
            return block[:, :, 0]
        if f.space.dense:
            return block.reshape(block.shape[:2] + f.space.shape)
        return block

    def _rows(self, fn):
        """fn over every kept draw, a few rows at a time (bounded temporaries), (chains, draws,
        ...) or a dict of such."""
        c, d, n = self.kept().shape
        flat = self.full.reshape(c * d, n)
        step = max(1, CHUNK_CELLS // max(n, 1))
        parts = [fn(flat[i:i + step].astype(np.float64)) for i in range(0, c * d, step)]
        if isinstance(parts[0], dict):
            return {k: np.concatenate([p[k] for p in parts]).reshape((c, d) + parts[0][k].shape[1:])
                    for k in parts[0]}
        return np.concatenate(parts).reshape(c, d)

    def stats(self) -> dict[str, np.ndarray]:
        """Every declared stat per kept draw: name -> (chains, draws, *shape)."""
        return self._rows(self.model.stat_values)

    def log_potential(self) -> np.ndarray:
        """log p(x) + log Z of every kept draw, (chains, draws)."""
        return self._rows(self.model.log_potential)

    def summary(self):
        """mean, sd, mcse_mean, mcse_sd, ess_bulk, ess_tail and r_hat (ArviZ's columns and
        definitions) of the energy and every stat: a pandas DataFrame (a `table.Table`
        without pandas)."""
        from ebmlang.infer.diagnostics import samples_summary
        return samples_summary(self)

    def __repr__(self) -> str:
        from ebmlang.reprs import samples_repr
        return samples_repr(self)

    def _repr_html_(self) -> str:
        from ebmlang.reprs import samples_html
        return samples_html(self)

    def to_inference_data(self):
        """ArviZ InferenceData of the draws (needs arviz)."""
        from ebmlang.infer.diagnostics import to_inference_data
        return to_inference_data(self)

    def to_csv(self, path: str) -> None:
        """The samples CSV: `chain,draw,` then every var and latent, a row per kept draw."""
        with csv_writer(self.model, path, self.chains) as out:
            for k, xs in _blocks(self.kept()):
                out.add(k, xs)


def block_draws(chains: int, n: int) -> int:
    """How many draws of every chain make one block of at most CHUNK_CELLS state cells."""
    return max(1, CHUNK_CELLS // max(chains * n, 1))


def _blocks(full: np.ndarray):
    """(k, draws k, k + 1, ... of every chain) over kept draws (chains, draws, n), a block
    at a time."""
    step = block_draws(full.shape[0], full.shape[2])
    for k in range(0, full.shape[1], step):
        yield k, full[:, k:k + step]


def csv_writer(model, path, chains: int):
    """A `samplecsv.samples_csv` writer of this model's var and latent columns: its `add(k,
    xs)` takes full states (chains, draws, n_state), as `sample(watch=...)` gives them."""
    from ebmlang.io.samplecsv import samples_csv
    ids = model.state_ids()
    ints = np.ones(len(ids) + 2, bool)
    for f in model.vars.values():
        if f.sampled and not f.domain.integer:
            ints[2 + np.searchsorted(ids, np.arange(f.offset, f.offset + f.space.size))] = False
    columns = sampled_columns(ids)
    return samples_csv(path, _Header(model, len(ids)), ints, chains, lambda xs: xs[..., columns])


def sampled_columns(ids: np.ndarray) -> slice | np.ndarray:
    """What selects the var and latent columns `ids` of states (..., n_state): a slice (a
    view) when they are consecutive, as they are unless inputs sit between them."""
    run = id_slice(ids)
    return ids if run is None else run


class _Header:
    """`chain, draw` and the ground names, produced while the header is written: a million
    names are never held as a list."""

    def __init__(self, model, n: int):
        self.model, self.n = model, n

    def __len__(self) -> int:
        return 2 + self.n

    def __iter__(self):
        yield from ("chain", "draw")
        yield from self.model.iter_ground_names()


def init_state(model, chains: int, rng: np.random.Generator, inputs) -> np.ndarray:
    """Uniform random values for sampled variables; inputs from `inputs` (rows x input ids)."""
    x = np.zeros((chains, model.checked.n_state))
    for f in model.vars.values():
        sl = slice(f.offset, f.offset + f.space.size)
        if f.sampled:
            if f.domain.finite:
                x[:, sl] = f.domain.values[rng.integers(0, f.domain.size, (chains, f.space.size))]
            else:
                x[:, sl] = rng.standard_normal((chains, f.space.size))
    input_ids = model.state_ids(("input",))
    if len(input_ids):
        if inputs is None:
            names = [f.name for f in model.vars.values() if f.kind == "input"]
            raise UserError(f"the model has inputs ({', '.join(names)}): give them with "
                            "--input FILE.csv (Python: inputs=...)")
        vals = np.atleast_2d(np.asarray(inputs, float))
        if vals.shape[1] != len(input_ids):
            raise UserError(f"inputs have {vals.shape[1]} columns, the model has "
                            f"{len(input_ids)} input variables")
        if vals.shape[0] not in (1, chains):
            raise UserError(f"the input file has {vals.shape[0]} rows: give one row (shared by "
                            f"every chain) or one per chain ({chains})")
        x[:, input_ids] = vals
    return x


def sample(model, draws=1000, chains=4, burn_in=None, thin=1, seed=None, inputs=None,
           params=None, progress=False, clamp=None, backend=None, keep=True,
           watch=(), tempering=1, tempering_min=None, jobs=None) -> Samples:
    """Run `chains` Gibbs chains; keep `draws` draws each after `burn_in` sweeps, every `thin`.

    `watch`: callables `fn(k, xs)` that see the kept draws as they come, a block at a time
    (xs: draws k, k + 1, ... of every chain, (chains, block, n_state)); with `keep=False` only
    they do, and memory stays at one block whatever the number of draws (`ebmlang sample`
    writes its CSV and its summary this way).

    `backend`: "auto" (the default: matrix products where the terms are contractions, the
    fused sweep when they all are, compiled kernels for the other finite-domain Gibbs parts,
    numpy for the rest; `backends.choice`, and `ebmlang check` says which), "numba" (compiled
    kernels wherever they compile) or "numpy" (the reference).

    `clamp`: values (one row, or one per chain) with NaN where free: the given variables are
    held fixed and the others sampled from their conditionals (imputation).

    `tempering`: R > 1 runs R replicas of every chain at inverse temperatures from 1 down to
    `tempering_min` (default 0.1) with neighbour swaps every sweep (see `ebmlang.infer.tempering`);
    only the temperature-1 replicas' draws are kept.

    Untempered chains run in chain groups (`ebmlang.infer.groups`), each with its own seed
    spawned from `seed`: here in one sweep loop over every chain (`ebmlang.infer.chains`), or
    by `jobs(fn, model, kwargs)` (`ebmlang.distributed` gives one that runs them as Ray
    tasks), with the same draws.
    """
    for name, v, lo in (("draws", draws, 1), ("chains", chains, 1), ("thin", thin, 1)):
        if int(v) != v or v < lo:
            raise UserError(f"{name} must be an integer >= {lo}, got {v}")
    burn_in = draws // 2 if burn_in is None else burn_in
    if int(burn_in) != burn_in or burn_in < 0:
        raise UserError(f"burn-in must be an integer >= 0, got {burn_in}")
    model.params.update(params)
    if isinstance(inputs, dict):
        inputs = _inputs_from_dict(model, inputs)
    lanes = None
    if tempering == 1:
        from ebmlang.infer import groups
        sizes = groups.chain_groups(model, chains)
        if jobs is not None:
            return _grouped(model, sizes, jobs, keep, watch, dict(
                draws=draws, burn_in=burn_in, thin=thin, seed=seed, inputs=inputs,
                clamp=clamp, backend=backend))
        if len(sizes) > 1:    # one sweep loop, each group's random stream inside it
            from ebmlang.infer.chains import group_start
            lanes, x, clamp = group_start(model, sizes, seed, inputs, clamp, init_state)
    if lanes is None:
        rng = np.random.default_rng(seed)
        x = init_state(model, chains, rng, inputs)
        if clamp is not None:
            clamp = np.broadcast_to(np.atleast_2d(np.asarray(clamp, float)), x.shape).copy()
            x = np.where(np.isnan(clamp), x, clamp)
    else:
        rng = lanes
    ids = model.state_ids()
    theta = model.params.theta
    from ebmlang.infer.hmc import gradient_families, with_default_hmc
    # HMC where it is the default (the replicas run MH), after its MH update (infer.hmc)
    sampling = with_default_hmc(model) if tempering == 1 else model
    parts, step = sweep_parts(model, backend)
    replicas = None
    if tempering != 1 and gradient_families(model):
        raise UserError("parallel tempering does not run hmc or mala families yet; use "
                        "sampler mh for them, or no --tempering")
    if tempering != 1:          # replicas at a ladder of betas, cluster moves inside (tempering)
        from ebmlang.infer.tempering import start
        replicas = start(model, parts, x, clamp, tempering, tempering_min, burn_in,
                         compiled=backend != "numpy")
        x, clamp, step = replicas.x, replicas.clamp, replicas.step
    else:                       # cluster moves before each Gibbs sweep, where they apply
        from ebmlang.infer.cluster_moves import with_cluster_moves
        step = with_cluster_moves(model, step, burn_in)
    from ebmlang.infer.hmc import with_gradient_moves
    step, move = with_gradient_moves(sampling, step, burn_in)
    total = burn_in + draws * thin
    n = model.checked.n_state
    out = Kept(chains, draws, n, store_dtype(model, x), keep, watch, block_draws(chains, n),
               compiled=backend != "numpy")
    bar = progress_bar(total, progress, f"{model.name}: sampling", "sweep")
    reset_scales(model, parts)
    check_proper(model, x)
    for sweep in range(total):
        step(parts, x, theta, rng, clamp)
        if sweep < burn_in and (sweep + 1) % ADAPT_EVERY == 0:
            adapt_scales(counted_parts(parts, lanes))
            if replicas is not None:
                replicas.adapt()
        if sweep == burn_in - 1:
            _reset_counts(counted_parts(parts, lanes))
            if replicas is not None:
                replicas.freeze()
        if sweep >= burn_in and (sweep - burn_in) % thin == thin - 1:
            out.add(x[:chains])
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    out.flush()
    ladder, rates = (None, None) if replicas is None else (replicas.ladder, replicas.rates())
    return Samples(sampling, out.all, ids, acceptance(counted_parts(parts, lanes)), chains, draws,
                   ladder, rates, gradient_summary(move, lanes))


def _grouped(model, sizes, jobs, keep, watch, kw) -> Samples:
    """The chain groups run by `jobs` (Ray tasks), their draws joined along the chains and
    handed to the watchers a block at a time (the draws of every group are held meanwhile;
    run here, the groups share one sweep loop instead, `infer.chains`)."""
    from ebmlang.infer import groups
    init_state(model, sum(sizes), np.random.default_rng(0), kw["inputs"])  # input errors, once
    seeds, inputs = groups.seeds(kw.pop("seed"), len(sizes)), groups.rows(kw.pop("inputs"), sizes)
    clamps = groups.rows(kw.pop("clamp"), sizes)
    runs = jobs(sample_job, model, [
        dict(kw, chains=n, seed=sd, inputs=i, clamp=c, tempering=1)
        for n, sd, i, c in zip(sizes, seeds, inputs, clamps)])
    full = np.concatenate([f for f, _ in runs])
    for k, xs in _blocks(full):
        for fn in watch:
            fn(k, xs)
    rates: dict[str, float] = {}
    for (_, acc), n in zip(runs, sizes):     # chain-weighted mean of the groups' rates
        for fam, r in acc.items():
            rates[fam] = rates.get(fam, 0.0) + r * n / sum(sizes)
    return Samples(model, full if keep else None, model.state_ids(), rates, sum(sizes),
                   kw["draws"])


def sample_job(model, **kw) -> tuple:
    """One chain group's kept draws and MH acceptance rates (what travels back from a worker)."""
    s = sample(model, **kw)
    return s.full, s.acceptance


def store_dtype(model, x: np.ndarray) -> np.dtype:
    """int8 or int16 when every family's values are integers that fit it (and so do the given
    values in `x`: inputs, clamped cells), else float64."""
    for dt in (np.int8, np.int16):
        info = np.iinfo(dt)
        if all(f.domain.finite and f.domain.integer and
               info.min <= f.domain.values.min() and f.domain.values.max() <= info.max
               for f in model.vars.values()) and np.array_equal(x.astype(dt), x):
            return np.dtype(dt)
    return np.dtype(np.float64)


ADAPT_EVERY = 25
CHUNK_CELLS = 1_000_000    # state cells evaluated at once when summarizing draws
TARGET_ACCEPTANCE = 0.44   # optimal for a one-dimensional random walk (Roberts et al. 1997)


def reset_scales(model, parts=None) -> None:
    """Every MH part back to its declared scale and zero counts, so a seed repeats its draws."""
    parts = model.parts() if parts is None else parts
    for block in parts:
        for part in block:
            if part.method == "mh":
                part.scale = model.methods[part.family][1]
    _reset_counts(parts)


def _reset_counts(parts) -> None:
    for block in parts:
        for part in block:
            part.accepted = part.proposed = 0


def adapt_scales(parts, at_least: int = 1) -> None:
    """Move each adaptive MH scale toward the target acceptance rate of the last window, for
    the parts with at least `at_least` proposals in it (the others keep counting)."""
    for block in parts:
        for part in block:
            if part.method == "mh" and part.adapt and part.proposed >= max(at_least, 1):
                rate = part.accepted / part.proposed
                part.scale *= float(np.exp(2.0 * (rate - TARGET_ACCEPTANCE)))
                part.scale = min(max(part.scale, 1e-8), 1e8)
                part.accepted = part.proposed = 0


def acceptance(parts) -> dict[str, float]:
    """Acceptance rate per MH family since the last reset."""
    counts: dict[str, list[int]] = {}
    for block in parts:
        for part in block:
            if part.method == "mh":
                c = counts.setdefault(part.family, [0, 0])
                c[0] += part.accepted
                c[1] += part.proposed
    return {f: a / p for f, (a, p) in counts.items() if p}


def _inputs_from_dict(model, inputs: dict) -> np.ndarray:
    cols = []
    for f in model.vars.values():
        if f.kind != "input":
            continue
        if f.name not in inputs:
            raise UserError(f"inputs: missing '{f.name}'")
        arr = np.asarray(inputs[f.name], float)
        want = f.space.shape if f.space.dense else (f.space.size,)
        if arr.shape == want:
            arr = arr.reshape(1, -1)
        elif arr.shape[1:] == want:
            arr = arr.reshape(arr.shape[0], -1)
        else:
            raise UserError(f"inputs: '{f.name}' has shape {arr.shape}, expected {want}")
        if f.domain.finite and not np.all(np.isin(arr, f.domain.values)):
            raise UserError(f"inputs: '{f.name}' has values outside {f.domain.text}")
        cols.append(arr)
    rows = {c.shape[0] for c in cols}
    if len(rows) > 1:
        raise UserError("inputs: every input needs the same number of rows")
    n = rows.pop()
    return np.concatenate([np.broadcast_to(c, (n, c.shape[1])) for c in cols], axis=1)

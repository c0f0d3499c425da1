"""The compiled (numba) backend against exact enumeration and against the numpy backend.

Every model of test_sampler_exact is sampled with backend="numba", both through the tabulated
kernel (when its blanket allows one) and the direct one, and each marginal is compared with the
exact one within 5 batch-means standard errors, as there. The numpy and numba backends draw from
different generators, so they are compared statistically: the difference of their marginals
within 5 combined standard errors. Compiled code is cached on disk (EBMLANG_CACHE), so only a
cold cache pays numba's compile time.
"""

import numpy as np
import pytest

import ebmlang
from ebmlang.backends.numba_backend import CompiledPart, compiled_parts
from ebmlang.backends.numba_codegen import Unsupported, ScalarPrinter, plans
from exact import exact_marginals
from test_sampler_exact import MODELS, batch_se, compile_case, marginal_errors

DRAWS, CHAINS, BURN = 1500, 4, 200


def _kinds(model):
    return {p.kernel for block in model.parts("numba") for p in block
            if isinstance(p, CompiledPart)}


@pytest.mark.parametrize("tabulate", [True, False], ids=["table", "direct"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_numba_marginals_match_enumeration(name, tabulate, tmp_path):
    model, inputs = compile_case(name, tmp_path)
    model._numba_parts = compiled_parts(model, tabulate=tabulate)
    if not tabulate:
        assert not any(k.startswith("tabled") for k in _kinds(model))
    draws = model.sample(draws=DRAWS, chains=CHAINS, burn_in=BURN, seed=3, inputs=inputs,
                         backend="numba")
    for z, where in marginal_errors(model, draws, exact_marginals(model, inputs)):
        assert z < 5, (name, where)


def test_every_case_compiles_and_the_ising_model_is_tabulated(tmp_path):
    for name in MODELS:
        model, _ = compile_case(name, tmp_path)
        assert all(p.reason is None for p in plans(model).values()), name
    model, _ = compile_case("ising_torus", tmp_path)
    model._numba_parts = compiled_parts(model, tabulate=None)
    assert _kinds(model) == {"tabled, 4 neighbours x 2 values"}
    model, _ = compile_case("rbm", tmp_path)   # W[i, j] differs by instance: no table
    assert _kinds(model) == {"gibbs_v", "gibbs_h"}


@pytest.mark.parametrize("name", ["potts", "threeway", "denoise"])
def test_numpy_and_numba_agree(name, tmp_path):
    model, inputs = compile_case(name, tmp_path)
    a = model.sample(draws=DRAWS, chains=CHAINS, burn_in=BURN, seed=1, inputs=inputs,
                     backend="numpy")
    b = model.sample(draws=DRAWS, chains=CHAINS, burn_in=BURN, seed=2, inputs=inputs,
                     backend="numba")
    for f in model.vars.values():
        if not f.sampled:
            continue
        for i in range(f.offset, f.offset + f.space.size):
            for value in f.domain.values:
                ia, ib = ((d.full[:, :, i] == value).astype(float) for d in (a, b))
                se = np.hypot(max(batch_se(ia), 1e-3), max(batch_se(ib), 1e-3))
                assert abs(ia.mean() - ib.mean()) < 5 * se, (name, i, value)


def test_same_seed_same_draws(tmp_path):
    model, _ = compile_case("potts", tmp_path)
    a, b, c = (model.sample(draws=50, chains=3, seed=s, backend="numba").states
               for s in (7, 7, 8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_parallel_chains_draw_as_serial_ones(tmp_path):
    """Each chain has its own generator, so spreading chains over threads changes nothing."""
    model = ebmlang.compile("""
const L = 6
var s[i in 0..L-1, j in 0..L-1] : spin
factor right[i in 0..L-1, j in 0..L-1] : 0.4 * s[i, j] * s[i, (j + 1) % L]
factor down[i in 0..L-1, j in 0..L-1]  : 0.4 * s[i, j] * s[(i + 1) % L, j]
""")
    parts = model.parts("numba")
    x0 = np.where(np.random.default_rng(0).random((4, 36)) < 0.5, -1.0, 1.0)
    out = []
    for parallel in (False, True):
        x, rng = x0.copy(), np.random.default_rng(5)
        for _ in range(20):
            for block in parts:
                for part in block:
                    part.update(x, model.params.theta, rng, parallel=parallel)
        out.append(x)
    assert np.array_equal(out[0], out[1])


def test_scalar_printer_refuses_what_it_cannot_print():
    model = ebmlang.compile("var x : bool\nfactor f : 0.5 * x")
    printer = ScalarPrinter(model.terms[0], {})
    with pytest.raises(Unsupported):
        printer(ebmlang.frontend.ast.Name("nowhere"))


def test_mh_and_gaussian_parts_run_on_numpy_and_say_so():
    from ebmlang.backends.numba_codegen import placement_text
    model = ebmlang.compile("""
var x[i in 0..2] : real
var s[i in 0..2] : spin
sampler s : mh
factor q[i in 0..2] : -0.5 * x[i] ^ 2 + 0.3 * x[i] * s[i]
""")
    text = placement_text(model)
    assert "exact Gaussian update" in text and "random-walk MH" in text
    assert not any(isinstance(p, CompiledPart) for b in model.parts("numba") for p in b)
    d = model.sample(draws=20, chains=2, seed=0, backend="numba")
    assert np.all(np.isfinite(d.states))


def test_wide_families_compile_without_inlining(tmp_path):
    """A family read by many terms gives its local function more than MAX_INLINE_ARGS
    arguments: it is called, not inlined, and the draws are still exact."""
    from ebmlang.backends.numba_codegen import MAX_INLINE_ARGS
    factors = "\n".join(f"factor f{k}[i in 0..3] : {0.1 * (k + 1):.1f} * x[i] * "
                        f"x[(i + {k % 3 + 1}) % 5]" for k in range(7))
    model = ebmlang.compile(f"var x[i in 0..4] : spin\n{factors}\n"
                            "factor all : 0.3 * " + " * ".join(f"x[{i}]" for i in range(5)))
    assert "@njit(inline" in model.code("numba") and MAX_INLINE_ARGS < 5 + 5 * 8
    draws = model.sample(draws=DRAWS, chains=CHAINS, burn_in=BURN, seed=4, backend="numba")
    for z, where in marginal_errors(model, draws, exact_marginals(model)):
        assert z < 5, where


def test_clamped_variables_hold_and_the_rest_agree_with_numpy(tmp_path):
    model, _ = compile_case("potts", tmp_path)
    clamp = np.full(model.checked.n_state, np.nan)
    clamp[[0, 4, 8]] = [2, 0, 1]
    a, b = (model.sample(draws=DRAWS, chains=CHAINS, burn_in=BURN, seed=s, clamp=clamp,
                         backend=backend) for s, backend in ((1, "numpy"), (2, "numba")))
    assert np.all(b.full[:, :, [0, 4, 8]] == [2, 0, 1])
    for i in (1, 2, 3, 5, 6, 7):
        for value in (0.0, 1.0, 2.0):
            ia, ib = ((d.full[:, :, i] == value).astype(float) for d in (a, b))
            se = np.hypot(max(batch_se(ia), 1e-3), max(batch_se(ib), 1e-3))
            assert abs(ia.mean() - ib.mean()) < 5 * se, (i, value)

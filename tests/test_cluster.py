"""Cluster moves (Swendsen-Wang, Wolff) against exact enumeration, and what qualifies.

As in test_sampler_exact: every ground marginal within 5 batch-means standard errors of the
exact one, with a fixed seed. The models carry fields, inputs, Potts factors, bool couplings
(whose unary parts must be split off the pairs), a family that does not qualify beside one
that does, and a spin glass that must fall back to Gibbs.
"""

import numpy as np
import pytest

import ebmlang
from ebmlang.infer.cluster import plan
from ebmlang.infer.cluster_moves import cluster_moves, frustration
from ebmlang.errors import UserError
from exact import exact_marginals
from test_sampler_exact import marginal_errors

CASES = {
    "ising_field": ("""
var s[i in 0..2, j in 0..2] : spin
param J = 0.45
param h = 0.15
factor right[i in 0..2, j in 0..2] : J * s[i, j] * s[i, (j + 1) % 3]
factor down[i in 0..2, j in 0..2]  : J * s[i, j] * s[(i + 1) % 3, j]
factor field[i in 0..2, j in 0..2] : h * s[i, j]
""", "s", None),
    "potts_pref": ("""
var z[i in 0..2, j in 0..2] : cat(3)
param J = 0.9
factor right[i in 0..2, j in 0..1] : J * (z[i, j] == z[i, j + 1])
factor down[i in 0..1, j in 0..2]  : J * (z[i, j] == z[i + 1, j])
factor pref[i in 0..2, j in 0..2]  : 0.4 * (z[i, j] == 1) - 0.2 * (z[i, j] == 2)
""", "z", None),
    "denoise_inputs": ("""
input y[i in 0..2, j in 0..2] : spin
var x[i in 0..2, j in 0..2] : spin
param eta = 0.6
param fidelity = 0.8
factor keep[i in 0..2, j in 0..2] : fidelity * x[i, j] * y[i, j]
factor right[i in 0..2, j in 0..1] : eta * x[i, j] * x[i, j + 1]
factor down[i in 0..1, j in 0..2]  : eta * x[i, j] * x[i + 1, j]
""", "x", np.array([[1, -1, 1, 1, 1, -1, -1, 1, 1]])),
    "bool_couplings": ("""
var x[i in 0..6] : bool
param W[i in 0..6] = uniform(0.3, 1.2)
factor ring[i in 0..6] : W[i] * x[i] * x[(i + 1) % 7]
factor skip[i in 0..4] : 0.5 * x[i] * x[i + 2] - 0.3 * x[i]
energy cost[i in 0..6] : 0.8 * x[i]
""", "x", None),
    "partial": ("""
var a[i in 0..4] : spin
var b[i in 0..2] : bool
factor chain[i in 0..3] : 0.7 * a[i] * a[i + 1]
factor ab[i in 0..2] : 0.6 * a[i] * b[i] - 0.2 * b[i]
factor three : 1.2 * b[0] * b[1] * b[2]
""", "a", None),
}

# a spin and a bool family joined into one group (labels, not values, must agree), with an
# instance whose two reads are one variable (a[0] * a[0]: unary)
TWO_FAMILIES = """
var a[i in 0..3] : spin
var b[i in 0..3] : bool
factor ab[i in 0..3] : 0.7 * a[i] * b[i]
factor aa[i in 0..3] : 0.4 * a[i] * a[(2 * i) % 4]
factor bb[i in 0..2] : 0.5 * b[i] * b[i + 1] - 0.4 * b[i]
factor field[i in 0..3] : 0.2 * a[i]
"""


def _model(name, sampler=None):
    src, family, inputs = CASES[name]
    if sampler is not None:
        src += f"sampler {family} : {sampler}\n"
    return ebmlang.compile(src), inputs


def _assert_exact(model, draws, inputs, name):
    for z, where in marginal_errors(model, draws, exact_marginals(model, inputs)):
        assert z < 5, (name, where)


@pytest.mark.parametrize("sampler", ["swendsen_wang", "wolff"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_cluster_marginals_match_enumeration(name, sampler):
    """Cluster moves alone (no Gibbs sweep of the family) leave the model invariant."""
    model, inputs = _model(name, sampler)
    family = CASES[name][1]
    assert [g.families for g in plan(model).groups] == [(family,)]
    assert plan(model).groups[0].explicit
    draws = model.sample(draws=3000, chains=4, burn_in=300, seed=3, inputs=inputs)
    _assert_exact(model, draws, inputs, name)


def test_default_interleaves_and_says_so():
    model, inputs = _model("partial")
    gp = plan(model).groups[0]
    assert gp.families == ("a",) and not gp.explicit and gp.method == "swendsen_wang"
    assert [model.terms[n].owner for n, _ in gp.dynamic] == ["ab"]
    assert "reads 3 of its variables" in plan(model).why_not["b"]
    assert "Swendsen-Wang" in model.sampler_text("a")
    assert "three" in model.sampler_text("b")
    draws = model.sample(draws=3000, chains=4, burn_in=300, seed=5)
    _assert_exact(model, draws, inputs, "partial")


def test_spin_glass_falls_back_to_gibbs():
    """Couplings of both signs: the group is frustrated, the moves leave it to Gibbs (and
    `check` says why), and the draws are still exact."""
    model = ebmlang.compile("""
var s[i in 0..6] : spin
param J[i in 0..6] = 0
factor ring[i in 0..6] : J[i] * s[i] * s[(i + 1) % 7]
factor field[i in 0..6] : 0.2 * s[i]
""")
    model.params["J"] = np.array([0.8, -0.9, 0.7, -0.6, 0.9, 0.5, -0.8])
    assert "ring[1] has K = -1.8" in frustration(model)["s"]
    assert "frustrated" in model.sampler_text("s")
    moves = cluster_moves(model)
    x = np.ones((2, 7))
    assert moves.sweep(x, model.params.theta, np.random.default_rng(0)) == frozenset()
    assert np.all(x == 1)                      # no cluster move was made
    draws = model.sample(draws=3000, chains=4, burn_in=300, seed=2)
    _assert_exact(model, draws, None, "spin glass")


def test_explicit_sampler_that_does_not_apply_is_an_error():
    src = CASES["partial"][0] + "sampler b : wolff\n"
    with pytest.raises(UserError, match="three reads 3 of its variables"):
        ebmlang.compile(src).sampler_text("b")


@pytest.mark.parametrize("sampler", ["swendsen_wang", "wolff"])
def test_clamped_cells_stay_and_the_rest_is_the_conditional(sampler):
    """Imputation: a clamped site holds its cluster fixed; the free sites follow the exact
    conditional given the clamped ones."""
    model, _ = _model("potts_pref", sampler)
    clamp = np.full(9, np.nan)
    clamp[[0, 4]] = [2, 0]
    draws = model.sample(draws=3000, chains=4, burn_in=300, seed=9, clamp=clamp)
    assert np.all(draws.full[:, :, 0] == 2) and np.all(draws.full[:, :, 4] == 0)
    from ebmlang.infer.exact import probabilities
    xs, p = probabilities(model)
    keep = (xs[:, 0] == 2) & (xs[:, 4] == 0)
    xs, p = xs[keep], p[keep] / p[keep].sum()
    exact = {i: np.array([p[xs[:, i] == v].sum() for v in range(3)]) for i in range(9)}
    for z, where in marginal_errors(model, draws, exact):
        assert z < 5, where


@pytest.mark.parametrize("method", ["swendsen_wang", "wolff"])
def test_move_at_inverse_temperature_leaves_the_tempered_model_invariant(method):
    """sweep(beta=b) samples exp(b F): the call a tempering driver makes on its replicas
    (chains 0, 1 at beta 1, chains 2, 3 at beta 0.4)."""
    model, _ = _model("bool_couplings", method)
    moves = cluster_moves(model, burn_in=200)
    from ebmlang.infer.exact import probabilities
    xs = probabilities(model)[0]
    F = model.log_potential(xs)
    rng = np.random.default_rng(4)
    x = np.zeros((4, model.checked.n_state))
    beta = np.array([1.0, 1.0, 0.4, 0.4])
    kept = []
    for sweep in range(4200):
        moves.sweep(x, model.params.theta, rng, beta=beta)
        if sweep >= 200:
            kept.append(x.copy())
    kept = np.stack(kept, axis=1)                       # (chains, draws, n)
    from test_sampler_exact import batch_se
    for rows, b in ((slice(0, 2), 1.0), (slice(2, 4), 0.4)):
        p = np.exp(b * (F - F.max()))
        p /= p.sum()
        for i in range(7):
            exact = p[xs[:, i] == 1].sum()
            ind = kept[rows, :, i]
            se = max(batch_se(ind), np.sqrt(exact * (1 - exact) / ind.size), 1e-4)
            assert abs(ind.mean() - exact) < 5 * se, (b, i, ind.mean(), exact)


@pytest.mark.parametrize("sampler", ["swendsen_wang", "wolff"])
def test_one_group_of_two_families(sampler):
    model = ebmlang.compile(TWO_FAMILIES + f"sampler a : {sampler}\nsampler b : {sampler}\n")
    gp = plan(model).groups[0]
    assert gp.families == ("a", "b") and gp.explicit
    assert len(gp.pairs) == 3
    draws = model.sample(draws=3000, chains=4, burn_in=300, seed=8)
    _assert_exact(model, draws, None, "two families")


def test_categorical_pair_not_of_equality_form_is_left_to_gibbs():
    model = ebmlang.compile("""
var z[i in 0..3] : cat(3)
factor sq[i in 0..2] : -0.5 * (z[i] - z[i + 1]) ^ 2
""")
    assert not plan(model).groups
    assert "factor sq: not a weight on equality" in model.sampler_text("z")


@pytest.mark.parametrize("potts", [True, False])
def test_tabular_pair_is_decided_per_instance(potts):
    """A param table indexed by variables is no sympy symbol: the pair is checked numerically
    at the current params (a Potts table qualifies, a random one does not)."""
    src = """
var x[i in 0..3] : 1..3
param T[a in 1..3, b in 1..3] = 0
factor t[i in 0..2] : T[x[i], x[i + 1]]
factor one[i in 0..3] : 0.3 * (x[i] == 2)
"""
    model = ebmlang.compile(src)
    T = 0.8 * np.eye(3) + np.array([0.1, -0.2, 0.3])[None, :] if potts else \
        np.random.default_rng(0).normal(size=(3, 3))
    model.params["T"] = T
    if not potts:
        assert not plan(model).groups
        return
    gp = plan(model).groups[0]
    assert gp.pairs[0].how == "numerically at the current params"
    model2 = ebmlang.compile(src + "sampler x : wolff\n")
    model2.params["T"] = T
    draws = model2.sample(draws=3000, chains=4, burn_in=300, seed=6)
    _assert_exact(model2, draws, None, "tabular")


def test_pair_with_a_value_of_probability_zero_is_left_to_gibbs():
    """A table with a 0 (log 0 = -inf, as UAI networks have) is no finite weight on equality:
    the pair does not qualify, and the default sampler (Gibbs alone) stays exact."""
    src = """
var x[i in 0..3] : 0..2
param T[a in 0..2, b in 0..2] = 1
factor t[i in 0..2] : log(T[x[i], x[i + 1]])
"""
    model = ebmlang.compile(src)
    T = np.exp(0.7 * np.eye(3))
    T[0, 1] = 0.0
    model.params["T"] = T
    assert not plan(model).groups
    assert "probability 0" in model.sampler_text("x")
    draws = model.sample(draws=3000, chains=4, burn_in=300, seed=2)
    _assert_exact(model, draws, None, "zero entry")


def test_bond_thresholds_decide_as_the_uniform_draw():
    """The kernels open a bond when the top 53 bits r of a draw are below ceil(p 2^53): the
    same decision as r / 2^53 < p, at and around every threshold."""
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.random(2000), [0.0, 1.0, 2.0 ** -53, 1 - 2.0 ** -53, 0.5]])
    thr = np.ceil(p * 2.0 ** 53).astype(np.uint64)
    for d in (-2, -1, 0, 1):
        r = np.clip(thr.astype(np.int64) + d, 0, 2 ** 53 - 1).astype(np.uint64)
        assert np.array_equal(r < thr, r * 2.0 ** -53 < p)

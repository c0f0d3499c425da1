"""The compiled whole-model log-potential (backends/numba_energy.py, what tempering's swaps
use) against the numpy terms (`Model.log_potential`, the reference) on random states of many
models: every finite domain, reals, inputs, params indexed by variables, bodies that use their
indices, where filters, energies, sums split into terms, contractions, log of zero."""

from pathlib import Path

import numpy as np
import pytest

import ebmlang
from ebmlang.backends.numba_energy import CompiledEnergy
from test_sampler_exact import MODELS, compile_case

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

EXTRA = {
    # real variables (a Gaussian chain) and a body that uses its index
    "gmrf": """
var x[i in 0..5] : real
param a = 1.0
energy self[i in 0..5] : 0.5 * a * x[i] ^ 2 - 0.1 * (i + 1) * x[i]
factor pair[i in 0..4] : 0.4 * x[i] * x[i + 1]
""",
    # a table with zeros: log 0 is -inf in both
    "zeros": """
var x[i in 0..3] : 0..2
param T[a in 0..2, b in 0..2] = 1.0
factor t[i in 0..2] : log(T[x[i], x[i + 1]])
factor s[i in 0..3] : sigmoid(x[i] - 1) + exp(-x[i]) + max(x[i], 1) * (x[i] != 2)
""",
}


def _random_states(model, rng, chains=9) -> np.ndarray:
    """Random values of every family (inputs included), chains x n_state."""
    x = np.zeros((chains, model.checked.n_state))
    for f in model.vars.values():
        sl = slice(f.offset, f.offset + f.space.size)
        if f.domain.finite:
            x[:, sl] = f.domain.values[rng.integers(0, f.domain.size, (chains, f.space.size))]
        else:
            x[:, sl] = 2.0 * rng.standard_normal((chains, f.space.size))
    return x


def _models(tmp_path):
    for name in sorted(MODELS):
        yield name, compile_case(name, tmp_path)[0]
    for name, src in EXTRA.items():
        yield name, ebmlang.compile(src)
    for path in sorted(EXAMPLES.glob("*.ebm")):
        yield path.name, ebmlang.load(path, **({"L": 8} if path.stem == "ising" else {}))


def test_compiled_energy_equals_the_numpy_terms(tmp_path):
    rng = np.random.default_rng(0)
    for name, model in _models(tmp_path):
        energy = CompiledEnergy(model)
        assert energy.calls, name                                 # something compiled
        for _ in range(3):
            x = _random_states(model, rng)
            np.testing.assert_allclose(energy(x), model.log_potential(x), rtol=1e-12,
                                       atol=1e-9, err_msg=name)


def test_compiled_energy_reads_the_current_params_and_infinities():
    model = ebmlang.compile(EXTRA["zeros"])
    energy = CompiledEnergy(model)
    x = np.array([[0, 1, 2, 0], [1, 1, 1, 1.0]])
    model.params["T"] = np.where(np.eye(3) > 0, 2.0, 0.0)     # only equal neighbours allowed
    got = energy(x)
    assert got[0] == -np.inf and np.isfinite(got[1])
    np.testing.assert_allclose(got, model.log_potential(x))


def test_contractions_stay_on_numpy_and_fields_compile():
    """The RBM's W[i, j] v[i] h[j] is a matrix product (numpy); its biases and the Ising
    model's field are elementwise (compiled, their scalar param read once)."""
    rbm = CompiledEnergy(ebmlang.load(EXAMPLES / "rbm.ebm"))
    assert [k.term.owner for k in rbm.rest] == ["pair"] and len(rbm.calls) == 2
    ising = CompiledEnergy(ebmlang.load(EXAMPLES / "ising.ebm", L=8))
    assert not ising.rest and len(ising.calls) == 3


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_tempering_uses_the_compiled_energy_unless_numpy(backend, tmp_path, monkeypatch):
    model, inputs = compile_case("denoise", tmp_path)
    from ebmlang.infer import tempering
    seen = []
    real = tempering.Replicas.swap

    def spy(self, x, rng, chains):
        seen.append(type(self.energy).__name__)
        return real(self, x, rng, chains)
    monkeypatch.setattr(tempering.Replicas, "swap", spy)
    model.sample(draws=5, chains=2, burn_in=0, seed=0, inputs=inputs, tempering=3,
                 backend=backend)
    assert set(seen) == {"CompiledEnergy" if backend == "numba" else "method"}


def test_code_shows_the_compiled_energy(capsys):
    from ebmlang.cli.app import main
    assert main(["code", str(EXAMPLES / "rbm.ebm")]) == 0
    out = capsys.readouterr().out
    assert "compiled log-potential" in out and "on numpy: pair" in out
    assert "def total_vis_0(" in out and "def ptotal_hid_0(" in out


def test_compiled_swaps_equal_the_numpy_ones():
    """numba_swaps.swap_levels makes the decisions, counts and exchanges of
    tempering.swap_numpy, with -inf and NaN values of F (NaN counts as -inf)."""
    from ebmlang.backends.numba_swaps import swap_levels
    from ebmlang.infer.tempering import swap_numpy
    rng = np.random.default_rng(4)
    R, C, n = 6, 5, 7
    for first in (0, 1, 0, 1):
        x = rng.standard_normal((R * C, n))
        F = rng.standard_normal((R, C)) * 3
        F[rng.random((R, C)) < 0.15] = -np.inf
        F[rng.random((R, C)) < 0.1] = np.nan
        log_u = np.log(rng.random((R - 1, C)))
        gaps = -np.diff(np.geomspace(1, 0.2, R))
        out = []
        for fn in (swap_levels, swap_numpy):
            xs, tried, accepted = x.copy(), np.zeros(R - 1), np.zeros(R - 1)
            fn(xs, F.copy(), log_u, gaps, first, C, tried, accepted)
            out.append((xs, tried, accepted))
        for a, b in zip(*out):
            np.testing.assert_array_equal(a, b)
        assert out[0][2].sum() > 0 and not np.array_equal(out[0][0], x)

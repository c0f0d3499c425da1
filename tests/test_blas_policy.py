"""The BLAS thread policy (`resources.thread_count`): a pure function of product size, cores
and EBMLANG_BLAS_THREADS; and a fit on two BLAS threads matches one thread."""

from pathlib import Path

import numpy as np

import ebmlang
from ebmlang.backends.resources import PARALLEL_FLOPS, product_flops, thread_count

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_policy_by_size_and_env():
    assert thread_count(1e5, None, 8) == 1                    # small: one thread
    assert thread_count(PARALLEL_FLOPS, None, 8) == 8         # large enough: every core
    assert thread_count(1e12, "1", 8) == 1                    # the env overrides both ways
    assert thread_count(0, "3", 8) == 3
    assert thread_count(1e12, "junk", 2) == 2                 # not a positive integer: ignored
    assert thread_count(1e12, "0", 2) == 2


def test_product_flops_rbm():
    model = ebmlang.load(EXAMPLES / "rbm.ebm", N=6, M=4)
    assert product_flops(model, 10) == 2 * 10 * 6 * 4
    assert product_flops(ebmlang.load(EXAMPLES / "ising.ebm"), 10) == 0  # not fused: no BLAS


def _fit(monkeypatch, threads):
    rng = np.random.default_rng(0)
    x = (rng.random((60, 12)) < 0.3).astype(float)
    model = ebmlang.load(EXAMPLES / "rbm.ebm", N=12, M=8)
    monkeypatch.setenv("EBMLANG_BLAS_THREADS", str(threads))   # fit's own policy context
    model.fit({"v": x}, seed=3, epochs=2, batch_size=10, chains=10)
    return model.params["W"].copy()


def test_fit_same_on_two_threads(monkeypatch):
    # the same draws in the same order; BLAS may sum in another order: float tolerance only
    np.testing.assert_allclose(_fit(monkeypatch, 2), _fit(monkeypatch, 1), rtol=1e-9, atol=1e-12)

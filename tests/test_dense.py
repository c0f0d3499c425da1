"""Contraction terms (einsum) give exactly the numbers of the per-instance kernels."""

import numpy as np
import pytest

import ebmlang
from ebmlang.backends.runtime import TermKernel

MODELS = [
    # the RBM pair term: a matrix product
    """var v[i in 0..4] : bool
latent h[j in 0..2] : bool
param W[i in 0..4, j in 0..2] = normal(0, 1)
factor pair[i in 0..4, j in 0..2] : W[i, j] * v[i] * h[j]""",
    # a scalar variable times an indexed one, an index no read uses, a const coefficient
    """const g = 0.7
var x : spin
var y[i in 0..3] : spin
param J[i in 0..3] = normal(0, 1)
factor tie[i in 0..3] : J[i] * x * y[i]
factor wide[i in 0..3, j in 0..1] : -g * x * y[i]
factor self[i in 0..3] : g * y[i]""",
    # three-way products
    """var a[i in 0..2] : {-1, 0.5, 2}
var b[j in 0..1] : bool
var c[k in 0..2] : cat(3)
param T[i in 0..2, j in 0..1, k in 0..2] = normal(0, 1)
factor t[i in 0..2, j in 0..1, k in 0..2] : T[i, j, k] * a[i] * b[j] * c[k]""",
]


@pytest.mark.parametrize("src", MODELS)
def test_dense_equals_generic(src):
    model = ebmlang.compile(src)
    dense = [k for k in model.kernels if k.dense is not None]
    assert dense, "these terms are contractions"
    rng = np.random.default_rng(0)
    x = np.zeros((5, model.checked.n_state))
    for f in model.vars.values():
        x[:, f.offset:f.offset + f.space.size] = rng.choice(f.domain.values, (5, f.space.size))
    theta = model.params.theta
    for k in dense:
        plain = TermKernel(k.term, k.fn, k.grad, k.where)
        assert np.allclose(k.total(x, theta), plain.total(x, theta))
        w = rng.random((5, 1))
        got, want = np.zeros_like(theta), np.zeros_like(theta)
        k.add_gradient(got, x, theta, w)
        plain.add_gradient(want, x, theta, w)
        assert np.allclose(got, want)
    # fields through the blocks: the sampler's local logits with and without contraction
    from ebmlang.backends.runtime import local_logits
    for block in model.parts():
        for part in block:
            fast = local_logits(part, x, theta)
            for tc in part.touches:
                tc.dense = False
            assert np.allclose(fast, local_logits(part, x, theta))

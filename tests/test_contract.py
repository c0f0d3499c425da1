"""Planned contractions equal numpy's einsum for the same operands."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ebmlang.middle.contract import Contraction

CASES = [
    (["za", "ab"], "zb"),           # the RBM's field on h: v @ W
    (["ab", "zb"], "za"),           # its field on v: h @ W^T, the param first
    (["za", "zb"], "ab"),           # its gradient for W: v^T h
    (["za"], "a"),                  # a bias gradient: a sum over chains
    (["za", "a"], "z"),             # a bias term's total
    (["abc", "zb", "zc"], "za"),    # a three-way term's field
    (["zab", "zbc"], "zac"),        # a batch letter (in both operands and in out)
    (["zab", "bc"], "c"),           # letters of one operand alone (z, a) summed first
    (["ab", "ab"], ""),             # everything contracted: a scalar
    (["za", "ab"], "bz"),           # out in an order that needs a transpose
]


@pytest.mark.parametrize("subs, out", CASES)
def test_equals_einsum(subs, out):
    rng = np.random.default_rng(0)
    size = {"z": 3, "a": 4, "b": 5, "c": 2}
    arrays = [rng.normal(size=tuple(size[c] for c in s)) for s in subs]
    plan = Contraction(subs, [a.shape for a in arrays], out)
    want = np.einsum(f"{','.join(subs)}->{out}", *arrays)
    got = plan(*arrays)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@st.composite
def contractions(draw):
    """Two or three operands over letters a..e, out a subset of the letters they use."""
    letters = "abcde"
    n = draw(st.integers(1, 3))
    subs = [draw(st.lists(st.sampled_from(letters), min_size=0, max_size=3, unique=True))
            for _ in range(n)]
    used = sorted({c for s in subs for c in s})
    out = draw(st.permutations(used)) if used else []
    out = out[:draw(st.integers(0, len(out)))]
    sizes = {c: draw(st.integers(1, 4)) for c in letters}
    return ["".join(s) for s in subs], "".join(out), sizes, draw(st.integers(0, 2 ** 32 - 1))


@settings(max_examples=200, deadline=None)
@given(contractions())
def test_equals_einsum_property(case):
    subs, out, sizes, seed = case
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=tuple(sizes[c] for c in s)) for s in subs]
    plan = Contraction(subs, [a.shape for a in arrays], out)
    want = np.einsum(f"{','.join(subs)}->{out}", *arrays)
    np.testing.assert_allclose(plan(*arrays), want, rtol=1e-12, atol=1e-12)

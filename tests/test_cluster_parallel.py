"""Cluster moves over many chains in parallel (issue 14 item 4): the parallel kernels
(`cluster_kernels.pswendsen_wang`, `pwolff`, blocks of chains a thread) draw bit for bit what
the serial ones draw, whatever the number of blocks (threads), through `model.sample` with
chain groups, fields, clamps and Potts labels; and a run of many chains, which takes the
parallel path by itself, matches exact enumeration.
"""

import numpy as np
import pytest

import ebmlang
from ebmlang.backends import cluster_kernels as ck
from ebmlang.infer import cluster_moves as cm
from ebmlang.infer import groups
from exact import enumerate_states
from test_cluster import CASES

ISING = CASES["ising_field"][0]     # 3 x 3 torus with a field: the unary path of the kernel
BARE = ISING.replace("param h = 0.15", "param h = 0.0")    # no unary terms: the one-pass path
POTTS = CASES["potts_pref"][0]      # 3 labels, a preference per label


def _run(src, sampler, monkeypatch, par, blocks, clamp=None):
    """11 chains in groups of 4, 4 and 3, the kernels serial (par False) or parallel in
    `blocks` blocks (get_num_threads replaced: the block count is what threads change)."""
    model = ebmlang.compile(src + (f"sampler {'s' if 's[' in src else 'z'} : {sampler}\n"
                                   if sampler else ""))
    monkeypatch.setattr(groups, "GROUP_CELLS", 4 * model.checked.n_state - 1)
    monkeypatch.setattr(cm, "PARALLEL_WORK", 1 if par else 1 << 62)
    monkeypatch.setattr(cm, "get_num_threads", lambda: blocks)
    calls = []
    for name in ("swendsen_wang", "pswendsen_wang", "wolff", "pwolff"):
        fn = getattr(ck, name)
        monkeypatch.setattr(ck, name, lambda *a, fn=fn, name=name: calls.append(name) or fn(*a))
    out = model.sample(draws=12, chains=11, burn_in=30, thin=2, seed=5, clamp=clamp)
    return out.full, set(calls)


@pytest.mark.parametrize("src", [ISING, BARE, POTTS], ids=["field", "bare", "potts"])
@pytest.mark.parametrize("sampler", [None, "swendsen_wang", "wolff"])
def test_parallel_kernels_draw_as_the_serial_ones(src, sampler, monkeypatch):
    serial, used = _run(src, sampler, monkeypatch, False, 1)
    method = sampler or "swendsen_wang"
    assert used == {method}
    for blocks in (2, 3, 11):            # uneven blocks; 11: a chain a block
        got, used = _run(src, sampler, monkeypatch, True, blocks)
        assert used == {"p" + method}
        np.testing.assert_array_equal(got, serial)


@pytest.mark.parametrize("sampler", ["swendsen_wang", "wolff"])
def test_parallel_kernels_hold_clamped_clusters_as_the_serial_ones(sampler, monkeypatch):
    clamp = np.full((11, 9), np.nan)
    clamp[::2, 0] = 2.0
    clamp[1::2, 4] = 0.0
    serial, _ = _run(POTTS, sampler, monkeypatch, False, 1, clamp)
    got, used = _run(POTTS, sampler, monkeypatch, True, 3, clamp)
    assert used == {"p" + sampler}
    np.testing.assert_array_equal(got, serial)
    assert np.all(got[::2, :, 0] == 2) and np.all(got[1::2, :, 4] == 0)


@pytest.mark.parametrize("sampler", ["swendsen_wang", "wolff"])
def test_many_chains_match_enumeration(sampler, monkeypatch):
    """8192 chains of the 3 x 3 Ising torus with a field (8192 x 9 >= PARALLEL_WORK: the
    parallel kernel by itself), cluster moves alone, 60 burn-in sweeps, 8 draws a chain.
    The chains are independent, so the standard error of a mean is the spread of the chain
    means over sqrt(8192), whatever the autocorrelation within a chain: 0.0014 for a
    marginal, 0.0027 for a neighbour moment (seed 17). Every P(s_i = 1) and E[s_i s_j] of
    the 18 neighbour pairs within 5 of them of the exact value (27 comparisons at 5
    standard errors: a false failure about once in 10^5 runs); a move that ignored the field
    (exact P(s_i = 1) = 0.89) or opened bonds wrongly (exact E[s_i s_j] = 0.87) would be
    off by tens of them."""
    chains = 8192
    assert chains * 9 >= cm.PARALLEL_WORK
    model = ebmlang.compile(ISING + f"sampler s : {sampler}\n")
    calls = []
    name = "p" + sampler
    fn = getattr(ck, name)
    monkeypatch.setattr(ck, name, lambda *a: calls.append(1) or fn(*a))
    full = model.sample(draws=8, chains=chains, burn_in=60, seed=17).full.astype(float)
    assert calls
    xs, p = enumerate_states(model)
    pairs = [(3 * i + j, 3 * i + (j + 1) % 3) for i in range(3) for j in range(3)] + \
        [(3 * i + j, 3 * ((i + 1) % 3) + j) for i in range(3) for j in range(3)]
    checks = [((full[:, :, i] == 1), p[xs[:, i] == 1].sum(), f"P(s{i} = 1)") for i in range(9)]
    checks += [(full[:, :, a] * full[:, :, b], p @ (xs[:, a] * xs[:, b]), f"E[s{a} s{b}]")
               for a, b in pairs]
    for values, exact, what in checks:
        means = values.mean(axis=1)                     # one mean per (independent) chain
        se = means.std(ddof=1) / np.sqrt(chains)
        assert abs(means.mean() - exact) < 5 * se, (what, means.mean(), exact, se)

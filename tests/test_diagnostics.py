"""R-hat, bulk and tail ESS and the Monte Carlo standard errors against ArviZ's values
(recorded here from arviz 0.23.4 for fixed inputs, with its numba path disabled, and compared
live when arviz is installed); the MCSEs also against their closed forms on iid draws."""

import math

import numpy as np
import pytest

import ebmlang
from ebmlang.infer.diagnostics import (SUMMARY_COLUMNS, bulk_ess, mcse_mean, mcse_sd, split_rhat,
                                 summarize, summary_table, tail_ess, warnings_for)
from ebmlang.table import Table, make_table


def _cases():
    rng = np.random.default_rng(0)
    ar1 = np.zeros((4, 500))
    for c in range(4):
        e = rng.standard_normal(500)
        for t in range(1, 500):
            ar1[c, t] = 0.9 * ar1[c, t - 1] + e[t]
    shift = rng.standard_normal((4, 300))
    shift[0] += 0.5
    short = rng.standard_normal((2, 50))
    binary = (rng.random((3, 400)) < 0.3).astype(float)
    return {"ar1": ar1, "shift": shift, "short": short, "binary": binary}


# (rank-normalized split R-hat, bulk ESS) from arviz.rhat(method="rank"), arviz.ess(method="bulk")
ARVIZ = {
    "ar1": (1.0380599411332447, 85.69274888463413),
    "shift": (1.025840706841694, 177.73593055214175),
    "short": (1.0055261600894279, 109.81559333358167),
    "binary": (1.0004295393037799, 1213.0672963993588),
}


@pytest.mark.parametrize("name", sorted(ARVIZ))
def test_matches_recorded_arviz_values(name):
    x = _cases()[name]
    rhat, ess = ARVIZ[name]
    assert split_rhat(x) == pytest.approx(rhat, rel=1e-10)
    assert bulk_ess(x) == pytest.approx(ess, rel=1e-9)


@pytest.mark.parametrize("name", sorted(ARVIZ))
def test_matches_live_arviz(name):
    az = pytest.importorskip("arviz")
    x = _cases()[name]
    assert split_rhat(x) == pytest.approx(float(az.rhat(x, method="rank")), rel=1e-10)
    assert bulk_ess(x) == pytest.approx(float(az.ess(x, method="bulk")), rel=1e-9)


def test_constant_draws_have_no_rhat():
    assert math.isnan(split_rhat(np.ones((4, 100))))


def test_sample_summary_flags_unmixed_chains():
    """Two wells far apart: chains started at random stay in their well, R-hat says so (Gibbs
    alone: one Swendsen-Wang sweep would flip the whole star at once)."""
    model = ebmlang.compile("var x : spin\nvar y[i in 0..5] : spin\n"
                            "factor tie[i in 0..5] : 6 * x * y[i]\nstat m = x\n"
                            "sampler x : gibbs\nsampler y : gibbs\n")
    draws = model.sample(draws=200, chains=4, burn_in=10, seed=0)
    rows = summarize(draws)
    names = [r[0] for r in rows]
    assert names == ["energy", "m"]
    m_rhat = rows[1][2]
    assert m_rhat > 1.01 and any("R-hat of m" in w for w in warnings_for(rows))


def test_mixed_chains_pass():
    model = ebmlang.compile("var x[i in 0..3] : bool\nfactor f[i in 0..2] : 0.3 * x[i] * x[i + 1]"
                            "\nstat n = sum(i in 0..3) x[i]\n")
    rows = summarize(model.sample(draws=2000, chains=4, seed=1))
    assert all(r[2] < 1.01 for r in rows) and not warnings_for(rows)
    assert all(r[3] > 1000 for r in rows)


# (mcse mean, mcse sd, tail ESS) from arviz.mcse(method="mean"), mcse(method="sd"),
# ess(method="tail"); arviz.summary gives the same numbers in its columns
ARVIZ_MORE = {
    "ar1": (0.24798881698943406, 0.12483929235667594, 242.28670948901726),
    "binary": (0.013141801321667318, 0.005790174770439742, 1200),
    "shift": (0.07961617795399914, 0.022041318052097993, 1033.9367799053232),
    "short": (0.09747210849531411, 0.11027892312999095, 79.89200194750589),
}
# (mean, sd) from arviz.summary: sd with ddof 1
ARVIZ_MEAN_SD = {
    "ar1": (-0.27690674596006026, 2.298871350665305),
    "binary": (0.29833333333333334, 0.45771731797569987),
    "shift": (0.09564535047027854, 1.0282036918054547),
    "short": (0.10818404463174733, 1.0103516900451261),
}


@pytest.mark.parametrize("name", sorted(ARVIZ_MORE))
def test_mcse_and_tail_ess_match_recorded_arviz_values(name):
    x = _cases()[name]
    m, s, tail = ARVIZ_MORE[name]
    assert mcse_mean(x) == pytest.approx(m, rel=1e-10)
    assert mcse_sd(x) == pytest.approx(s, rel=1e-10)
    assert tail_ess(x) == pytest.approx(tail, rel=1e-10)


def test_summary_table_has_arviz_columns_and_values():
    cases = _cases()
    table = summary_table(cases)
    assert list(table.columns) == ["mean", "sd", "mcse_mean", "mcse_sd", "ess_bulk",
                                   "ess_tail", "r_hat"]
    for name, x in cases.items():
        row = [float(table[c][name]) for c in SUMMARY_COLUMNS]
        want = [*ARVIZ_MEAN_SD[name], *ARVIZ_MORE[name][:2], ARVIZ[name][1],
                ARVIZ_MORE[name][2], ARVIZ[name][0]]
        assert row == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("name", sorted(ARVIZ_MORE))
def test_summary_matches_live_arviz(name):
    az = pytest.importorskip("arviz")
    az.Numba.disable_numba()
    x = _cases()[name]
    ref = az.summary(az.convert_to_dataset({name: x}), round_to="none")
    ours = summary_table({name: x})
    for column in SUMMARY_COLUMNS:
        assert float(ours[column][name]) == pytest.approx(float(ref[column][name]), rel=1e-9)


def test_mcse_closed_form_on_iid_draws():
    """iid N(0, 3^2), 4 chains x 10,000: the MCSE of the mean is sigma / sqrt(n) and of the
    sd sigma / sqrt(2 n) (the sd of the sample sd of a normal). The estimates differ from
    these by the error of the ESS estimate, about 2 sqrt(K / n) for the K ~ 10 lags Geyer's
    sequence keeps (3%); 10% is over 3 of those."""
    sigma, n = 3.0, 40_000
    x = sigma * np.random.default_rng(5).standard_normal((4, n // 4))
    assert mcse_mean(x) == pytest.approx(sigma / np.sqrt(n), rel=0.10)
    assert mcse_sd(x) == pytest.approx(sigma / np.sqrt(2 * n), rel=0.10)


def test_constant_series_has_zero_mcse_and_no_ess():
    x = np.full((3, 50), 2.0)
    row = summary_table({"c": x})
    assert float(row["mean"]["c"]) == 2.0 and float(row["sd"]["c"]) == 0.0
    assert float(row["mcse_mean"]["c"]) == 0.0 and float(row["mcse_sd"]["c"]) == 0.0
    assert all(math.isnan(float(row[c]["c"])) for c in ("ess_bulk", "ess_tail", "r_hat"))


def test_samples_summary_rows_are_the_energy_and_every_stat_element():
    """Each row is the diagnostics of that series of the kept draws: the energy is -log p - log
    Z per draw, an indexed stat gives a row per element."""
    model = ebmlang.compile("var x[i in 0..3] : bool\nfactor f[i in 0..2] : 0.3 * x[i] * x[i + 1]"
                            "\nstat n = sum(i in 0..3) x[i]\nstat p[i in 0..2] = x[i] * x[i + 1]\n")
    draws = model.sample(draws=300, chains=3, seed=1)
    table = draws.summary()
    assert list(table.index) == ["energy", "n", "p[0]", "p[1]", "p[2]"]
    stats = draws.stats()
    series = {"energy": -draws.log_potential(), "n": stats["n"],
              **{f"p[{k}]": stats["p"][:, :, k] for k in range(3)}}
    for name, x in series.items():
        want = [x.mean(), x.std(ddof=1), mcse_mean(x), mcse_sd(x), bulk_ess(x), tail_ess(x),
                split_rhat(x)]
        assert [float(table[c][name]) for c in SUMMARY_COLUMNS] == pytest.approx(want, rel=1e-12)
    trace = draws.trace().summary()
    assert list(trace.index) == ["energy", "n", "p"]
    assert float(trace["mean"]["p"]) == pytest.approx(stats["p"].mean(), rel=1e-12)


def test_summary_is_a_dataframe_with_pandas_and_a_table_without():
    rows, cols = [(1.0, math.nan)], ["mean", "r_hat"]
    plain = make_table(rows, cols, ["energy"], pandas=False)
    assert isinstance(plain, Table) and plain["mean"]["energy"] == 1.0
    assert plain.loc("energy")["mean"] == 1.0 and plain.shape == (1, 2)
    assert repr(plain).splitlines() == ["        mean  r_hat", "energy     1    NaN"]
    assert "<th>energy</th><td>1</td><td>NaN</td>" in plain._repr_html_()
    pd = pytest.importorskip("pandas")
    frame = make_table(rows, cols, ["energy"])
    assert isinstance(frame, pd.DataFrame) and frame["mean"]["energy"] == 1.0


def test_constant_series_prints_constant_not_nan():
    """All-zero params: the energy is 0 in every draw; the summary says so (issue 11, item 5)."""
    from ebmlang.report.text import sample_summary
    model = ebmlang.compile("var x[i in 0..3] : bool\nparam b[i in 0..3] = 0\n"
                            "factor f[i in 0..3] : b[i] * x[i]\nstat n = sum(i in 0..3) x[i]\n")
    text = sample_summary(model.sample(draws=50, chains=2, seed=0))
    energy = next(line for line in text.splitlines() if line.split()[:1] == ["energy"])
    assert "constant" in energy and "nan" not in text.lower()
    assert "R-hat" in next(line for line in text.splitlines() if line.split()[:1] == ["n"])


def test_chains_stuck_apart_have_infinite_rhat():
    """Each chain at its own value: no within-chain variance, every bit of it between chains;
    R-hat is infinite (not NaN) and the warning fires."""
    x = np.repeat(np.arange(4.0)[:, None], 50, axis=1)
    assert split_rhat(x) == math.inf
    assert warnings_for([("m", 1.5, split_rhat(x), bulk_ess(x))])

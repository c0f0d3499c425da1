"""Imputation: given variables are clamped, missing ones sampled from their conditionals; the
draws follow the exact conditional distribution given the clamped values."""

import numpy as np

import ebmlang
from ebmlang.cli.app import main
from exact import enumerate_states
from test_sampler_exact import batch_se

CHAIN = "var x[i in 0..3] : bool\nparam W = 1.2\nfactor f[i in 0..2] : W * x[i] * x[i + 1] - 0.3 * x[i]\n"


def test_clamped_sampling_matches_the_exact_conditional():
    model = ebmlang.compile(CHAIN)
    draws = model.sample(draws=4000, chains=4, seed=0, clamp=np.array([[1, np.nan, np.nan, 0]]))
    states, p = enumerate_states(model)
    keep = (states[:, 0] == 1) & (states[:, 3] == 0)
    cond = p * keep / (p * keep).sum()
    x = draws["x"]
    assert np.all(x[..., 0] == 1) and np.all(x[..., 3] == 0)
    for i in (1, 2):
        assert abs(x[..., i].mean() - cond @ states[:, i]) < 5 * batch_se(x[..., i])


def test_input_file_with_missing_cells(tmp_path, capsys):
    model = tmp_path / "m.ebm"
    model.write_text(CHAIN)
    given = tmp_path / "given.csv"
    given.write_text("x[0],x[1],x[2],x[3]\n1,,,0\n")
    out = tmp_path / "draws.csv"
    assert main(["sample", str(model), "--input", str(given), "-n", "50", "--seed", "1",
                 "-o", str(out)]) == 0
    rows = np.loadtxt(out, delimiter=",", skiprows=1)
    assert np.all(rows[:, 2] == 1) and np.all(rows[:, 5] == 0)
    assert set(np.unique(rows[:, 3:5])) <= {0.0, 1.0}
    given.write_text("x[0],x[1],x[2],x[3]\n,,,\n")
    assert main(["sample", str(model), "--input", str(given), "-n", "5"]) == 1
    assert "gives no values" in capsys.readouterr().err

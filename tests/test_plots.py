"""--plot on sample and fit writes a picture (matplotlib is optional: skipped without it):
laid out without overlaps, labelled, a legend of the chains, 1-D families as images."""

import sys

import pytest

import ebmlang
from ebmlang.cli.app import main

pytest.importorskip("matplotlib")
PNG = b"\x89PNG\r\n\x1a\n"
GRID = ("const L = 4\nvar s[i in 0..L-1, j in 0..L-1] : spin\nparam J = 0.3\n"
        "factor right[i in 0..L-1, j in 0..L-2] : J * s[i, j] * s[i, j + 1]\n"
        "stat m = sum(i in 0..L-1, j in 0..L-1) s[i, j]\n")
ROW = "model row\nvar v[i in 0..5] : bool\nparam b = 1.5\nfactor f[i in 0..5] : b * v[i]\n"


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "m.ebm"
    path.write_text(GRID)
    return path


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "d.csv"
    header = ",".join(f"s[{i},{j}]" for i in range(4) for j in range(4))
    path.write_text(header + "\n" + ("1," * 15 + "1\n") + ("-1," * 15 + "-1\n"))
    return path


def test_sample_and_fit_plots(tmp_path, capsys, model, data):
    pic = tmp_path / "s.png"
    assert main(["sample", str(model), "-n", "20", "--seed", "0", "--plot", str(pic)]) == 0
    assert pic.read_bytes().startswith(PNG)
    assert capsys.readouterr().out.endswith(f"wrote {pic}\n")
    fitpic = tmp_path / "f.png"
    assert main(["fit", str(model), str(data), "-o", str(tmp_path / "p.json"), "--epochs", "2",
                 "--quiet", "--plot", str(fitpic)]) == 0
    assert fitpic.read_bytes().startswith(PNG)
    assert main(["sample", str(model), "-n", "5", "--plot", str(tmp_path / "x.nope")]) == 1
    assert "cannot write a picture" in capsys.readouterr().err


def _overlaps(fig):
    """(title, tick label) pairs of different axes whose boxes intersect, once drawn."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    found = []
    for ax in fig.axes:
        title = ax.title.get_window_extent(renderer)
        for other in fig.axes:
            if other is ax:
                continue
            for label in other.get_xticklabels() + other.get_yticklabels():
                if label.get_text() and title.overlaps(label.get_window_extent(renderer)):
                    found.append((ax.get_title(), label.get_text()))
    return found


def test_sample_figure_is_labelled_and_nothing_overlaps(model):
    from ebmlang.report.plots import sample_figure
    samples = ebmlang.load(model).sample(draws=30, chains=3, seed=0)
    fig = sample_figure(samples)
    assert _overlaps(fig) == []
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["s, chain 0", "s, chain 1", "s, chain 2",
                      "trace of the energy (-log p - log Z)", "trace of the stat m"]
    for ax in fig.axes[3:]:
        assert ax.get_xlabel() == "kept draw" and ax.get_ylabel() in ("energy", "m")
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["chain 0", "chain 1", "chain 2"]


def test_fit_figure_is_labelled_and_nothing_overlaps():
    from ebmlang.report.plots import fit_figure
    history = [{"epoch": k, "metric": "pseudo-log-likelihood", "value": -3.0 + 0.1 * k,
                "gaps": {"J": 0.5 / k, "h": 0.2 / k}} for k in range(1, 6)]
    fig = fit_figure(history)
    assert _overlaps(fig) == []
    left, right = fig.axes
    assert (left.get_xlabel(), left.get_ylabel()) == ("epoch", "pseudo-log-likelihood")
    assert right.get_ylabel() == "|E_data - E_model| (mean)"
    assert [t.get_text() for t in right.get_legend().get_texts()] == ["J", "h"]


def test_plot_shape_draws_a_1d_family_as_images(tmp_path, capsys):
    from ebmlang.report.plots import sample_figure
    path = tmp_path / "row.ebm"
    path.write_text(ROW)
    samples = ebmlang.load(path).sample(draws=5, chains=2, seed=0)
    fig = sample_figure(samples, (2, 3))
    assert [ax.get_title() for ax in fig.axes[:2]] == ["v, chain 0", "v, chain 1"]
    assert fig.axes[0].get_images()[0].get_array().shape == (2, 3)
    assert (fig.axes[0].get_images()[0].get_array() == samples["v"][0, -1].reshape(2, 3)).all()
    pic = tmp_path / "v.png"
    assert main(["sample", str(path), "-n", "5", "--plot", str(pic), "--plot-shape", "2x3"]) == 0
    assert main(["sample", str(path), "-n", "5", "--plot", str(pic), "--plot-shape", "4x4",
                 "-o", str(tmp_path / "never.csv")]) == 1
    err = capsys.readouterr().err
    assert "--plot-shape 4x4 needs a 1-D family of 16 elements (v has 6)" in err
    assert not (tmp_path / "never.csv").exists()
    assert main(["sample", str(path), "--plot", str(pic), "--plot-shape", "2by3"]) == 1
    assert "expected ROWSxCOLUMNS such as 8x8" in capsys.readouterr().err


def test_plot_without_matplotlib_fails_before_any_work(tmp_path, capsys, model, data,
                                                        monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # import matplotlib: ImportError
    out, params = tmp_path / "s.csv", tmp_path / "p.json"
    assert main(["sample", str(model), "-o", str(out), "--plot", str(tmp_path / "s.png")]) == 1
    assert main(["fit", str(model), str(data), "-o", str(params), "--plot",
                 str(tmp_path / "f.png")]) == 1
    std = capsys.readouterr()
    assert std.out == "" and std.err.count("--plot needs matplotlib") == 2
    assert not out.exists() and not params.exists()

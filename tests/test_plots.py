"""--plot on sample and fit writes a picture (matplotlib is optional: skipped without it)."""

import pytest

from ebmlang.cli.app import main

pytest.importorskip("matplotlib")
PNG = b"\x89PNG\r\n\x1a\n"


def test_sample_and_fit_plots(tmp_path, capsys):
    model = tmp_path / "m.ebm"
    model.write_text("const L = 4\nvar s[i in 0..L-1, j in 0..L-1] : spin\nparam J = 0.3\n"
                     "factor right[i in 0..L-1, j in 0..L-2] : J * s[i, j] * s[i, j + 1]\n"
                     "stat m = sum(i in 0..L-1, j in 0..L-1) s[i, j]\n")
    pic = tmp_path / "s.png"
    assert main(["sample", str(model), "-n", "20", "--seed", "0", "--plot", str(pic)]) == 0
    assert pic.read_bytes().startswith(PNG)
    data = tmp_path / "d.csv"
    header = ",".join(f"s[{i},{j}]" for i in range(4) for j in range(4))
    data.write_text(header + "\n" + ("1," * 15 + "1\n") + ("-1," * 15 + "-1\n"))
    fitpic = tmp_path / "f.png"
    assert main(["fit", str(model), str(data), "-o", str(tmp_path / "p.json"), "--epochs", "2",
                 "--quiet", "--plot", str(fitpic)]) == 0
    assert fitpic.read_bytes().startswith(PNG)
    assert main(["sample", str(model), "-n", "5", "--plot", str(tmp_path / "x.nope")]) == 1
    assert "cannot write a picture" in capsys.readouterr().err

"""Tests for ebmlang.io.csvio: data, samples, set and parameter files."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from ebmlang.io import csvio
from ebmlang.io.csvio import (
    atomic_write,
    atomic_write_bytes,
    coerce_param,
    format_ground_name,
    parse_ground_name,
    read_data_csv,
    read_params_json,
    write_params_json,
    write_samples_csv,
)
from ebmlang.errors import InternalError, UserError
from ebmlang.io.setcsv import read_set_csv

BIN = np.array([0.0, 1.0])


def write(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def error(fn, *args, **kwargs) -> str:
    with pytest.raises(UserError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# ------------------------------------------------------------------ atomic writes

def test_atomic_write_replaces_file(tmp_path):
    target = write(tmp_path / "out.txt", "old")
    with atomic_write(target) as f:
        f.write("new\nline\n")
        assert target.read_text() == "old"  # nothing visible until the block ends
    assert target.read_bytes() == b"new\nline\n"  # no newline translation
    assert leftovers(tmp_path) == []


def test_atomic_write_keeps_old_file_on_exception(tmp_path):
    target = write(tmp_path / "out.txt", "old")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(target) as f:
        f.write("partial")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_atomic_write_new_file_and_bytes(tmp_path):
    target = tmp_path / "new.bin"
    atomic_write_bytes(target, b"\x00\x01abc")
    assert target.read_bytes() == b"\x00\x01abc"
    atomic_write_bytes(str(target), b"second")
    assert target.read_bytes() == b"second"
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_atomic_write_gives_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "f", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644


def test_atomic_write_into_missing_directory(tmp_path):
    target = tmp_path / "no" / "such" / "f.csv"
    msg = error(atomic_write_bytes, target, b"x")
    assert msg.startswith(f"{target}: error: cannot write {target}: ")


def test_atomic_write_onto_directory(tmp_path):
    (tmp_path / "d").mkdir()
    msg = error(atomic_write_bytes, tmp_path / "d", b"x")
    assert msg.startswith(f"{tmp_path / 'd'}: error: cannot write")
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------ ground names

@pytest.mark.parametrize("text, expected", [
    ("x", ("x", ())),
    ("_a1", ("_a1", ())),
    ("v[3]", ("v", (3,))),
    ("s[0,1]", ("s", (0, 1))),
    ("s[ 0 , 1 ]", ("s", (0, 1))),
    (" s [0, 1] ", ("s", (0, 1))),
    ("a[-1]", ("a", (-1,))),
    ("t[1,-2,3]", ("t", (1, -2, 3))),
    ("v[007]", ("v", (7,))),
])
def test_parse_ground_name(text, expected):
    assert parse_ground_name(text) == expected


@pytest.mark.parametrize("text", [
    "", " ", "1x", "v[", "v]", "v[]", "v[1,]", "v[,1]", "v[a]", "v[1.5]", "v[1][2]", "x y",
    "v[- 1]", "v[+1]", "é", "v[١]", "x.y", "v[" + "9" * 30 + "]",
    "__import__('os').system('x')",
])
def test_parse_ground_name_rejects(text):
    assert parse_ground_name(text) is None


def test_format_ground_name():
    assert format_ground_name("s", (0, 1)) == "s[0,1]"
    assert format_ground_name("a", (-1,)) == "a[-1]"
    assert format_ground_name("x", ()) == "x"
    assert format_ground_name("x") == "x"
    assert format_ground_name(*parse_ground_name("s[ 2 , 3 ]")) == "s[2,3]"


# ------------------------------------------------------------------ read_data_csv

def columns_v(n: int = 4) -> dict:
    cols: dict = {f"v[{i}]": BIN for i in range(n)}
    cols["x"] = None
    cols["s[0,1]"] = np.array([0.0, 1.0, 2.0])
    return cols


def test_read_data_csv_basic(tmp_path):
    text = '\ufeffv[0],"s[0, 1]",x\r\n1,2,0.5\r\n0,,-3e2\r\n,0,\r\n\r\n\n'
    path = write(tmp_path / "d.csv", text)
    header, data = read_data_csv(path, columns_v())
    assert header == ["v[0]", "s[0,1]", "x"]
    assert data.dtype == np.float64 and data.shape == (3, 3)
    np.testing.assert_array_equal(data, [[1, 2, 0.5], [0, np.nan, -300], [np.nan, 0, np.nan]])


def test_read_data_csv_accepts_path_str_spaces_and_blank_lines(tmp_path):
    path = write(tmp_path / "d.csv", "\n x , v[1]\n\n 1.5 , 1 \n  \n+2,0.\n")
    header, data = read_data_csv(str(path), columns_v())
    assert header == ["x", "v[1]"]
    np.testing.assert_array_equal(data, [[1.5, 1], [2, 0]])


def test_read_data_csv_whitespace_cell_is_missing(tmp_path):
    path = write(tmp_path / "d.csv", "x,v[1]\n 1 , \n2,1\n")
    _, data = read_data_csv(path, columns_v())
    np.testing.assert_array_equal(data, [[1, np.nan], [2, 1]])
    msg = error(read_data_csv, path, columns_v(), allow_missing=False)
    assert msg == f"{path}:2:2: error: missing value in column 'v[1]' (row 1)"


def test_read_data_csv_malformed_csv(tmp_path):
    path = write(tmp_path / "d.csv", "x\n1\n" + "9" * 200_000 + "\n")
    msg = error(read_data_csv, path, columns_v())
    assert msg.startswith(f"{path}:3:1: error: malformed CSV: field larger than field limit")


def test_read_data_csv_snaps_to_domain(tmp_path):
    dom = np.array([0.1, 0.1 * 3, 1.0])  # 0.30000000000000004
    path = write(tmp_path / "d.csv", "y\n0.3\n0.1\n1\n")
    _, data = read_data_csv(path, {"y": dom})
    assert data[:, 0].tolist() == [dom[1], 0.1, 1.0]


def test_read_data_csv_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    msg = error(read_data_csv, path, columns_v())
    assert msg == f"{path}: error: cannot read data file: No such file or directory"


def test_read_data_csv_directory(tmp_path):
    assert "error: cannot read data file: " in error(read_data_csv, tmp_path, columns_v())


def test_read_data_csv_not_utf8(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"x\n1\n\xff\xfe\n")
    msg = error(read_data_csv, path, columns_v())
    assert msg == f"{path}:3:1: error: cannot read data file: it is not UTF-8 text"


@pytest.mark.parametrize("text", ["", "\n\n", "  \r\n", "\ufeff"])
def test_read_data_csv_empty(tmp_path, text):
    path = write(tmp_path / "d.csv", text)
    msg = error(read_data_csv, path, columns_v())
    assert msg == (f"{path}:1:1: error: the data file is empty: "
                   "expected a header row of variable names")


def test_read_data_csv_what(tmp_path):
    path = write(tmp_path / "d.csv", "")
    msg = error(read_data_csv, path, columns_v(), what="evidence")
    assert msg.startswith(f"{path}:1:1: error: the evidence file is empty")
    msg = error(read_data_csv, tmp_path / "missing.csv", columns_v(), what="evidence")
    assert "cannot read evidence file" in msg


def test_read_data_csv_header_no_rows(tmp_path):
    path = write(tmp_path / "d.csv", "\nx,v[0]\n\n")
    msg = error(read_data_csv, path, columns_v())
    assert msg == f"{path}:2:1: error: the data file has a header but no rows"


@pytest.mark.parametrize("cell", ["v[", "1x", "v[1.5]", "x y", "", "v[]"])
def test_read_data_csv_malformed_header(tmp_path, cell):
    path = write(tmp_path / "d.csv", f'x,"{cell}"\n1,2\n')
    msg = error(read_data_csv, path, columns_v())
    assert msg.startswith(f"{path}:1:2: error: column name '{cell}' is not a variable name "
                          "(e.g. x, v[3], s[0,1])")


def test_read_data_csv_unquoted_comma_name(tmp_path):
    """A header written by hand as x,s[0,1] (unquoted) means the columns x and s[0,1]."""
    path = write(tmp_path / "d.csv", "x,s[0,1],v[1]\n1.5,2,1\n")
    header, data = read_data_csv(path, columns_v())
    assert header == ["x", "s[0,1]", "v[1]"]
    assert data.tolist() == [[1.5, 2.0, 1.0]]


def test_read_data_csv_unclosed_bracket(tmp_path):
    path = write(tmp_path / "d.csv", "x,s[0\n1,2\n")
    msg = error(read_data_csv, path, columns_v())
    assert msg == (f"{path}:1:2: error: column name 's[0' is not a variable name "
                   '(e.g. x, v[3], s[0,1]); quote a name with a comma: "s[0,1]"')


def test_read_data_csv_header_is_never_executed(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a) or 0)
    path = write(tmp_path / "d.csv", "x,__import__('os').system('x')\n1,2\n")
    msg = error(read_data_csv, path, columns_v())
    assert msg.startswith(f"{path}:1:2: error: column name '__import__('os').system('x')' "
                          "is not a variable name")
    path = write(tmp_path / "e.csv", "x\n__import__('os').system('x')\n")
    msg = error(read_data_csv, path, columns_v())
    assert msg.startswith(f"{path}:2:1: error: '__import__('os').system('x')' in column 'x' "
                          "is not a number")
    assert calls == []


def test_read_data_csv_unknown_column_did_you_mean(tmp_path):
    path = write(tmp_path / "d.csv", "alpah\n1\n")
    msg = error(read_data_csv, path, {"alpha": None, "beta": None})
    assert msg == f"{path}:1:1: error: unknown column 'alpah' (did you mean 'alpha'?)"
    path = write(tmp_path / "d.csv", "x,zzz\n1,2\n")
    msg = error(read_data_csv, path, {"x": None, "alpha": None})
    assert msg == f"{path}:1:2: error: unknown column 'zzz'"


def test_read_data_csv_array_family_without_index(tmp_path):
    path = write(tmp_path / "d.csv", "x,v\n1,2\n")
    msg = error(read_data_csv, path, columns_v())
    assert msg == (f"{path}:1:2: error: unknown column 'v': 'v' is an array; "
                   "name its elements, e.g. v[0]")


def test_read_data_csv_scalar_with_index_and_bad_element(tmp_path):
    path = write(tmp_path / "d.csv", "x[0]\n1\n")
    msg = error(read_data_csv, path, columns_v())
    assert msg == f"{path}:1:1: error: unknown column 'x[0]': 'x' is a scalar; name it x"
    path = write(tmp_path / "d.csv", "v[ 9 ]\n1\n")
    msg = error(read_data_csv, path, columns_v())
    assert msg == (f"{path}:1:1: error: unknown column 'v[9]': v has no such element "
                   "(its elements run from v[0] to v[3])")


def test_read_data_csv_latent_column(tmp_path):
    path = write(tmp_path / "d.csv", "x,h[0]\n1,0\n")
    cols = {**columns_v(), "h[0]": BIN}
    msg = error(read_data_csv, path, cols, latent={"h[0]"})
    assert msg == (f"{path}:1:2: error: column 'h[0]' is the latent variable h[0], "
                   "which is never observed; remove the column")
    msg = error(read_data_csv, path, columns_v(), latent={"h[0]"})  # latent, not in columns
    assert "is the latent variable h[0]" in msg


def test_read_data_csv_duplicate_column(tmp_path):
    path = write(tmp_path / "d.csv", 'x,"s[0,1]","s[ 0, 1]"\n1,2,2\n')
    msg = error(read_data_csv, path, columns_v())
    assert msg == f"{path}:1:3: error: column 's[0,1]' appears twice (columns 2 and 3)"


def test_read_data_csv_wrong_field_count(tmp_path):
    path = write(tmp_path / "d.csv", "x,v[0]\n1,0\n\n2,1,7\n")
    msg = error(read_data_csv, path, columns_v())
    assert msg == f"{path}:4:3: error: row 2 has 3 fields, the header has 2"
    path = write(tmp_path / "d.csv", "x,v[0],v[1]\n1,0,1\n2\n")
    msg = error(read_data_csv, path, columns_v())
    assert msg == f"{path}:3:1: error: row 2 has 1 fields, the header has 3"


def test_read_data_csv_reports_errors_in_file_order(tmp_path):
    path = write(tmp_path / "d.csv", "x,v[0]\n1,5\n2,1,7\n")
    msg = error(read_data_csv, path, columns_v())
    assert msg.startswith(f"{path}:2:2: error: value 5 in column 'v[0]'")


def test_read_data_csv_not_a_number(tmp_path):
    path = write(tmp_path / "d.csv", "x,v[3]\n1,0\n2,abc\n")
    msg = error(read_data_csv, path, columns_v())
    assert msg == f"{path}:3:2: error: 'abc' in column 'v[3]' is not a number (row 2)"


@pytest.mark.parametrize("cell", ["nan", "NaN", "inf", "-inf", "+Infinity", "infinity"])
def test_read_data_csv_rejects_nan_and_inf(tmp_path, cell):
    path = write(tmp_path / "d.csv", f"x\n1\n{cell}\n")
    msg = error(read_data_csv, path, columns_v())
    assert msg == (f"{path}:3:1: error: '{cell}' in column 'x' is not a number (row 2); "
                   "leave a missing value empty")


@pytest.mark.parametrize("cell", ["1_000", "0x10", "١", "1e5.5", "1,5", "--1", ". 5", "1e999"])
def test_read_data_csv_rejects_other_non_numbers(tmp_path, cell):
    path = write(tmp_path / "d.csv", f'x\n1\n"{cell}"\n')
    msg = error(read_data_csv, path, columns_v())
    assert msg.startswith(f"{path}:3:1: error: '{cell}' in column 'x' is not a number")
    assert msg.endswith("(row 2)")


def test_read_data_csv_long_cell_is_shortened(tmp_path):
    path = write(tmp_path / "d.csv", "x\n" + "a" * 500 + "\n")
    msg = error(read_data_csv, path, columns_v())
    assert msg == f"{path}:2:1: error: '{'a' * 37}...' in column 'x' is not a number (row 1)"


def test_read_data_csv_value_outside_domain(tmp_path):
    path = write(tmp_path / "d.csv", "x,v[3]\n1,0\n2, 2\n")
    msg = error(read_data_csv, path, columns_v())
    assert msg == (f"{path}:3:2: error: value 2 in column 'v[3]' is not in the domain {{0, 1}} "
                   "(row 2)")
    path = write(tmp_path / "d.csv", "y\n0.25\n")
    msg = error(read_data_csv, path, {"y": np.array([-1.0, 0.5, 2.0])})
    assert msg == (f"{path}:2:1: error: value 0.25 in column 'y' is not in the domain "
                   "{-1, 0.5, 2} (row 1)")
    path = write(tmp_path / "d.csv", "y\n100\n")
    msg = error(read_data_csv, path, {"y": np.arange(20.0)})
    assert msg.endswith("is not in the domain {0, 1, 2, 3, 4, 5, ..., 19} (row 1)")


def test_read_data_csv_missing_value_not_allowed(tmp_path):
    path = write(tmp_path / "d.csv", "x,v[0]\n1,0\n\n2,\n")
    header, data = read_data_csv(path, columns_v())
    assert np.isnan(data[1, 1])
    msg = error(read_data_csv, path, columns_v(), allow_missing=False)
    assert msg == f"{path}:4:2: error: missing value in column 'v[0]' (row 2)"


def test_read_data_csv_required(tmp_path):
    path = write(tmp_path / "d.csv", "x,v[0]\n1,0\n")
    header, _ = read_data_csv(path, columns_v(), required=["x", "v[0]"])
    assert header == ["x", "v[0]"]
    msg = error(read_data_csv, path, columns_v(), required=["x", "v[0]", "v[1]"])
    assert msg == f"{path}:1:1: error: missing column 'v[1]'"
    req = ["x", "s[0,1]"] + [f"v[{i}]" for i in range(4)] + ["w", "z"]
    cols = {**columns_v(), "w": None, "z": None}
    msg = error(read_data_csv, path, cols, required=req)
    assert msg == (f"{path}:1:1: error: missing columns 's[0,1]', 'v[1]', 'v[2]', 'v[3]', 'w' "
                   "and 1 more (6 missing in total)")


def test_read_data_csv_many_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(csvio, "_BLOCK_CELLS", 6)
    rows = [[i % 2, i * 0.5] for i in range(25)]
    text = "v[0],x\n" + "".join(f"{a},{b}\n" for a, b in rows)
    path = write(tmp_path / "d.csv", text)
    _, data = read_data_csv(path, columns_v())
    np.testing.assert_array_equal(data, rows)
    bad = text.replace("\n1,8.5\n", "\n1,bad\n")  # data row 18, file line 19
    path = write(tmp_path / "e.csv", bad)
    msg = error(read_data_csv, path, columns_v())
    assert msg == f"{path}:19:2: error: 'bad' in column 'x' is not a number (row 18)"
    bad = text.replace("\n1,8.5\n", "\n1,8.5,3\n")
    path = write(tmp_path / "f.csv", bad)
    msg = error(read_data_csv, path, columns_v())
    assert msg == f"{path}:19:3: error: row 18 has 3 fields, the header has 2"


def test_read_data_csv_quoted_newline_line_numbers(tmp_path):
    path = write(tmp_path / "d.csv", 'x,v[0]\n"1\n",0\n2,oops\n')
    msg = error(read_data_csv, path, columns_v())
    assert msg == f"{path}:4:2: error: 'oops' in column 'v[0]' is not a number (row 2)"


# ------------------------------------------------------------------ write_samples_csv

def test_write_samples_csv_ints_and_floats(tmp_path):
    path = tmp_path / "s.csv"
    data = np.array([[0.0, 1.0, 0.1, -2.0], [1.0, -3.0, 1e-20, 1.0 / 3],
                     [1.0, 12.0, np.nan, 5e300]])
    ints = np.array([True, True, False, False])
    write_samples_csv(path, ["v[0]", "s[0,1]", "x", "y"], data, ints)
    assert path.read_text() == ('v[0],"s[0,1]",x,y\n'
                                "0,1,0.1,-2.0\n"
                                f"1,-3,1e-20,{1.0 / 3!r}\n"
                                "1,12,,5e+300\n")
    assert leftovers(tmp_path) == []


def test_write_samples_csv_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    floats = rng.normal(size=200) * 10.0 ** rng.integers(-30, 30, 200)
    data = np.column_stack([rng.integers(-5, 5, 200), floats, rng.integers(0, 10**6, 200)])
    header = ["k", "x", "big"]
    path = tmp_path / "s.csv"
    write_samples_csv(path, header, data, np.array([True, False, True]))
    got_header, got = read_data_csv(path, {"k": np.arange(-5.0, 5.0), "x": None, "big": None})
    assert got_header == header
    np.testing.assert_array_equal(got, data)  # exact: shortest repr round-trips


def test_write_samples_csv_default_all_floats_and_odd_int_values(tmp_path):
    path = tmp_path / "s.csv"
    write_samples_csv(path, ["a", "b"], np.array([[1.0, np.inf], [2.5, 2.0**70]]))
    assert path.read_text() == "a,b\n1.0,inf\n2.5,1.1805916207174113e+21\n"
    write_samples_csv(path, ["a", "b"], np.array([[1.0, np.inf], [2.0, 2.0**70]]), np.array([1, 1]))
    assert path.read_text() == "a,b\n1,inf\n2,1.1805916207174113e+21\n"


def test_write_samples_csv_big_int_range(tmp_path):
    path = tmp_path / "s.csv"
    write_samples_csv(path, ["a"], np.array([[-(10.0**12)], [10.0**12]]), np.array([True]))
    assert path.read_text() == "a\n-1000000000000\n1000000000000\n"


def test_write_samples_csv_no_rows(tmp_path):
    path = tmp_path / "s.csv"
    write_samples_csv(path, ["a", "b"], np.empty((0, 2)), np.array([True, False]))
    assert path.read_text() == "a,b\n"


def test_write_samples_csv_shape_mismatch_is_internal(tmp_path):
    with pytest.raises(InternalError):
        write_samples_csv(tmp_path / "s.csv", ["a"], np.zeros((2, 2)), None)


def test_write_samples_csv_is_atomic(tmp_path, monkeypatch):
    path = write(tmp_path / "s.csv", "old\n")
    monkeypatch.setattr(csvio, "_BLOCK_CELLS", 2)

    def fail(block, ints):
        raise MemoryError("no")
    monkeypatch.setattr(csvio, "_format_block", fail)
    with pytest.raises(MemoryError):
        write_samples_csv(path, ["a"], np.zeros((5, 1)), None)
    assert path.read_text() == "old\n"
    assert leftovers(tmp_path) == []


def test_write_samples_csv_round_trips(tmp_path):
    """Every cell written by the vectorized writer reads back exactly: integer columns as
    integers, real columns to the last bit (no timing here: the writer's speed is a bench)."""
    rng = np.random.default_rng(0)
    rows, cols = 20_000, 30
    data = rng.integers(0, 3, size=(rows, cols)).astype(float)
    data[:, -10:] = rng.normal(size=(rows, 10))
    ints = np.arange(cols) < cols - 10
    write_samples_csv(tmp_path / "s.csv", [f"v[{i}]" for i in range(cols)], data, ints)
    with open(tmp_path / "s.csv") as f:
        assert f.readline().rstrip("\n").split(",") == [f"v[{i}]" for i in range(cols)]
        cells = [line.rstrip("\n").split(",") for line in f]
    assert len(cells) == rows
    assert all(c.isdigit() for row in cells[:100] for c in row[:cols - 10])
    np.testing.assert_array_equal(np.array(cells, dtype=float), data)


# ------------------------------------------------------------------ read_set_csv

def test_read_set_csv_basic(tmp_path):
    path = write(tmp_path / "e.csv", "0,1\n 1 , 2\r\n\n1,2\n-3,+4\n")
    got = read_set_csv(path)
    assert got.dtype == np.int64
    assert got.tolist() == [[0, 1], [1, 2], [1, 2], [-3, 4]]  # duplicates are kept


def test_read_set_csv_header(tmp_path):
    path = write(tmp_path / "e.csv", "\ufeffsrc, dst\n0,1\n2,3\n")
    assert read_set_csv(path).tolist() == [[0, 1], [2, 3]]
    assert read_set_csv(path, arity_hint=2).shape == (2, 2)
    path = write(tmp_path / "h.csv", "i,j,k\n")
    assert read_set_csv(path).shape == (0, 3)


def test_read_set_csv_single_column(tmp_path):
    path = write(tmp_path / "e.csv", "3\n1\n2\n")
    assert read_set_csv(path, arity_hint=1).tolist() == [[3], [1], [2]]


def test_read_set_csv_missing_and_empty(tmp_path):
    msg = error(read_set_csv, tmp_path / "none.csv")
    assert msg == f"{tmp_path / 'none.csv'}: error: cannot read set file: No such file or directory"
    path = write(tmp_path / "e.csv", "\n\n")
    msg = error(read_set_csv, path)
    assert msg == f"{path}:1:1: error: the set file is empty: expected rows of integers"


@pytest.mark.parametrize("cell, why", [
    ("1.5", "'1.5' is not an integer"), ("2.0", "'2.0' is not an integer"),
    ("x", "'x' is not an integer"), ("", "an empty cell is not an integer"),
    ("1e3", "'1e3' is not an integer"),
    ("99999999999999999999", "'99999999999999999999' is not an integer"),
    ("9223372036854775808", "'9223372036854775808' is out of range"),
])
def test_read_set_csv_bad_cell(tmp_path, cell, why):
    path = write(tmp_path / "e.csv", f"a,b\n0,1\n2,{cell}\n")
    msg = error(read_set_csv, path)
    assert msg == f"{path}:3:3: error: {why} (row 2)"  # the cell's character column


def test_read_set_csv_row_lengths(tmp_path):
    path = write(tmp_path / "e.csv", "0,1\n1,2,3\n")
    assert error(read_set_csv, path) == f"{path}:2:5: error: row 2 has 3 fields, row 1 has 2"
    path = write(tmp_path / "e.csv", "a,b,c\n1,2\n")
    assert error(read_set_csv, path) == f"{path}:2:3: error: row 1 has 2 fields, the header has 3"
    path = write(tmp_path / "e.csv", "0,1\n")
    msg = error(read_set_csv, path, arity_hint=3)
    assert msg == f"{path}:1:3: error: row 1 has 2 fields, the set has arity 3"
    path = write(tmp_path / "e.csv", "a,b\n0,1\n")
    msg = error(read_set_csv, path, arity_hint=3)
    assert msg == f"{path}:1:1: error: the header has 2 columns, the set has arity 3"


@pytest.mark.parametrize("line, col", [
    ('0,  x\n', 5),             # blanks before the cell are skipped
    ('"0",\t"x"\n', 6),        # a quoted cell: its opening quote
    ('"0","x,y"\n', 5),         # a comma inside quotes does not end a field
])
def test_read_set_csv_bad_cell_column(tmp_path, line, col):
    path = write(tmp_path / "e.csv", "1,2\n" + line)
    assert error(read_set_csv, path).startswith(f"{path}:2:{col}: ")


def test_read_set_csv_first_row_of_empty_cells_is_data(tmp_path):
    path = write(tmp_path / "e.csv", ",\n1,2\n")
    msg = error(read_set_csv, path)
    assert msg == f"{path}:1:1: error: an empty cell is not an integer (row 1)"


# ------------------------------------------------------------------ parameter files

def test_params_round_trip(tmp_path):
    path = tmp_path / "P.json"
    W = np.arange(6.0).reshape(3, 2) / 7
    params = {"W": W, "b": 0.25, "v": np.array([1.0, -2.0]), "c": np.float64(3.0)}
    write_params_json(path, params, {"model": "m.ebm", "steps": np.int64(5), "lr": np.float32(0.5)})
    doc = json.loads(path.read_text())
    assert list(doc) == ["params", "model", "steps", "lr"]
    assert doc["steps"] == 5 and doc["model"] == "m.ebm"
    assert path.read_text().startswith('{\n "params": {\n  "W": [\n   [\n')  # indent=1
    raw = read_params_json(path)
    assert set(raw) == {"W", "b", "v", "c"}
    np.testing.assert_array_equal(coerce_param("W", raw["W"], (3, 2), path), W)
    assert coerce_param("b", raw["b"], ()).shape == ()
    assert float(coerce_param("b", raw["b"], ())) == 0.25
    np.testing.assert_array_equal(coerce_param("v", raw["v"], (2,)), [1.0, -2.0])
    assert leftovers(tmp_path) == []


def test_write_params_json_rejects_non_finite(tmp_path):
    path = write(tmp_path / "P.json", "old")
    msg = error(write_params_json, path, {"W": np.array([1.0, np.nan])}, {})
    assert msg == f"{path}: error: cannot write {path}: param 'W' has NaN or infinite values"
    assert path.read_text() == "old"


def test_read_params_json_missing(tmp_path):
    msg = error(read_params_json, tmp_path / "P.json")
    assert msg == (f"{tmp_path / 'P.json'}: error: cannot read params file: "
                   "No such file or directory")


def test_read_params_json_invalid(tmp_path):
    path = write(tmp_path / "P.json", '{"params": {\n  "W": [1, 2,]\n}}')
    msg = error(read_params_json, path)
    assert msg == f"{path}:2:14: error: invalid JSON: Expecting value"
    path = write(tmp_path / "P.json", "")
    assert error(read_params_json, path).startswith(f"{path}:1:1: error: invalid JSON: ")


@pytest.mark.parametrize("text", ['[1, 2]', '{"model": "m"}', '{"params": [1]}', '3'])
def test_read_params_json_wrong_structure(tmp_path, text):
    path = write(tmp_path / "P.json", text)
    msg = error(read_params_json, path)
    assert msg.endswith('error: expected a JSON object with a "params" key mapping names to values')
    assert msg.startswith(f"{path}:1:")


@pytest.mark.parametrize("value, why", [
    ('"abc"', 'contains "abc", which is not a number'),
    ("[1, null]", "contains null, which is not a number"),
    ("[[1, 2], [true, 3]]", "contains true, which is not a number"),
    ('{"a": 1}', 'contains {"a": 1}, which is not a number'),
    ("NaN", "contains NaN or an infinity; parameters must be finite numbers"),
    ("[1, -Infinity]", "contains NaN or an infinity; parameters must be finite numbers"),
    ("[1e999]", "contains NaN or an infinity; parameters must be finite numbers"),
])
def test_read_params_json_bad_value(tmp_path, value, why):
    path = write(tmp_path / "P.json", '{"model": {"W": 1},\n "params": {\n  "b": 1,\n  "W": '
                 + value + "\n }\n}\n")
    msg = error(read_params_json, path)
    assert msg == f"{path}:4:3: error: param 'W' {why}"


def test_read_params_json_huge_integer(tmp_path):
    path = write(tmp_path / "P.json", '{"params": {"W": ' + "9" * 5000 + "}}")
    assert error(read_params_json, path).startswith(f"{path}:1:1: error: invalid JSON: ")


def test_coerce_param_shape_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "P.json", '{"params": {\n "W": [[1, 2], [3, 4], [5, 6]],\n "b": 1}}')
    raw = read_params_json("P.json")
    msg = error(coerce_param, "W", raw["W"], (64, 100), "P.json")
    assert msg == ("P.json:2:2: error: param 'W' in P.json has shape (3, 2), "
                   "the model declares (64, 100)")
    msg = error(coerce_param, "b", raw["b"], (3,), "P.json")
    assert msg == "P.json:3:2: error: param 'b' in P.json is a scalar, the model declares (3,)"
    msg = error(coerce_param, "W", raw["W"], (), "P.json")
    assert msg == ("P.json:2:2: error: param 'W' in P.json has shape (3, 2), "
                   "the model declares a scalar")
    msg = error(coerce_param, "W", [[1, 2], [3]], (2, 2), "P.json")
    assert msg == "P.json:2:2: error: param 'W' in P.json is not a rectangular array of numbers"
    msg = error(coerce_param, "W", [1, 2], (3,))
    assert msg == "ebmlang: error: param 'W' has shape (2,), the model declares (3,)"


# ------------------------------------------------------------------ a samples CSV as data

SMALL_RBM = """model r
var v[i in 0..2] : bool
latent h[j in 0..1] : bool
param W[i in 0..2, j in 0..1] = 0.5 * (i - j)
param b[i in 0..2] = 0.2 * i - 0.2
factor pair[i in 0..2, j in 0..1] : W[i, j] * v[i] * h[j]
factor vis[i in 0..2] : b[i] * v[i]
"""


def test_samples_csv_is_data_for_fit_and_score(tmp_path, capsys):
    """Issue 11 item 4: `sample -o` output feeds `fit` and `score`: chain, draw and latent
    columns ignored (one note line), the var columns read exactly; the fit is the same as
    from the same rows given as arrays."""
    import ebmlang
    from ebmlang.cli import app as cli
    from ebmlang.io.data import load_data
    model = ebmlang.compile(SMALL_RBM)
    draws = model.sample(draws=40, chains=2, burn_in=10, seed=3, progress=False)
    path = tmp_path / "draws.csv"
    draws.to_csv(str(path))
    data = load_data(model, str(path))
    v = draws["v"].reshape(-1, 3)
    assert np.array_equal(data.x[:, model.state_ids(("var",))], v)
    assert np.isnan(data.x[:, model.state_ids(("latent",))]).all()
    assert data.note == (f"{path}: a samples CSV: each row is one example; its chain and draw "
                         "columns and its 2 latent columns are ignored")
    from_csv = model.fit(str(path), method="exact").params
    from_arrays = ebmlang.compile(SMALL_RBM).fit({"v": v}, method="exact").params
    for name in ("W", "b"):
        assert np.allclose(from_csv[name], from_arrays[name], rtol=0, atol=1e-9)
    model_file = tmp_path / "r.ebm"
    model_file.write_text(SMALL_RBM)
    assert cli.main(["fit", str(model_file), str(path), "--epochs", "1", "--quiet",
                     "-o", str(tmp_path / "p.json")]) == 0
    assert capsys.readouterr().err == f"note: {data.note}\n"
    assert cli.main(["score", str(model_file), str(path), "--params",
                     str(tmp_path / "p.json")]) == 0
    out = capsys.readouterr()
    assert out.err == f"note: {data.note}\n" and len(out.out.splitlines()) == 1 + 80


def test_samples_csv_header_only_when_chain_and_draw_lead(tmp_path):
    cols = {"chain": None, "x": BIN}  # a model with a variable named chain: not a samples CSV
    path = write(tmp_path / "d.csv", "chain,draw,x\n0,0,1\n")
    assert "unknown column 'draw'" in error(read_data_csv, path, cols, samples=True)
    path = write(tmp_path / "e.csv", "draw,chain,x\n0,0,1\n")
    assert "unknown column 'draw'" in error(read_data_csv, path, {"x": BIN}, samples=True)
    path = write(tmp_path / "f.csv", "chain,draw,x\n0,0,2\n")  # var cells still checked
    assert "value 2 in column 'x' is not in the domain" in error(read_data_csv, path, {"x": BIN},
                                                                 samples=True)
    header, table = read_data_csv(write(tmp_path / "g.csv", "chain,draw,x\n1,7,1\n"),
                                  {"x": BIN}, samples=True)
    assert header == ["chain", "draw", "x"] and table.tolist() == [[1, 7, 1]]

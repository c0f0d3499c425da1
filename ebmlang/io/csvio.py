"""Data, sample and parameter files: atomic writes, user errors at FILE:LINE:COL (field)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Collection, Iterator, Mapping
from typing import Any, TextIO

import numpy as np

from ebmlang.errors import InternalError, Span, UserError, did_you_mean

PathLike = str | os.PathLike[str]

_NAME, _INDEX = r"[A-Za-z_][A-Za-z0-9_]*", r"-?[0-9]{1,18}"
_GROUND_RE = re.compile(rf"\s*({_NAME})\s*(?:\[\s*({_INDEX}(?:\s*,\s*{_INDEX})*)\s*\])?\s*", re.A)
_NUM_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.A)
_INT_RE = re.compile(r"[+-]?[0-9]{1,19}", re.A)
_BLOCK_CELLS = 1_000_000  # cells converted or formatted per numpy block


@contextlib.contextmanager
def _atomic(path: PathLike, binary: bool) -> Iterator[Any]:
    """Yield a temp file next to `path`; move it onto `path` only if the block succeeds."""
    target = os.fspath(path)
    try:
        tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed by the with below)
            mode="wb" if binary else "w", encoding=None if binary else "utf-8",
            newline=None if binary else "", delete=False, prefix=f".{os.path.basename(target)}.",
            suffix=".tmp", dir=os.path.dirname(os.path.abspath(target)))
    except OSError as e:
        raise UserError(f"cannot write {target}: {e.strerror or e}", file=target) from None
    body_done = False
    try:
        with tmp:
            yield tmp
            body_done = True
            tmp.flush()
            os.fsync(tmp.fileno())
        os.umask(mask := os.umask(0o022))
        os.chmod(tmp.name, 0o666 & ~mask)  # as a new file would get, not the temp file's 0600
        os.replace(tmp.name, target)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp.name)
        if body_done and isinstance(e, OSError):
            raise UserError(f"cannot write {target}: {e.strerror or e}", file=target) from None
        raise


def atomic_write(path: PathLike) -> contextlib.AbstractContextManager[TextIO]:
    """Context manager yielding a UTF-8 text handle (no newline translation) for `path`."""
    return _atomic(path, binary=False)


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Atomically replace `path` by `data`."""
    with _atomic(path, binary=True) as f:
        f.write(data)


def parse_ground_name(text: str) -> tuple[str, tuple[int, ...]] | None:
    """`v[0, 1]` -> ('v', (0, 1)), `x` -> ('x', ()); None when `text` is not such a name."""
    if (m := _GROUND_RE.fullmatch(text)) is None:
        return None
    inside = m.group(2)
    return m.group(1), tuple(int(p) for p in inside.split(",")) if inside is not None else ()


def format_ground_name(name: str, idx: tuple[int, ...] = ()) -> str:
    """Canonical spelling: `s[0,1]`, or `x` for a scalar."""
    return f"{name}[{','.join(str(i) for i in idx)}]" if idx else name


def _show(text: str, limit: int = 40) -> str:
    """`text` shortened for an error message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fmt_domain(dom: Any) -> str:
    """`{0, 1, 2.5}`: integers without '.0', long domains elided."""
    fmt = [str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v) for v in map(float, dom)]
    shown = fmt if len(fmt) <= 10 else [*fmt[:6], "...", fmt[-1]]
    return "{" + ", ".join(shown) + "}"


def _read_text(path: str, what: str) -> str:
    """The UTF-8 text of a file (a BOM is dropped)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise UserError(f"cannot read {what} file: {e.strerror or e}", file=path) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"cannot read {what} file: it is not UTF-8 text",
                        Span(raw.count(b"\n", 0, e.start) + 1, 1), file=path) from None


def _csv_rows(path: str, what: str, expected: str,
              text: str | None = None) -> Iterator[tuple[int, list[str]]]:
    """Yield (line where the record starts, fields) for each non-blank CSV record; none: error."""
    text = _read_text(path, what) if text is None else text
    reader, line, empty = csv.reader(io.StringIO(text, newline="")), 0, True
    try:
        for row in reader:
            start, line = line + 1, reader.line_num
            if row and not (len(row) == 1 and not row[0].strip()):
                empty = False
                yield start, row
    except csv.Error as e:
        raise UserError(f"malformed CSV: {e}", Span(line + 1, 1), file=path) from None
    if empty:
        raise UserError(f"the {what} file is empty: expected {expected}", Span(1, 1), file=path)


def _unknown_column(name: str, base: str, idx: tuple[int, ...], columns: Mapping[str, Any]) -> str:
    """The message for a header name the model does not have."""
    family = [k for k in columns if k.startswith(base + "[")]
    if not idx and family:
        return f"unknown column '{name}': '{base}' is an array; name its elements, e.g. {family[0]}"
    if idx and base in columns:
        return f"unknown column '{name}': '{base}' is a scalar; name it {base}"
    if family:
        return (f"unknown column '{name}': {base} has no such element "
                f"(its elements run from {family[0]} to {family[-1]})")
    return f"unknown column '{name}'{did_you_mean(name, columns)}"


def _header_name(cell: str, col: int, columns: Mapping[str, Any], latent: Collection[str]) -> str:
    """The canonical name of one header cell, else a message (prefixed by '!') saying why not."""
    if (parsed := parse_ground_name(cell)) is None:
        hint = '; quote a name with a comma: "s[0,1]"' if "[" in cell and "]" not in cell else ""
        return f"!column name '{_show(cell)}' is not a variable name (e.g. x, v[3], s[0,1]){hint}"
    name = format_ground_name(*parsed)
    if name in latent:
        return (f"!column '{name}' is the latent variable {name}, which is never observed; "
                "remove the column")
    return name if name in columns else "!" + _unknown_column(name, *parsed, columns)


def join_bracketed(cells: list[str]) -> list[str]:
    """Rejoin header cells that an unquoted `s[0,1]` split at its commas."""
    out: list[str] = []
    for cell in cells:
        if out and out[-1].count("[") > out[-1].count("]"):
            out[-1] += "," + cell
        else:
            out.append(cell)
    return out


def is_samples_header(cells: list[str], columns: Mapping[str, Any]) -> bool:
    """Whether a header is a samples CSV's (`chain,draw,...`) rather than the model's columns."""
    return [c.strip() for c in cells[:2]] == ["chain", "draw"] \
        and "chain" not in columns and "draw" not in columns


def _parse_header(cells: list[str], line: int, columns: Mapping[str, Any],
                  latent: Collection[str], required: Collection[str] | None, path: str,
                  ) -> list[str]:
    """Canonical names of the header cells, checked against the model's columns."""
    seen: dict[str, int] = {}
    for col, cell in enumerate(cells, start=1):
        name = _header_name(cell, col, columns, latent)
        if name in seen:
            name = f"!column '{name}' appears twice (columns {seen[name]} and {col})"
        if name.startswith("!"):
            raise UserError(name[1:], Span(line, col), file=path)
        seen[name] = col
    if missing := [n for n in required or () if n not in seen]:
        shown = ", ".join(f"'{n}'" for n in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise UserError(f"missing column {shown}" if len(missing) == 1 else
                        f"missing columns {shown}{more} ({len(missing)} missing in total)",
                        Span(line, 1), file=path)
    return list(seen)


def _parse_cells(rows: list[list[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values with NaN for empty or bad cells, empty mask, not-a-number mask)."""
    blob = "".join(map("".join, rows))  # without these, numpy's parsing is as strict as _NUM_RE
    if blob.isascii() and not any(ch in blob for ch in "_nN"):
        with contextlib.suppress(ValueError):
            vals = np.array([[x or "nan" for x in r] for r in rows], dtype=np.float64)
            if not np.isinf(vals).any():
                return vals, np.isnan(vals), np.zeros(vals.shape, dtype=bool)
    s = np.char.strip(np.array(rows, dtype=str))
    empty = s == ""
    vals, bad = np.full(s.shape, np.nan), ~empty
    for (r, c), text in np.ndenumerate(s):
        if bad[r, c] and _NUM_RE.fullmatch(str(text)) and math.isfinite(v := float(text)):
            vals[r, c], bad[r, c] = v, False
    return vals, empty, bad


def _snap_domains(vals: np.ndarray, domains: list[np.ndarray | None]) -> np.ndarray:
    """Snap values to their finite domain (tolerance 1e-9); return the out-of-domain mask."""
    groups: dict[bytes, tuple[np.ndarray, list[int]]] = {}  # columns with equal domains
    for j, d in enumerate(domains):
        if d is not None:
            groups.setdefault(np.asarray(d, np.float64).tobytes(), (d, []))[1].append(j)
    outside = np.zeros(vals.shape, dtype=bool)
    for dom, cols in groups.values():
        x = vals[:, cols]
        hi = np.clip(np.searchsorted(dom, x), 0, len(dom) - 1)
        lo = np.maximum(hi - 1, 0)
        near = np.where(np.abs(dom[lo] - x) <= np.abs(dom[hi] - x), dom[lo], dom[hi])
        ok = np.abs(near - x) <= 1e-9 * np.maximum(1.0, np.abs(x))
        vals[:, cols] = np.where(ok, near, x)
        outside[:, cols] = ~ok & ~np.isnan(x)
    return outside


def _convert(table: tuple[str, list[str], list[np.ndarray | None], bool], rows: list[list[str]],
             lines: list[int], first_row: int) -> np.ndarray:
    """Parse and check a block of data rows (`first_row` is the data-row number of rows[0])."""
    path, header, domains, allow_missing = table
    if not rows:
        return np.empty((0, len(header)))
    vals, empty, bad_number = _parse_cells(rows)
    bad = bad_number | _snap_domains(vals, domains) | (empty & (not allow_missing))
    if not bad.any():
        return vals
    r, c = (int(i) for i in np.argwhere(bad)[0])  # the first bad cell in file order
    text, col, row = rows[r][c].strip(), f"column '{header[c]}'", f"(row {first_row + r})"
    if not text:
        msg = f"missing value in {col} {row}"
    elif not bad_number[r, c]:
        msg = f"value {text} in {col} is not in the domain {_fmt_domain(domains[c])} {row}"
    elif text.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        msg = f"'{text}' in {col} is not a number {row}; leave a missing value empty"
    else:
        msg = f"'{_show(text)}' in {col} is not a number" + (
            " (too large)" if _NUM_RE.fullmatch(text) else "") + f" {row}"
    raise UserError(msg, Span(lines[r], c + 1), file=path)


def read_data_csv(path: PathLike, columns: Mapping[str, np.ndarray | None], *,
                  required: Collection[str] | None = None, allow_missing: bool = True,
                  what: str = "data", latent: Collection[str] | None = None,
                  samples: bool = False) -> tuple[list[str], np.ndarray]:
    """Read a data CSV: (canonical header names, float64 rows x columns, NaN where empty).

    With `samples`, a samples CSV (`sample -o`: a header starting `chain,draw`) is data too:
    its chain, draw and latent columns are read like any other (with no domain) and kept in
    the header, for the caller to drop."""
    rows = _csv_rows(p := os.fspath(path), what, "a header row of variable names")
    first = next(rows)
    cells = join_bracketed(first[1])
    if samples and is_samples_header(cells, columns):
        columns = {**columns, **dict.fromkeys(("chain", "draw", *(latent or ())))}
        latent = ()
    header = _parse_header(cells, first[0], columns, latent or (), required, p)
    table = (p, header, [columns[n] for n in header], allow_missing)
    blocks, pending, lines = [], [], []  # type: list[np.ndarray], list[list[str]], list[int]
    for n, (line, row) in enumerate(rows, start=1):
        if len(row) != len(header):
            _convert(table, pending, lines, n - len(pending))  # report earlier errors first
            col = len(header) + 1 if len(row) > len(header) else max(len(row), 1)
            raise UserError(f"row {n} has {len(row)} fields, the header has {len(header)}",
                            Span(line, col), file=p)
        pending.append(row)
        lines.append(line)
        if len(pending) * len(header) >= _BLOCK_CELLS:
            blocks.append(_convert(table, pending, lines, n + 1 - len(pending)))
            pending, lines = [], []
    if not blocks and not pending:
        raise UserError(f"the {what} file has a header but no rows", Span(first[0], 1), file=p)
    blocks.append(_convert(table, pending, lines, sum(len(b) for b in blocks) + 1))
    return header, np.concatenate(blocks)


def _format_block(block: np.ndarray, ints: np.ndarray) -> bytes:
    """CSV text of a block of rows: integers for `ints` columns, shortest repr elsewhere."""
    (r, c), x = block.shape, block[:, ints]
    ok = np.isfinite(x) & (np.abs(x) < 2.0**62)
    a = np.rint(np.where(ok, x, 0.0)).astype(np.int64)
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    if hi - lo <= a.size // 2:  # look the strings up: much faster than numpy's int-to-str cast
        istr = np.array([str(v).encode() for v in range(lo, hi + 1)])[a - lo]
    else:
        istr = a.astype("S20")
    if not ok.all():
        istr = np.where(ok, istr, x.astype("S32"))
    w = max(istr.itemsize, 1 if ints.all() else 32)  # shortest repr of a float64: <= 24 bytes
    cells = np.empty((r, c), dtype=f"S{w}")
    cells[:, ~ints] = block[:, ~ints].astype("S32")
    cells[:, ints] = istr
    cells[np.isnan(block)] = b""
    raw = np.zeros((r, c, w + 1), dtype=np.uint8)
    raw[:, :, :w] = cells.view(np.uint8).reshape(r, c, w)
    raw[:, :, w] = ord(",")
    raw[:, -1, w] = ord("\n")
    flat = raw.reshape(-1)
    return bytes(flat[flat != 0].tobytes())


def write_samples_csv(path: PathLike, header: list[str], data: np.ndarray,
                      int_columns: np.ndarray | None = None) -> None:
    """Atomically write `header` and `data` rows as CSV; NaN becomes an empty cell."""
    data = np.asarray(data, dtype=np.float64)
    if not header or data.ndim != 2 or data.shape[1] != len(header):
        raise InternalError(f"write_samples_csv: data {data.shape} for {len(header)} columns")
    ints = np.zeros(len(header), bool) if int_columns is None else np.asarray(int_columns, bool)
    head = io.StringIO()
    csv.writer(head, lineterminator="\n").writerow(header)
    step = max(1, _BLOCK_CELLS // len(header))
    with _atomic(path, binary=True) as f:
        f.write(head.getvalue().encode("utf-8"))
        for start in range(0, data.shape[0], step):
            f.write(_format_block(data[start:start + step], ints))


def key_span(path: str, key: str) -> Span | None:
    """Where `"key":` first appears in a params file from its `"params":` key on, if anywhere."""
    try:
        text = _read_text(path, "params")
    except UserError:
        return None
    m = re.search(r'"params"\s*:', text)
    m = re.compile(re.escape(json.dumps(key)) + r"\s*:").search(text, m.start() if m else 0)
    i = m.start() if m else -1
    return Span(text.count("\n", 0, i) + 1, i - text.rfind("\n", 0, i)) if m else None


def _bad_value(value: object) -> str | None:
    """Why `value` is not a number or nested list of numbers; None when it is."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            return f"contains {_show(json.dumps(v))}, which is not a number"
        elif not math.isfinite(v):
            return "contains NaN or an infinity; parameters must be finite numbers"
    return None


def read_params_json(path: PathLike) -> dict[str, object]:
    """The "params" mapping of a parameter file: name -> number or nested list of numbers."""
    text = _read_text(p := os.fspath(path), "params")
    try:
        doc = json.loads(text, parse_constant=float)  # NaN, Infinity, 1e999: rejected below
    except json.JSONDecodeError as e:
        raise UserError(f"invalid JSON: {e.msg}", Span(e.lineno, e.colno), file=p) from None
    except (ValueError, RecursionError) as e:
        raise UserError(f"invalid JSON: {e}", Span(1, 1), file=p) from None
    if not isinstance(doc, dict) or not isinstance(params := doc.get("params"), dict):
        raise UserError('expected a JSON object with a "params" key mapping names to values',
                        key_span(p, "params") or Span(1, 1), file=p)
    for name, value in params.items():
        if (problem := _bad_value(value)) is not None:
            raise UserError(f"param '{name}' {problem}", key_span(p, name), file=p)
    return params


def coerce_param(name: str, value: object, shape: tuple[int, ...],
                 path: PathLike | None = None) -> np.ndarray:
    """`value` (from read_params_json) as a float64 array, checked to have `shape`."""
    file = os.fspath(path) if path is not None else None
    where, span = (f" in {file}", key_span(file, name)) if file is not None else ("", None)
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError):
        raise UserError(f"param '{name}'{where} is not a rectangular array of numbers", span,
                        file=file) from None
    want = tuple(int(d) for d in shape)
    if arr.shape != want:
        got = "is a scalar" if arr.shape == () else f"has shape {arr.shape}"
        declared = "a scalar" if want == () else str(want)
        raise UserError(f"param '{name}'{where} {got}, the model declares {declared}", span,
                        file=file)
    return arr


def write_params_json(path: PathLike, params: Mapping[str, np.ndarray | float],
                      meta: Mapping[str, object]) -> None:
    """Atomically write `{"params": {name: nested lists}, **meta}` with indent=1."""
    p = os.fspath(path)
    assert "params" not in meta, "meta must not have a 'params' key"
    out: dict[str, object] = {}
    for name, value in params.items():
        arr = np.asarray(value, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise UserError(f"cannot write {p}: param '{name}' has NaN or infinite values", file=p)
        out[name] = arr.tolist()
    text = json.dumps({"params": out, **meta}, indent=1, allow_nan=False,
                      default=lambda o: o.tolist())  # numpy values in meta
    with atomic_write(p) as f:
        f.write(text + "\n")

"""Set files: CSV rows of integer tuples, read for `set NAME = load("FILE.csv")`."""

from __future__ import annotations

import io
import os

import numpy as np

from ebmlang.io.csvio import _INT_RE, _NUM_RE, PathLike, _csv_rows, _read_text, _show
from ebmlang.errors import Span, UserError


def _field_col(text: str, line: int, field: int) -> int:
    """1-based character column of field `field` (1-based) on `line` of CSV `text`: where the
    field's first non-blank character is (its opening quote, if quoted)."""
    raw = io.StringIO(text, newline="").readlines()[line - 1]
    starts, quoted = [0], False
    for i, ch in enumerate(raw):
        quoted ^= ch == '"'
        if ch == "," and not quoted:
            starts.append(i + 1)
    start = starts[min(field, len(starts)) - 1]
    return start + len(raw[start:]) - len(raw[start:].lstrip(" \t")) + 1


def read_set_csv(path: PathLike, arity_hint: int | None = None) -> np.ndarray:
    """Read a set file of integer tuples (optional header of non-numbers): int64 (rows, arity)."""
    text = _read_text(p := os.fspath(path), "set")
    rows = _csv_rows(p, "set", "rows of integers", text)
    head_line, head = next(rows)
    arity, source = arity_hint, f"the set has arity {arity_hint}"
    has_header = all(c.strip() and _NUM_RE.fullmatch(c.strip()) is None for c in head)
    if has_header and arity is None:
        arity, source = len(head), f"the header has {len(head)}"
    elif has_header and len(head) != arity:
        raise UserError(f"the header has {len(head)} columns, {source}", Span(head_line, 1), file=p)
    out: list[int] = []
    for n, (line, row) in enumerate(rows if has_header else [(head_line, head), *rows], start=1):
        if arity is None:
            arity, source = len(row), f"row 1 has {len(row)}"
        if len(row) != arity:
            col = arity + 1 if len(row) > arity else max(len(row), 1)
            raise UserError(f"row {n} has {len(row)} fields, {source}",
                            Span(line, _field_col(text, line, col)), file=p)
        for c, cell in enumerate(row, start=1):
            if _INT_RE.fullmatch(s := cell.strip()) is None or not -(2**63) <= int(s) < 2**63:
                why = "out of range" if _INT_RE.fullmatch(s) else "not an integer"
                shown = f"'{_show(s)}'" if s else "an empty cell"
                raise UserError(f"{shown} is {why} (row {n})",
                                Span(line, _field_col(text, line, c)), file=p)
            out.append(int(s))
    return np.array(out, dtype=np.int64).reshape(-1, arity or 0)

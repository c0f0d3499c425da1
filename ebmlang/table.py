"""Tables of numbers for the Python API (`Samples.summary()`): a pandas DataFrame when pandas
is installed, else a small `Table` that prints aligned and shows as HTML in a notebook, with
the same `table[column][row]` reading."""

from __future__ import annotations

import html
import math


def make_table(rows: list[tuple[float, ...]], columns, index, pandas: bool | None = None):
    """A DataFrame of `rows` (one tuple per index label) when pandas is importable (or
    `pandas` is True), else a `Table`; `pandas=False` forces the plain table."""
    if pandas is not False:
        try:
            import pandas as pd
        except ImportError:
            if pandas:
                raise
        else:
            return pd.DataFrame(list(rows), columns=list(columns), index=list(index))
    return Table(list(columns), list(index), [tuple(r) for r in rows])


def _cell(v) -> str:
    if isinstance(v, float):
        return "NaN" if math.isnan(v) else f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    return str(v)


class Table:
    """Rows of numbers with named columns and labelled rows: `t["r_hat"]["energy"]`,
    `t.loc("energy")`, `t.to_dict()`; prints as an aligned text table."""

    def __init__(self, columns: list[str], index: list[str], rows: list[tuple]):
        self.columns, self.index, self.rows = columns, index, rows

    def __getitem__(self, column: str) -> dict:
        k = self.columns.index(column)
        return {name: row[k] for name, row in zip(self.index, self.rows)}

    def loc(self, label: str) -> dict:
        """One row as {column: value}."""
        return dict(zip(self.columns, self.rows[self.index.index(label)]))

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.columns)

    def to_dict(self) -> dict[str, dict]:
        """{column: {row label: value}}, as pandas' DataFrame.to_dict()."""
        return {c: self[c] for c in self.columns}

    def __repr__(self) -> str:
        cells = [[""] + self.columns] + [[n] + [_cell(v) for v in r]
                                          for n, r in zip(self.index, self.rows)]
        widths = [max(len(row[k]) for row in cells) for k in range(len(cells[0]))]
        return "\n".join("  ".join(c.ljust(w) if k == 0 else c.rjust(w)
                                   for k, (c, w) in enumerate(zip(row, widths))).rstrip()
                         for row in cells)

    def _repr_html_(self) -> str:
        return html_table(self.columns, [(n, [_cell(v) for v in r])
                                         for n, r in zip(self.index, self.rows)])


def html_table(columns, rows, caption: str | None = None) -> str:
    """An HTML table: a header of `columns`, then (row label, [cells]) rows; text escaped."""
    esc = html.escape
    head = "".join(f"<th>{esc(str(c))}</th>" for c in columns)
    body = "".join(f"<tr><th>{esc(str(n))}</th>" + "".join(f"<td>{esc(str(c))}</td>" for c in cells)
                   + "</tr>" for n, cells in rows)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>"

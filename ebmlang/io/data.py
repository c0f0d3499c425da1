"""Training and scoring data: a CSV path, a dict of arrays or a pandas DataFrame, turned into
state rows (rows, n_state) with NaN where a value is missing (and for every latent)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ebmlang.io.csvio import parse_ground_name, format_ground_name, read_data_csv
from ebmlang.errors import UserError


@dataclass
class Data:
    x: np.ndarray            # (rows, n_state): values, NaN where missing or latent
    source: str
    note: str | None = None  # one line for the user about how the file was read

    @property
    def rows(self) -> int:
        return self.x.shape[0]

    def observed(self) -> np.ndarray:
        return ~np.isnan(self.x)


def _columns(model):
    """Ground name -> (state id, domain values or None) for var and input families."""
    out, latent = {}, set()
    for f in model.vars.values():
        for r, row in enumerate(f.space.tuples):
            name = format_ground_name(f.name, tuple(int(v) for v in row))
            if f.kind == "latent":
                latent.add(name)
            else:
                out[name] = (f.offset + r, f.domain.values)
    return out, latent


def load_data(model, data, what: str = "data") -> Data:
    """Rows of states from a CSV path, a dict {family: array} or a DataFrame."""
    if isinstance(data, Data):
        return data
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):  # a pandas DataFrame
        header = [str(c) for c in data.columns]
        return _from_table(model, header, data.to_numpy(dtype=float), "DataFrame")
    if isinstance(data, dict):
        return _from_dict(model, data)
    return _from_csv(model, str(data), what)


def load_evidence(model, path: str) -> Data:
    """An --input file: every input column (always given), and optionally var columns whose
    non-empty cells are clamped (imputation: the empty ones are sampled)."""
    return _from_csv(model, path, "input", required=model.ground_names(("input",)))


def _from_csv(model, path: str, what: str, required=None) -> Data:
    cols, latent = _columns(model)
    if required is None:
        required = list(cols)
    header, table = read_data_csv(path, {n: d for n, (_, d) in cols.items()},
                                  required=required, latent=latent, what=what,
                                  samples=what == "data")
    x = np.full((table.shape[0], model.checked.n_state), np.nan)
    for c, name in enumerate(header):
        if name in cols:
            x[:, cols[name][0]] = table[:, c]
    _check_inputs(model, x, path)
    return Data(x, path, _samples_note(path, [n for n in header if n not in cols]))


def _samples_note(path: str, ignored: list[str]) -> str | None:
    """The line that says a samples CSV was read as data, and which columns it ignored."""
    if not ignored:
        return None
    latent = len(ignored) - 2
    also = f" and its {latent:,} latent column{'s' * (latent != 1)}" if latent else ""
    return (f"{path}: a samples CSV: each row is one example; its chain and draw "
            f"columns{also} are ignored")


def _from_table(model, header: list[str], table: np.ndarray, source: str) -> Data:
    cols, latent = _columns(model)
    x = np.full((table.shape[0], model.checked.n_state), np.nan)
    seen = set()
    for c, raw in enumerate(header):
        parsed = parse_ground_name(raw)
        name = format_ground_name(*parsed) if parsed else raw
        if name in latent:
            raise UserError(f"{source}: column '{name}' is latent, never observed")
        if name not in cols:
            raise UserError(f"{source}: unknown column '{raw}'")
        seen.add(name)
        _check_domain(table[:, c], cols[name][1], name, source)
        x[:, cols[name][0]] = table[:, c]
    missing = [n for n in cols if n not in seen]
    if missing:
        raise UserError(f"{source}: missing column{'s' * (len(missing) > 1)} "
                        f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    _check_inputs(model, x, source)
    return Data(x, source)


def _from_dict(model, data: dict) -> Data:
    header, blocks = [], []
    rows = None
    for f in model.vars.values():
        if f.kind == "latent":
            if f.name in data:
                raise UserError(f"data: '{f.name}' is latent, never observed")
            continue
        if f.name not in data:
            raise UserError(f"data: missing '{f.name}'")
        arr = np.asarray(data[f.name], dtype=float)
        shape = f.space.shape if f.space.dense else (f.space.size,)
        if arr.shape[1:] != shape:
            raise UserError(f"data: '{f.name}' has shape {arr.shape}; expected (rows, "
                            f"{', '.join(map(str, shape))})" if shape else
                            f"data: '{f.name}' has shape {arr.shape}; expected (rows,)")
        if rows is not None and arr.shape[0] != rows:
            raise UserError("data: every family needs the same number of rows")
        rows = arr.shape[0]
        blocks.append(arr.reshape(rows, -1))
        header += [format_ground_name(f.name, tuple(int(v) for v in t)) for t in f.space.tuples]
    unknown = [k for k in data if k not in model.vars]
    if unknown:
        raise UserError(f"data: unknown variable '{unknown[0]}'")
    return _from_table(model, header, np.concatenate(blocks, axis=1), "data")


def _check_domain(col: np.ndarray, values, name: str, source: str) -> None:
    if values is None:
        return
    present = col[~np.isnan(col)]
    bad = ~np.isin(present, values)
    if np.any(bad):
        row = int(np.flatnonzero(~np.isnan(col))[np.argmax(bad)]) + 1
        raise UserError(f"{source}: value {present[bad][0]:g} in column '{name}' (row {row}) "
                        "is not in its domain")


def _check_inputs(model, x: np.ndarray, source: str) -> None:
    ids = model.state_ids(("input",))
    if len(ids) and np.isnan(x[:, ids]).any():
        r, c = np.argwhere(np.isnan(x[:, ids]))[0]
        name = model.ground_names(("input",))[c]
        raise UserError(f"{source}: input '{name}' is missing in row {r + 1}; inputs are always "
                        "given")

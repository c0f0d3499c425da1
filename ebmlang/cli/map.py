"""`ebmlang map`: the most probable state given the inputs and any clamped cells.

    ebmlang map MODEL [--input X.csv] [--input-png [NAME=]FILE.png] [--params P.json]
                [--method auto|graphcut|icm|anneal] [--seed S] [--sweeps N] [--chains C]
                [-o OUT.csv | -o [NAME=]OUT.png]

The --input file gives every input column and, optionally, var columns: given cells are
clamped, empty ones optimized. Without -o, a small result is printed as the MAP CSV (the
method on stderr, so stdout stays CSV); a large one as a summary: the method and why, the log
potential per row, and a picture of each small 2-D binary family.
"""

from __future__ import annotations

import sys

import numpy as np

from ebmlang.errors import UserError, count as counted
from ebmlang.cli.outputs import add_force

PRINT_COLUMNS = 64         # print the CSV itself up to this many columns and rows, else a
PRINT_ROWS = 50            # summary
PICTURE_WIDTH = 80         # draw 2-D binary families up to this wide in the summary


def cmd_map(args) -> int:
    from ebmlang.cli.app import _claim, _load, load_params
    from ebmlang.infer.map import map_estimate
    if args.output is not None:
        png = _png_target(args.output)
        _claim(args, [(png[1], "picture") if png is not None else (args.output, "map")])
    model = _load(args)
    if args.params is not None:
        load_params(model, args.params)
    rows = _evidence(model, args)
    result = map_estimate(model, data=rows, method=args.method, seed=args.seed,
                          sweeps=args.sweeps, chains=args.chains)
    how = f"{model.name}: MAP by {result.describe()}"
    if args.output is not None and _png_target(args.output) is not None:
        _write_png(model, result, args.output)
        print(how)
        print(f"wrote {_png_target(args.output)[1]} (log potential {result.log_potential[0]:.6g})")
    elif args.output is not None:
        result.to_csv(args.output)
        print(how)
        _print_evidence(result)
        print(f"wrote {args.output} ({counted(len(result.states), 'row')}, "
              f"{counted(len(result.names), 'variable')})")
    elif len(result.names) < PRINT_COLUMNS and len(result.states) <= PRINT_ROWS:
        sys.stderr.write(how + "\n")
        _print_csv(result)
    else:
        print(how)
        _print_evidence(result)
        print(summary(result))
    return 0


def _print_evidence(result) -> None:
    for line in result.evidence:
        print(f"  {line}")


def _print_csv(result) -> None:
    print(",".join(_quote(n) for n in result.names + ["log_potential"]))
    for vals, lp in zip(result.values, result.log_potential):
        print(",".join([f"{v:.10g}" for v in vals] + [repr(float(lp))]))


def _quote(name: str) -> str:
    return f'"{name}"' if "," in name else name


def summary(result) -> str:
    """The log potential per row, and the first row's 2-D binary families as pictures."""
    lines = [f"row {r + 1}: log potential {lp:.6g}" for r, lp in
             enumerate(result.log_potential[:20])]
    if len(result.log_potential) > 20:
        lines.append(f"... ({len(result.log_potential):,} rows; -o OUT.csv writes them all)")
    for f in _binary_2d(result.model, kinds=("var", "latent")):
        if f.space.shape[1] <= PICTURE_WIDTH:
            img = result[f.name][0]
            lines.append(f"{f.name} (# = {f.domain.values[1]:g}, . = {f.domain.values[0]:g}):")
            lines += ["  " + "".join("#" if v == f.domain.values[1] else "." for v in row)
                      for row in img]
    return "\n".join(lines)


# ---------------------------------------------------------------- evidence: CSV and PNG

def _evidence(model, args) -> np.ndarray | None:
    """(rows, n_state) of given values, NaN where free, or None when nothing is given."""
    from ebmlang.io.data import load_evidence
    rows = load_evidence(model, args.input).x if args.input is not None else None
    for spec in args.input_png:
        rows = _add_png(model, rows, spec)
    return rows


def _split_spec(spec: str) -> tuple[str | None, str]:
    """`[NAME=]FILE` -> (NAME or None, FILE)."""
    name, sep, path = spec.partition("=")
    return (name, path) if sep and name.isidentifier() else (None, spec)


def _png_target(spec: str) -> tuple[str | None, str] | None:
    """(family name or None, path) when `spec` names a PNG file, `[NAME=]FILE.png`."""
    return _split_spec(spec) if spec.lower().endswith(".png") else None


def _binary_2d(model, kinds):
    return [f for f in model.vars.values() if f.kind in kinds and f.space.ndim == 2
            and f.space.dense and f.domain.finite and f.domain.size == 2]


def _family(model, name, kinds, what):
    """The 2-D binary family a PNG stands for: `name`, or the only one of `kinds`."""
    fams = _binary_2d(model, kinds)
    if name is not None:
        match = [f for f in fams if f.name == name]
        if not match:
            raise UserError(f"{what}: '{name}' is not a 2-D binary family of the model "
                            f"(those are: {', '.join(f.name for f in fams) or 'none'})")
        return match[0]
    if len(fams) != 1:
        listed = ", ".join(f.name for f in fams) or "none"
        raise UserError(f"{what} needs one 2-D binary family ({listed} here): "
                        "name it, NAME=FILE.png")
    return fams[0]


def _add_png(model, rows, spec: str) -> np.ndarray:
    from ebmlang.io.images import grey_to_binary, read_png
    name, path = _split_spec(spec)
    kinds = ("input",) if name is None and _binary_2d(model, ("input",)) else ("input", "var")
    f = _family(model, name, kinds, "--input-png")
    grey, alpha = read_png(path)
    if grey.shape != f.space.shape:
        raise UserError(f"the image is {grey.shape[1]} x {grey.shape[0]} pixels (width x "
                        f"height), but {f.name} is {f.space.shape[1]} x {f.space.shape[0]}: "
                        "set the model's size consts to match (--set NAME=VALUE)", file=path)
    vals = grey_to_binary(grey, alpha, f.domain.values).reshape(-1)
    if f.kind == "input" and np.isnan(vals).any():
        raise UserError(f"the image has transparent pixels, but {f.name} is an input, always "
                        "given", file=path)
    if rows is None:
        rows = np.full((1, model.checked.n_state), np.nan)
    rows[:, f.offset:f.offset + f.space.size] = vals
    return rows


def _write_png(model, result, spec: str) -> None:
    from ebmlang.io.images import binary_to_grey, write_png
    name, path = _png_target(spec)
    f = _family(model, name, ("var", "latent"), "-o FILE.png")
    if len(result.states) != 1:
        raise UserError(f"-o FILE.png writes one image, and there are {len(result.states)} "
                        "rows: write a CSV instead")
    write_png(path, binary_to_grey(result[f.name][0], f.domain.values))


# ---------------------------------------------------------------- parser

def add_parsers(sub, common, count) -> None:
    """The `map` subcommand."""
    from ebmlang.infer.map import ANNEAL_SWEEPS, METHODS
    p = sub.add_parser("map", help="the most probable state (graph cuts, ICM or annealing)")
    common(p)
    p.add_argument("--input", metavar="X.csv", help="inputs, and var columns to clamp (empty "
                   "cells are optimized); one MAP per row")
    p.add_argument("--input-png", action="append", default=[], metavar="[NAME=]FILE.png",
                   help="a 2-D binary family from a PNG (grey >= 128: the higher value; "
                   "transparent: missing); default NAME: the only 2-D binary input")
    p.add_argument("--params", metavar="P.json", help="parameter values (from ebmlang fit)")
    p.add_argument("--method", choices=METHODS, default="auto",
                   help="auto (default): graphcut when exact, else anneal")
    p.add_argument("--seed", type=count(0), default=None, metavar="S", help="random seed")
    p.add_argument("--sweeps", type=count(1), default=None, metavar="N",
                   help=f"annealing sweeps (default {ANNEAL_SWEEPS}); for icm, at most N")
    p.add_argument("--chains", type=count(1), default=4, metavar="C",
                   help="restarts of icm and anneal, the best kept (default 4)")
    p.add_argument("-o", "--output", metavar="OUT.csv",
                   help="write the MAP CSV, or [NAME=]OUT.png: a 2-D binary family as an image")
    add_force(p)


COMMANDS = {"map": cmd_map}

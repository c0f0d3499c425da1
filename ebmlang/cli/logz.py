"""`ebmlang logz`: the partition function, exact where it can be, else an AIS estimate with its
standard error."""

from __future__ import annotations

import numpy as np

from ebmlang.errors import UserError


def cmd_logz(args) -> int:
    from ebmlang.cli.app import _load, load_params
    from ebmlang.infer.logz import logz
    model = _load(args)
    if args.params is not None:
        load_params(model, args.params)
    inputs = _read_one_input(model, args.input) if args.input is not None else None
    res = logz(model, method=args.method, inputs=inputs, seed=args.seed, chains=args.chains,
               steps=args.steps, schedule=args.schedule,
               progress=False if args.no_progress else None, jobs=model.ray_jobs(args.ray))
    from ebmlang.cli.rayflag import note_if_unused
    note_if_unused(args, res.method, ("ais",))
    print(format_value(res))
    print(f"method: {res.method}, {res.detail}")
    print(f"because: {res.why}" if res.why != "requested" else "because: --method " + res.method)
    return 0


def format_value(res) -> str:
    """`log Z = VALUE`, with `+- SE` after an estimate."""
    if res.se is None:
        return f"log Z = {res.value:.12g}"
    return f"log Z = {res.value:.6f} +- {res.se:.2g}"


def _read_one_input(model, path: str) -> np.ndarray:
    """The input columns of a one-row CSV, in state order: log Z depends on the inputs."""
    from ebmlang.cli.app import _input_domains
    from ebmlang.io.csvio import read_data_csv
    names = model.ground_names(("input",))
    if not names:
        raise UserError("the model has no input variables; --input is not needed", file=path)
    header, rows = read_data_csv(path, _input_domains(model), required=names,
                                 allow_missing=False, what="input")
    if rows.shape[0] != 1:
        raise UserError(f"the input file has {rows.shape[0]} rows; log Z depends on the inputs, "
                        "so give exactly one row", file=path)
    pos = {n: k for k, n in enumerate(header)}
    return rows[:, [pos[n] for n in names]]


def add_parsers(sub, common, count) -> None:
    """The `logz` subcommand."""
    from ebmlang.infer.logz import METHODS, SCHEDULES
    p = sub.add_parser("logz", help="the log partition function: exact, by variable "
                       "elimination, or estimated by annealed importance sampling")
    common(p)
    p.add_argument("--params", metavar="P.json", help="parameter values (from ebmlang fit)")
    p.add_argument("--method", choices=METHODS, default="auto",
                   help="exact (enumeration), ve (variable elimination), ais (annealed "
                   "importance sampling) or auto (default: the cheapest exact one that fits)")
    p.add_argument("--input", metavar="X.csv", help="one row of input values (conditional models)")
    p.add_argument("--seed", type=count(0), default=None, metavar="S", help="random seed (ais)")
    p.add_argument("--chains", type=count(1), default=100, metavar="C",
                   help="independent AIS runs (default 100)")
    p.add_argument("--steps", type=count(1), default=1000, metavar="T",
                   help="AIS temperatures, one Gibbs sweep each (default 1000)")
    p.add_argument("--schedule", choices=SCHEDULES, default="sigmoid",
                   help="AIS inverse-temperature schedule (default sigmoid)")
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    from ebmlang.cli.rayflag import add_ray_argument
    add_ray_argument(p)


COMMANDS = {"logz": cmd_logz}

"""`ebmlang fit ... --grid KEY=V1,V2 --seeds N [--valid FILE] [--ray [ADDRESS]]`: fit sweeps.

Every setting of the grid is fitted once per seed (here in turn, or as Ray tasks), each fit's
params go to a file of its own with the setting in its name, and a table of the final metric
per setting (mean and spread over the seeds, best marked) is printed and written as CSV next
to the params. A single fit with `--ray` runs as one Ray task (a fit is sequential).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from ebmlang.errors import UserError, count as counted


def add_sweep_arguments(p) -> None:
    """The sweep flags of `fit`."""
    from ebmlang.cli.rayflag import add_ray_argument
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="sweep: fit every combination of these values (repeatable); KEY is a "
                   "fit option (lr, epochs, batch-size, chains, k, method, ...) or a const of "
                   "the model (const.NAME where a fit option has its name)")
    p.add_argument("--seeds", type=_seeds, default=1, metavar="N",
                   help="sweep: fit each setting N times, seeds spawned from --seed (default 1)")
    p.add_argument("--valid", metavar="FILE.csv", help="held-out data: the sweep's table "
                   "ranks the settings by the metric on it")
    add_ray_argument(p)
    p.set_defaults(fit_parser=p)


def _seeds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def wanted(args) -> bool:
    """Whether `fit` runs through here: a sweep, held-out data, or Ray."""
    return bool(args.grid) or args.seeds > 1 or args.valid is not None or args.ray is not None


def parse_grid(args, consts) -> dict:
    """--grid texts -> {key: [(value, text), ...]}, each value checked as its flag would be
    (fit options) or as --set checks it (consts)."""
    from ebmlang.learn.sweep import kind_of
    actions = {a.dest: a for a in args.fit_parser._actions}
    given = {t.partition("=")[0].strip() for t in args.set}
    grid = {}
    for text in args.grid:
        key, sep, values = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--grid expects KEY=V1,V2,..., got '{text}'")
        if key in grid:
            raise UserError(f"--grid {key}: given twice; list every value in one --grid")
        items = [v.strip() for v in values.split(",")]
        if not values.strip() or any(not v for v in items):
            raise UserError(f"--grid {key}: empty value in '{text}' (expected KEY=V1,V2,...)")
        kind, name = kind_of(key, consts)
        if kind == "const" and name in given:
            raise UserError(f"--grid {key}: the const is also given by --set {name}=...; "
                            "give it in one place")
        grid[key] = [(_convert(kind, name, key, v, actions), v) for v in items]
    return grid


def _convert(kind: str, name: str, key: str, text: str, actions):
    """A grid value, parsed as the fit flag `name` parses it, or as a const override."""
    if kind == "const":
        from ebmlang.frontend.check import parse_override
        try:
            return parse_override(f"{name}={text}")[1]
        except UserError as err:
            raise UserError(err.message.replace(f"--set {name}:", f"--grid {key}:", 1)) from None
    action = actions[name]
    try:
        value = action.type(text) if action.type is not None else text
    except (argparse.ArgumentTypeError, ValueError) as exc:
        raise UserError(f"--grid {key}: {exc}") from None
    if action.choices is not None and value not in action.choices:
        raise UserError(f"--grid {key}: '{text}' is not one of {', '.join(action.choices)}")
    return value


def outputs(args, model, plan, seeds: int) -> tuple[dict, str | None]:
    """({(setting, seed index): params path}, table CSV path or None). -o DIR (default
    MODEL_sweep), or -o PATTERN with {setting} and {seed}; one fit: -o P.json as fit does."""
    out = args.output
    jobs = [(s, k) for s in plan for k in range(seeds)]
    if len(jobs) == 1 and (out is None or out.endswith(".json")) and "{" not in (out or ""):
        return {jobs[0]: out or f"{model.name}.json"}, None
    if out is not None and out.endswith(".json") and "{setting}" not in out \
            and "{seed}" not in out:
        raise UserError(f"-o {out} names one file, but the sweep writes "
                        f"{counted(len(jobs), 'params file')}: give a directory, or a pattern "
                        "with {setting} and {seed} (e.g. -o runs/fit-{setting}-{seed}.json)")
    if out is not None and ("{setting}" in out or "{seed}" in out):
        for part, n, what in (("{setting}", len(plan), "settings"), ("{seed}", seeds, "seeds")):
            if n > 1 and part not in out:
                raise UserError(f"-o {out}: the sweep has {n} {what}, so the pattern needs "
                                f"{part} in it")
        paths = {(s, k): out.replace("{setting}", s.file_part).replace("{seed}", f"seed{k}")
                 for s, k in jobs}
        folder = os.path.dirname(out)
    else:
        folder = out or f"{model.name}_sweep"
        paths = {(s, k): os.path.join(folder, f"{model.name}_{s.file_part}_seed{k}.json")
                 for s, k in jobs}
    return paths, os.path.join(folder, f"{model.name}_sweep.csv")


def cmd_sweep(args) -> int:
    from ebmlang.cli.app import _claim, _load
    from ebmlang.learn.sweep import fit_keys, settings
    if args.plot is not None:
        raise UserError("--plot draws one fit's learning curve: not with --grid, --seeds, "
                        "--valid or --ray")
    model = _load(args)
    consts = list(model.checked.consts)
    grid = parse_grid(args, consts)
    plan = settings(grid, consts)
    paths, table = outputs(args, model, plan, args.seeds)
    _claim(args, [(p, "params") for p in paths.values()] + [(table, "sweep")])
    params = _initial(model, args.params)
    base = {k: getattr(args, k) for k in fit_keys() if hasattr(args, k)}
    where = "here" if args.ray is None else "on Ray" + (
        f" at {args.ray}" if isinstance(args.ray, str) and args.ray else "")
    if len(paths) == 1 and args.ray is not None:
        print("note: a single fit is sequential: --ray runs it as one Ray task (sweeps, "
              "--grid and --seeds, run their fits in parallel)", flush=True)
    print(f"{model.name}: {counted(len(plan), 'setting')} x {counted(args.seeds, 'seed')} = "
          f"{counted(len(paths), 'fit')}, {where}", flush=True)
    start = time.perf_counter()
    result = model.fit_grid(args.data, grid, seeds=args.seeds, seed=args.seed, valid=args.valid,
                            ray=args.ray, params=params, progress=_progress(args, list(paths)),
                            **base)
    _write(model, result, paths, args.seeds, args.seed)
    if len(paths) > 1:
        print(result.table())
    elif result.rows[0].mean is not None:
        print(f"final {result.metric} {result.rows[0].mean:.5g}")
    for line in result.notes:
        print(f"note: {line}")
    best = result.best
    if best is not None and len(plan) > 1:
        print(f"best: {best.setting.label} ({result.metric} {best.mean:.5g} over "
              f"{counted(len(best.values) - best.diverged, 'seed')})")
    if table is not None:
        from ebmlang.io.csvio import atomic_write
        os.makedirs(os.path.dirname(table) or ".", exist_ok=True)
        with atomic_write(table) as fh:
            fh.write(result.csv_text())
    folder = os.path.dirname(next(iter(paths.values()))) or "."
    print(f"wrote {counted(len(paths), 'params file')}" +
          (f" in {folder}" if len(paths) > 1 else f": {next(iter(paths.values()))}") +
          (f" and {table}" if table else "") + f" ({time.perf_counter() - start:.1f} s)")
    return 0 if any(o.diverged is None for _, _, o in result.fits) else 1


def _progress(args, jobs: list):
    """A line per finished fit of a local sweep (none with --quiet, or for one fit); `jobs`:
    the (setting, seed index) of each fit, in the order they run."""
    if args.quiet or len(jobs) == 1:
        return None

    def line(done, n, o):
        shown = f"{o.metric} {o.value:.5g}" if o.value is not None else "no metric"
        if o.valid is not None:
            shown += f", valid {o.valid_metric} {o.valid:.5g}"
        s, k = jobs[done - 1]
        print(f"fit {done}/{n}: {s.label} seed {k}: {shown}" +
              (" (diverged)" if o.diverged else ""), flush=True)
    return line


def _initial(model, path):
    """The --params file's values, checked against the model (None without one)."""
    if path is None:
        return None
    from ebmlang.cli.app import load_params
    load_params(model, path)
    return model.params.to_dict()


def _write(model, result, paths, seeds: int, seed) -> None:
    """Every fit's params file, atomically; diverged fits hold their last good params."""
    from ebmlang.io.csvio import write_params_json
    from ebmlang.learn.sweep import seed_meta
    for s, k, o in result.fits:
        path = paths[s, k]
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        meta = {"model": model.name, "method": o.method,
                "sweep": {"setting": dict(s.texts), "seed": seed_meta(seed, k, seeds)},
                "history": o.history}
        write_params_json(path, o.params, meta)
        if o.diverged is not None:
            sys.stderr.write(f"{s.label} seed {k}: {o.diverged}; wrote the last good params "
                             f"to {path}\n")

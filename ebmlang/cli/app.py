"""The `ebmlang` command line: one subcommand per task, user errors as FILE:LINE:COL messages.

Exit status: 0 success, 1 a user error (bad model, data file or flag), 2 an internal bug,
130 interrupted. A user never sees a Python traceback unless ebmlang itself is at fault.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import traceback
from typing import Callable

import numpy as np

from ebmlang.errors import UserError, did_you_mean
from ebmlang.cli.outputs import add_force
from ebmlang.report.plots import parse_shape

_PAUSE = os.environ.get("EBMLANG_TEST_IMPORT_PAUSE")
if _PAUSE:      # tests only: hold the start-up imports so that a test can Ctrl-C them
    sys.stderr.write("paused in the start-up imports\n")
    sys.stderr.flush()
    time.sleep(float(_PAUSE))


class ArgumentParser(argparse.ArgumentParser):
    """argparse with usage errors as exit status 1, like every other user error."""

    def error(self, message: str):
        sys.stderr.write(f"ebmlang: error: {message}\n")
        usage = self.format_usage()
        if usage.count("\n") == 1:
            sys.stderr.write(usage)
        sys.stderr.write(f"(run '{self.prog} --help' for usage)\n")
        self.exit(1)


def _count(lo: int) -> Callable[[str], int]:
    """An argparse type: an integer >= lo."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'") from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"must be an integer >= {lo}, got {value}")
        return value
    parse.__name__ = f"integer >= {lo}"
    return parse


# ---------------------------------------------------------------- handlers

def _load(args):
    import ebmlang
    from ebmlang.frontend.check import parse_override
    consts = dict(parse_override(text) for text in args.set)
    evidence = getattr(args, "evidence", None)
    try:
        model = ebmlang.load(args.model, evidence=evidence, **consts) if evidence \
            else ebmlang.load(args.model, **consts)
    except UserError as err:
        if str(args.model).lower().endswith(".csv"):
            err.with_notes(f"{args.model} is a CSV file; the model file (.ebm) comes first, "
                           f"then the data: ebmlang {args.command} MODEL.ebm ...")
        raise
    args.source = model.checked.source  # for later errors that point into the model
    return model


def cmd_check(args) -> int:
    from ebmlang.backends.choice import TEMPERED_TEXT, sample_text
    from ebmlang.backends.fused import fit_text
    from ebmlang.infer.proper import check_initial
    from ebmlang.report.text import check_report
    model = _load(args)
    check_initial(model)
    print(check_report(model))
    from ebmlang.infer.hmc import with_default_hmc
    print(sample_text(with_default_hmc(model)))
    print(TEMPERED_TEXT)
    print(fit_text(model))
    return 0


def cmd_code(args) -> int:
    """The numpy terms, then where each block part runs, the numba kernels, the table kernels
    the tabulated parts run and the compiled log-potential (tempering's swaps)."""
    from ebmlang.backends.numba_backend import table_kernels_text
    from ebmlang.backends.numba_energy import energy_text
    from ebmlang.backends.numba_codegen import placement_text
    model = _load(args)
    if args.backend in (None, "numpy"):
        print(model.code(), end="")
    if args.backend in (None, "numba"):
        where = "".join(f"# {line}\n" for line in placement_text(model).splitlines())
        print(f"\n\n# {'-' * 70} numba backend\n{where}{model.code('numba')}", end="")
        print(table_kernels_text(model), end="")
        print(energy_text(model), end="")
    return 0


def cmd_graph(args) -> int:
    from ebmlang.io.dot import to_dot, write_graph
    if args.output is not None:
        _claim(args, [(args.output, "picture" if args.output.lower().endswith(".png")
                       else "graph")])
    model = _load(args)
    if args.output is None:
        print(to_dot(model), end="")
    else:
        write_graph(model, args.output)
        print(f"wrote {args.output}")
    return 0


def cmd_conditionals(args) -> int:
    model = _load(args)
    try:
        from ebmlang.middle.symbolic import conditionals
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.symbolic":
            raise
        raise UserError("'ebmlang conditionals' is not available in this build "
                        "(ebmlang.middle.symbolic is missing)") from None
    conds = conditionals(model)
    print("\n\n".join((c.latex if args.latex else c.text).rstrip("\n") for c in conds.values()))
    return 0


def cmd_sample(args) -> int:
    """Sample; the summary and the convergence diagnostics are printed whatever -o says
    (--quiet silences them), the files written are named."""
    from ebmlang.errors import count
    from ebmlang.report.text import sample_summary
    _claim(args, [(args.output, "samples"), (args.plot, "picture")])
    model = _load(args)
    if args.plot is not None:
        from ebmlang.report.plots import image_families
        image_families(model, args.plot_shape)  # a --plot-shape that fits nothing: say it now
    if args.params is not None:
        load_params(model, args.params)
    samples, trace = _run_sample(model, args)
    if trace is not None:
        trace.finish(samples.acceptance, samples.gradient)
    if not args.quiet:
        print(sample_summary(trace, burn_in=args.burn_in, thin=args.thin,
                             tempered=samples.ladder is not None))
        if samples.ladder is not None:
            from ebmlang.report.text import tempering_summary
            print(tempering_summary(samples))
    if args.plot is not None:
        from ebmlang.report.plots import plot_samples
        plot_samples(trace, args.plot, args.plot_shape)
        print(f"wrote {args.plot}")
    if args.output is not None:
        print(f"wrote {args.output} ({count(samples.chains, 'chain')} x "
              f"{count(samples.draws, 'draw')}, {count(len(samples.ids), 'variable')})")
    return 0


def _run_sample(model, args):
    """(Samples without kept draws, the Trace of the summary and plot or None): the CSV is
    written as the draws come, and only what the summary needs is accumulated."""
    from ebmlang.infer.sample import csv_writer
    from ebmlang.infer.trace import Trace
    inputs, clamp = read_inputs(model, args.input, args.chains) if args.input is not None \
        else (None, None)
    with contextlib.ExitStack() as stack:
        watch = []
        if args.output is not None:
            watch.append(stack.enter_context(csv_writer(model, args.output, args.chains)).add)
        trace = None
        if not args.quiet or args.plot is not None:
            trace = Trace(model, args.chains, args.draws, model.state_ids())
            watch.append(trace.add)
        samples = model.sample(draws=args.draws, chains=args.chains, burn_in=args.burn_in,
                               thin=args.thin, seed=args.seed, inputs=inputs, clamp=clamp,
                               progress=False if args.no_progress else None,
                               backend=args.backend, keep=False, watch=watch,
                               tempering=args.tempering, tempering_min=args.tempering_min,
                               ray=args.ray)
    return samples, trace


def _claim(args, outputs) -> None:
    """Refuse, before any work, outputs that would clobber another file (outputs.claim), and
    a --plot that cannot be drawn."""
    from ebmlang.cli.outputs import claim
    claim([(path, kind) for path, kind in outputs if path is not None], args.force)
    if getattr(args, "plot", None) is not None:
        from ebmlang.report.plots import require
        require()


def load_params(model, path: str) -> None:
    """Assign every param in a params JSON file; unknown names are an error."""
    from ebmlang.io.csvio import key_span, coerce_param, read_params_json
    values = read_params_json(path)
    for name, value in values.items():
        if name not in model.params:
            raise UserError(f"unknown param '{name}'{did_you_mean(name, model.params.keys())}; "
                            f"the model's params are: {', '.join(model.params.keys()) or 'none'}",
                            key_span(path, name), file=path)
        shape = model.checked.params[name].space.shape
        model.params[name] = coerce_param(name, value, shape, path)


def read_inputs(model, path: str, chains: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(input values (rows, input variables) or None, clamped values (rows, n_state) with NaN
    where free, or None) from an --input CSV: inputs are required, var columns optional."""
    from ebmlang.io.data import load_evidence
    rows = load_evidence(model, path).x
    if rows.shape[0] not in (1, chains):
        raise UserError(f"the input file has {rows.shape[0]} rows: give one row (shared by every "
                        f"chain) or one per chain (--chains {chains})", file=path)
    input_ids = model.state_ids(("input",))
    inputs = rows[:, input_ids] if len(input_ids) else None
    clamp = rows.copy()
    clamp[:, input_ids] = np.nan
    given = ~np.isnan(clamp).all()
    if inputs is None and not given:
        raise UserError("the input file gives no values: name input variables, or variables "
                        "to clamp", file=path)
    return inputs, (clamp if given else None)


def _input_domains(model) -> dict[str, np.ndarray | None]:
    from ebmlang.io.csvio import format_ground_name
    out = {}
    for f in model.vars.values():
        if f.kind == "input":
            for row in f.space.tuples:
                out[format_ground_name(f.name, tuple(int(v) for v in row))] = f.domain.values
    return out


# ---------------------------------------------------------------- parser

COMMANDS: dict[str, Callable] = {
    "check": cmd_check,
    "conditionals": cmd_conditionals,
    "graph": cmd_graph,
    "code": cmd_code,
    "sample": cmd_sample,
}


# Each task module adds its subcommands: add_parsers(sub, common, count) and COMMANDS.
EXTENSIONS = ("fit", "map", "logz", "marginals")


def _extensions():
    import importlib
    return [importlib.import_module(f"ebmlang.cli.{name}") for name in EXTENSIONS]


for _module in _extensions():
    COMMANDS.update(_module.COMMANDS)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="the model file (.ebm, or a UAI network .uai)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override a const (repeatable)")
    p.add_argument("--evidence", metavar="X.uai.evid",
                   help="evidence for a UAI model (default: the .evid file beside it)")


def build_parser() -> ArgumentParser:
    from ebmlang import __version__
    parser = ArgumentParser(prog="ebmlang", description="Energy-based models: check, inspect, "
                            "sample, fit and score.")
    parser.add_argument("--version", action="version", version=f"ebmlang {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True
    p = sub.add_parser("check", help="parse, check and summarize a model")
    _common(p)
    p = sub.add_parser("conditionals", help="each family's full conditional, derived symbolically")
    _common(p)
    p.add_argument("--latex", action="store_true", help="print LaTeX instead of text")
    p = sub.add_parser("graph", help="the factor graph as Graphviz DOT (or .svg/.png)")
    _common(p)
    p.add_argument("-o", "--output", metavar="FILE", help="FILE.dot, FILE.svg or FILE.png")
    add_force(p)
    p = sub.add_parser("code", help="the generated sampler source")
    _common(p)
    p.add_argument("--backend", choices=("numba", "numpy"), default=None,
                   help="show one backend's source only (default both)")
    _sample_parser(sub)
    for module in _extensions():
        module.add_parsers(sub, _common, _count)
    return parser


def _sample_parser(sub) -> None:
    from ebmlang.cli.rayflag import add_ray_argument
    p = sub.add_parser("sample", help="draw samples with blocked Gibbs sweeps")
    _common(p)
    p.add_argument("-n", "--draws", type=_count(1), default=1000, metavar="DRAWS",
                   help="kept draws per chain (default 1000)")
    p.add_argument("--chains", type=_count(1), default=4, metavar="C", help="chains (default 4)")
    p.add_argument("--burn-in", type=_count(0), default=None, metavar="B",
                   help="sweeps discarded first (default DRAWS // 2)")
    p.add_argument("--thin", type=_count(1), default=1, metavar="T",
                   help="keep every T-th sweep (default 1)")
    p.add_argument("--params", metavar="P.json", help="parameter values (from ebmlang fit)")
    p.add_argument("--input", metavar="X.csv", help="values of the model's input variables")
    p.add_argument("--seed", type=_count(0), default=None, metavar="S", help="random seed")
    add_ray_argument(p)
    p.add_argument("--tempering", type=_count(1), default=1, metavar="R",
                   help="parallel tempering with R replicas per chain (default 1: none)")
    p.add_argument("--tempering-min", type=float, default=None, metavar="B",
                   help="the hottest replica's inverse temperature, in (0, 1) (default 0.1)")
    p.add_argument("-o", "--output", metavar="OUT.csv", help="write the draws as CSV")
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    p.add_argument("--backend", choices=("auto", "numba", "numpy"), default="auto",
                   help="auto (default): matrix products where the terms are contractions, "
                   "compiled kernels for the other parts, as 'ebmlang check' says; numba: "
                   "compiled kernels wherever they compile; numpy: the reference")
    p.add_argument("--plot", metavar="FILE.png", help="the last draws of 2-D families and "
                   "traces of the stats and the energy (needs matplotlib)")
    p.add_argument("--plot-shape", type=parse_shape, default=None, metavar="ROWSxCOLS",
                   help="also draw each 1-D family of ROWS*COLS elements as images (8x8: "
                   "the digits RBM's visible units as digits)")
    p.add_argument("--quiet", action="store_true",
                   help="no summary or convergence diagnostics, only the files written")
    add_force(p)


# ---------------------------------------------------------------- entry point

def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = argparse.Namespace(source=None)
    try:
        try:
            build_parser().parse_args(argv, namespace=args)
        except SystemExit as exc:  # --help, --version, usage errors
            return exc.code if isinstance(exc.code, int) else 1
        return COMMANDS[args.command](args)
    except UserError as err:
        if args.source is not None and err.span is not None and err.span.line > 0:
            err.with_source(args.source)  # a later phase's error pointing into the model
        sys.stderr.write(err.render() + "\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("ebmlang: interrupted\n")
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except Exception as exc:  # noqa: BLE001 - an internal bug, reported as such
        sys.stderr.write(f"ebmlang: internal error: {type(exc).__name__}: {exc}\n")
        traceback.print_exc()
        sys.stderr.write("This is a bug in ebmlang, not in your model: please report it, with "
                         "the model file and this command line.\n")
        return 2


def _quiet_stdout() -> None:
    """After a closed pipe (`ebmlang code | head`), stop Python complaining at exit."""
    import os
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass

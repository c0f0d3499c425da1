"""`ebmlang fit` and `ebmlang score`: the learning half of the command line."""

from __future__ import annotations

import sys

import numpy as np

from ebmlang.errors import UserError, count as counted
from ebmlang.cli.outputs import add_force
from ebmlang.learn.options import METHODS


BATCHLESS = ("exact", "sm", "nce")     # run to convergence by L-BFGS: iterations, not epochs


def _line(entry: dict, opts) -> str:
    """One line per epoch: a bar, the metric, the moment gaps PCD drives to zero, the time."""
    done = entry["epoch"]
    total = opts.epochs
    width = 16
    filled = min(width, round(width * done / total)) if opts.method not in BATCHLESS else width
    bar = "#" * filled + "." * (width - filled)
    parts = [f"epoch {done}/{total}" if opts.method not in BATCHLESS else f"iteration {done}",
             f"|{bar}|"]
    if entry.get("metric"):
        parts.append(f"{entry['metric']} {entry['value']:.4g}")
    if entry.get("gaps"):
        parts.append("gap " + " ".join(f"{k} {v:.2g}" for k, v in entry["gaps"].items()))
    for name, s in entry.get("stats", {}).items():
        parts.append(f"{name} {s['data']:.3g}/{s['model']:.3g}")
    move = entry.get("gradient_move")
    if move:
        parts.append(f"{move['kind']} accept {move['acceptance']:.2f} step {move['step']:.3g}")
    if "seconds" in entry:
        parts.append(f"{entry['seconds']:.2f} s")
    return "  ".join(parts)


def _move_warning(history) -> str | None:
    """A warning when the chains' HMC / MALA move accepted little over its last STUCK_WINDOW
    moves (the last epochs that hold them), or some persistent chain accepted none of them
    (stuck, as a chain in the tail of a stiff density whose every trajectory diverges): the
    model side of the gradient is then stale."""
    from ebmlang.infer.hmc import LOW_ACCEPT, STUCK_WINDOW
    moves = [e["gradient_move"] for e in history if e.get("gradient_move")]
    if not moves:
        return None
    recent, n, accepted = [], 0, 0.0
    for m in reversed(moves):
        recent.append(m)
        n, accepted = n + m["moves"], accepted + m["acceptance"] * m["moves"]
        if n >= STUCK_WINDOW:
            break
    rate, last = accepted / n if n else float("nan"), moves[-1]
    stuck = last.get("unmoved") or 0
    if not (rate < LOW_ACCEPT or stuck):
        return None
    what = (f"{stuck} chains accepted none of the last {STUCK_WINDOW} {last['kind']} moves"
            if stuck else f"the chains' {last['kind']} move accepted {rate:.2f} of its "
            f"proposals over the last {n} moves")
    divergent = sum(m["divergent"] for m in recent)
    return (f"warning: {what} ({divergent} divergent): the model side of the gradient is "
            "stale and the fitted params may be off; try a smaller --lr, or sampler mh for "
            "the family")


def _data(model, path):
    """Read the data file, printing its note (a samples CSV read as data) on stderr."""
    from ebmlang.io.data import load_data
    data = load_data(model, path)
    if data.note is not None:
        print(f"note: {data.note}", file=sys.stderr, flush=True)
    return data


def _header(model, opts) -> str:
    fams = ", ".join(f"{f.space.size:,} {f.name} ({f.domain.text}{', ' + f.kind if f.kind != 'var' else ''})"
                     for f in model.vars.values())
    n = model.checked.n_theta
    how = "L-BFGS" if opts.method in BATCHLESS else f"{opts.optimizer} lr {opts.lr_shown}"
    chains = f", {counted(opts.chains, 'chain')}" if opts.method == "pcd" else ""
    if opts.method == "pcd" and opts.sampler == "langevin":
        chains = (f", langevin: buffer of {counted(opts.chains, 'chain')}, "
                  f"{opts.langevin_steps} steps per minibatch")
    if opts.method == "pcd" and opts.tempering > 1:
        chains += f" x {opts.tempering} tempering replicas"
    return f"{model.name}: {fams}; {counted(n, 'param')}; {opts.method}{chains}, {how}" + \
        _moves_text(model, opts)


def _moves_text(model, opts) -> str:
    """What moves the real families of fit's chains by gradient, if any: `; x by MH then
    HMC (10 leapfrog), the step adapted at every move`."""
    from ebmlang.infer.hmc import default_hmc, gradient_families, with_default_hmc
    if opts.method not in ("pcd", "cd") or opts.sampler != "gibbs":
        return ""
    fams = gradient_families(with_default_hmc(model) if opts.tempering == 1 else model)
    if not fams:
        return ""
    by_default = set(default_hmc(model)) if opts.tempering == 1 else set()
    text = ", ".join(f"{f} by {'MH then ' if f in by_default else ''}"
                     f"{m.upper() + (f' ({s} leapfrog)' if m == 'hmc' else '')}"
                     for f, (m, s) in sorted(fams.items()))
    return f"; {text}, the step adapted at every move"


def cmd_fit(args) -> int:
    from ebmlang.cli.app import _claim, _load, load_params
    from ebmlang.io.csvio import write_params_json
    from ebmlang.learn.fit import Diverged, FitOptions
    from ebmlang.learn.optim import DEFAULT_LR
    from ebmlang.cli.sweep import cmd_sweep, wanted
    if wanted(args):   # --grid, --seeds, --valid, --ray
        return cmd_sweep(args)
    _claim(args, [(args.output, "params"), (args.plot, "picture")])  # before any work
    model = _load(args)
    out = args.output or f"{model.name}.json"
    if args.output is None:  # the default name is the model's
        _claim(args, [(out, "params"), (args.plot, "picture")])
    if args.params is not None:
        load_params(model, args.params)
    opts = dict(method=args.method, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                chains=args.chains, k=args.k, optimizer=args.optimizer, momentum=args.momentum,
                weight_decay=args.weight_decay, noise=args.noise, schedule=args.schedule,
                seed=args.seed,
                backend=args.backend, tempering=args.tempering, tempering_min=args.tempering_min,
                sampler=args.sampler, langevin_steps=args.langevin_steps,
                step_size=args.step_size, noise_ratio=args.noise_ratio)
    shown = FitOptions(**opts)
    shown.lr_shown = args.lr if args.lr is not None else DEFAULT_LR.get(args.optimizer)
    print(_header(model, shown), flush=True)
    quiet = args.quiet
    opts["progress"] = None if quiet else (lambda e, o: print(_line(e, o), flush=True))
    data = _data(model, args.data)
    try:
        result = model.fit(data, **opts)
    except Diverged as err:
        write_params_json(out, model.params.to_dict(), err.result.to_meta(model))
        sys.stderr.write(err.render() + f"\nwrote the last good params to {out}\n")
        return 1
    write_params_json(out, model.params.to_dict(), result.to_meta(model))
    print(f"wrote {out}")
    warning = _move_warning(result.history)
    if warning is not None:
        print(warning, file=sys.stderr)
    if args.plot is not None:
        from ebmlang.report.plots import plot_fit
        plot_fit(result.history, args.plot)
        print(f"wrote {args.plot}")
    return 0


def cmd_score(args) -> int:
    from ebmlang.cli.app import _claim, _load, load_params
    from ebmlang.io.csvio import atomic_write
    from ebmlang.infer.score import score
    _claim(args, [(args.output, "scores")])
    model = _load(args)
    if args.params is not None:
        load_params(model, args.params)
    res = score(model, _data(model, args.data))
    columns = [("score", res["score"])] + ([("logp", res["logp"])] if res["logp"] is not None else [])
    if args.output is None:
        _print_scores(columns)
        return 0
    with atomic_write(args.output) as fh:
        fh.write(",".join(n for n, _ in columns) + "\n")
        for row in zip(*(v for _, v in columns)):
            fh.write(",".join(repr(float(v)) for v in row) + "\n")
    print(f"wrote {args.output} ({counted(len(res['score']), 'row')})")
    return 0


def _print_scores(columns) -> None:
    print(",".join(n for n, _ in columns))
    for row in zip(*(v for _, v in columns)):
        print(",".join(f"{float(v):.6g}" for v in row))


def add_parsers(sub, common, count) -> None:
    """The `fit`, `convert` and `score` subcommands."""
    _fit_parser(sub, common, count)
    p = sub.add_parser("convert", help="between .ebm and the UAI format (.uai)",
                       description="Convert a UAI network (MODEL.uai, conditioned on MODEL.uai.evid "
                       "or --evidence) to readable .ebm text, or a finite ground .ebm model to "
                       ".uai. OUT.ebm comes with its set files OUT.S0.csv, ... and its tables "
                       "as OUT.params.json.")
    common(p)
    p.add_argument("-o", "--output", metavar="OUT", required=True,
                   help="OUT.uai (from an .ebm model) or OUT.ebm (from a .uai network)")
    add_force(p)
    p = sub.add_parser("score", help="log p(x) up to log Z for each data row")
    common(p)
    p.add_argument("data", metavar="DATA.csv", help="the rows to score")
    p.add_argument("--params", metavar="P.json",
                   help="fitted params (default: the model's own, e.g. a UAI network's tables)")
    p.add_argument("-o", "--output", metavar="OUT.csv", help="write the scores as CSV")
    add_force(p)


def _fit_parser(sub, common, count) -> None:
    p = sub.add_parser("fit", help="fit the params to data (pcd, cd, pl or exact)")
    common(p)
    p.add_argument("data", metavar="DATA.csv", help="training data: one row per example")
    p.add_argument("-o", "--output", metavar="P.json", help="params file to write "
                   "(default MODELNAME.json)")
    p.add_argument("--method", choices=METHODS, default="pcd",
                   help="pcd: persistent contrastive divergence (default); cd: contrastive "
                   "divergence from the data; pl: pseudo-likelihood; exact: maximum likelihood "
                   "with exact expectations, by L-BFGS (small models); sm: score matching, real "
                   "variables, no Z, by L-BFGS; nce: noise-contrastive estimation against the "
                   "data's Gaussian, log Z learned, by L-BFGS")
    p.add_argument("--epochs", type=count(1), default=20, metavar="E",
                   help="passes over the data (default 20)")
    p.add_argument("--batch-size", type=count(1), default=10, metavar="B",
                   help="examples per gradient step (default 10)")
    p.add_argument("--lr", type=_positive, default=None, metavar="LR",
                   help="learning rate (default: adam 0.02, sgd 0.05)")
    p.add_argument("--chains", type=count(1), default=100, metavar="C",
                   help="persistent chains for pcd (default 100)")
    p.add_argument("--k", type=count(1), default=1, metavar="K",
                   help="Gibbs sweeps per update (default 1)")
    p.add_argument("--sampler", choices=("gibbs", "langevin"), default="gibbs",
                   help="pcd's model phase: gibbs sweeps (default), or short-run Langevin "
                        "chains from a replay buffer of --chains states (real variables)")
    p.add_argument("--langevin-steps", type=count(1), default=20, metavar="K",
                   help="--sampler langevin: Langevin steps per minibatch (default 20)")
    p.add_argument("--step-size", type=_positive, default=None, metavar="EPS",
                   help="--sampler langevin: the step eps (default 0.1 x the data's smallest sd)")
    p.add_argument("--noise-ratio", type=count(1), default=5, metavar="NU",
                   help="--method nce: noise rows per data row (default 5)")
    p.add_argument("--tempering", type=count(1), default=1, metavar="R",
                   help="pcd: R parallel-tempering replicas per chain (default 1: none)")
    p.add_argument("--tempering-min", type=float, default=None, metavar="B",
                   help="the hottest replica's inverse temperature, in (0, 1) (default 0.1)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam",
                   help="adam (default) or sgd with momentum")
    p.add_argument("--momentum", type=float, default=0.9, metavar="M",
                   help="momentum of sgd (default 0.9)")
    p.add_argument("--weight-decay", type=_nonnegative, default=0.0, metavar="L2",
                   help="L2 penalty on the params (default 0; for sm, 0.5 * L2 * |theta|^2 "
                   "added to J)")
    p.add_argument("--noise", type=_nonnegative, default=0.0, metavar="SIGMA",
                   help="sm: denoising score matching with N(0, SIGMA^2) noise, 10 noisy "
                   "copies per row (default 0: plain score matching)")
    p.add_argument("--schedule", choices=("linear", "constant"), default="linear",
                   help="learning rate schedule (default: linear decay to 0)")
    p.add_argument("--params", metavar="P.json", help="initial params (default: the model's)")
    p.add_argument("--backend", choices=("auto", "numba", "numpy"), default="auto",
                   help="auto: fused matrix products where every term is a contraction, "
                   "else compiled per block part unless einsum serves it; numpy: the reference")
    p.add_argument("--seed", type=count(0), default=0, metavar="S",
                   help="random seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no line per epoch")
    from ebmlang.cli.sweep import add_sweep_arguments
    add_sweep_arguments(p)
    p.add_argument("--plot", metavar="FILE.png", help="learning curve and moment gaps "
                   "(needs matplotlib)")
    add_force(p)


def _positive(text: str) -> float:
    return _number(text, lambda v: v > 0, "a positive number")


def _nonnegative(text: str) -> float:
    return _number(text, lambda v: v >= 0, "a number >= 0")


def _number(text, ok, what):
    import argparse
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'") from None
    if not np.isfinite(value) or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'")
    return value


def cmd_convert(args) -> int:
    from ebmlang.cli.app import _claim, _load
    from ebmlang.io.uai import ebm_outputs, write_ebm, write_uai
    target = args.output
    if not target.endswith((".uai", ".ebm")):
        raise UserError(f"convert writes .uai or .ebm, not '{target}'")
    model = _load(args)
    if target.endswith(".uai"):
        _claim(args, [(target, "uai")])
        write_uai(model, target)
        print(f"wrote {target}")
        return 0
    if getattr(model, "uai", None) is None:
        raise UserError("converting to .ebm needs a UAI model (.uai) as input")
    _claim(args, ebm_outputs(model, target))
    for path in write_ebm(model, target):
        print(f"wrote {path}")
    return 0


COMMANDS = {"fit": cmd_fit, "score": cmd_score, "convert": cmd_convert}

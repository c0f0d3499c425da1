"""`ebmlang marginals`: every ground variable's marginal distribution.

    ebmlang marginals MODEL [--method auto|exact|ve|bp|gibbs] [--evidence E.evid]
                      [--input X.csv] [--params P.json] [--schedule residual|parallel]
                      [-o OUT.csv | -o OUT.MAR]

The method and why go first; BP's non-convergence and unmixed Gibbs chains are warned about
whatever the flags. Without -o a short table is printed (the first variables, the rest
counted).
"""

from __future__ import annotations

from ebmlang.cli.outputs import add_force
from ebmlang.errors import UserError, count as counted


def cmd_marginals(args) -> int:
    from ebmlang.cli.app import _claim, _load, load_params
    if args.output is not None:
        _claim(args, [(args.output, "marginals")])
    model = _load(args)
    if args.params is not None:
        load_params(model, args.params)
    inputs, evidence = _inputs(model, args.input) if args.input is not None else (None, None)
    res = model.marginals(method=args.method, inputs=inputs, evidence=evidence, seed=args.seed,
                          sweeps=args.sweeps, chains=args.chains, damping=args.damping,
                          max_iter=args.max_iter, tol=args.tol, schedule=args.schedule,
                          ray=args.ray)
    from ebmlang.cli.rayflag import note_if_unused
    note_if_unused(args, res.method, ("gibbs",))
    print(f"{model.name}: marginals by {res.method}, {res.detail}")
    print(f"because: {res.why}" if res.why != "requested" else "because: --method " + res.method)
    if res.log_z is not None:
        print(f"log Z = {res.log_z:.12g}" + (" (Bethe estimate)" if res.method == "bp" else ""))
    for line in res.warnings:
        print(line)
    if args.output is not None:
        from ebmlang.io.marginals_out import write_marginals
        write_marginals(model, res, args.output)
        print(f"wrote {args.output} ({counted(len(res.names), 'variable')})")
    else:
        print(res.table())
    for name, mean in res.stats.items():
        print(f"mean of stat {name}: {_short(mean)}")
    if res.stats_note:
        print(res.stats_note)
    return 0


def _short(a) -> str:
    import numpy as np
    a = np.asarray(a, float)
    if a.size <= 8:
        return " ".join(f"{v:.6g}" for v in a.ravel())
    return " ".join(f"{v:.6g}" for v in a.ravel()[:8]) + f" ... ({a.size:,} values)"


def _inputs(model, path: str):
    """(input values (1, inputs) or None, clamped values (n_state,) with NaN where free, or
    None) from one --input row: input columns, and var columns to condition on."""
    import numpy as np
    from ebmlang.io.data import load_evidence
    rows = load_evidence(model, path).x
    if rows.shape[0] != 1:
        raise UserError(f"the input file has {rows.shape[0]} rows; marginals are computed for "
                        "one row of inputs and evidence: give exactly one", file=path)
    input_ids = model.state_ids(("input",))
    inputs = rows[:, input_ids] if len(input_ids) else None
    clamp = rows[0].copy()
    clamp[input_ids] = np.nan
    return inputs, (None if np.isnan(clamp).all() else clamp)


def add_parsers(sub, common, count) -> None:
    """The `marginals` subcommand."""
    from ebmlang.infer.marginals import METHODS
    p = sub.add_parser("marginals", help="every variable's marginal distribution: exact "
                       "(enumeration or a clique tree), loopy BP, or Gibbs")
    common(p)
    p.add_argument("--method", choices=METHODS, default="auto",
                   help="exact (enumeration), ve (a calibrated clique tree from the elimination "
                   "order), bp (loopy belief propagation), gibbs (sampling, with Monte Carlo "
                   "standard errors) or auto (default: the first exact one that fits, else bp)")
    p.add_argument("--input", metavar="X.csv", help="one row: the input values (conditional "
                   "models) and any var values to condition on")
    p.add_argument("--params", metavar="P.json", help="parameter values (from ebmlang fit)")
    p.add_argument("--seed", type=count(0), default=None, metavar="S", help="random seed (gibbs)")
    p.add_argument("--sweeps", type=count(4), default=1000, metavar="N",
                   help="kept Gibbs sweeps per chain (default 1000)")
    p.add_argument("--chains", type=count(1), default=4, metavar="C",
                   help="Gibbs chains (default 4)")
    p.add_argument("--damping", type=float, default=0.5, metavar="D",
                   help="BP message damping in [0, 1) (default 0.5)")
    p.add_argument("--schedule", choices=("residual", "parallel"), default="residual",
                   help="BP message schedule: residual (the largest change first) or "
                        "parallel (flooding; a fast kernel on binary pairwise graphs)")
    p.add_argument("--max-iter", type=count(1), default=1000, metavar="T",
                   help="BP iterations at most (default 1000)")
    p.add_argument("--tol", type=float, default=1e-6, metavar="EPS",
                   help="BP convergence tolerance on the messages (default 1e-6)")
    p.add_argument("-o", "--output", metavar="OUT.csv|OUT.MAR",
                   help="write one row per ground variable (CSV), or the UAI MAR format")
    add_force(p)
    from ebmlang.cli.rayflag import add_ray_argument
    add_ray_argument(p)


COMMANDS = {"marginals": cmd_marginals}

"""ebmlang's RBM against scikit-learn's BernoulliRBM on the binarized digits, side by side.

    python bench/rbm_digits.py [--reps 5] [--seeds 0 1 2] [--profile] [--quick]

Needs scikit-learn (and its dependency threadpoolctl), which ebmlang itself does not: this is a
comparison with what a user would otherwise use (see bench/README.md). The data is
examples/data/digits.csv: 1797 8x8 digits, pixels binarized at 8 of 16.

(a) Fit time. The RBM of examples/rbm.ebm (64 visible, 100 hidden) and BernoulliRBM with 100
    components, on all 1797 digits, learning rate 0.06, batch size 10, 20 epochs. BernoulliRBM
    is plain SGD on the mean gradient with PCD, one persistent fantasy particle per batch row;
    ebmlang runs its closest settings: pcd, sgd, momentum 0, constant schedule, 10 chains. Both
    start from W ~ normal(0, 0.01) and zero biases. Each of --reps repetitions fits both,
    interleaved so that background load hits both alike; we report median seconds per epoch and
    the ratio ebmlang / scikit-learn. ebmlang's model compile is timed apart, not in the fit.
    ebmlang's fit includes its per-epoch progress metric (a stochastic pseudo-log-likelihood,
    which it always computes); BernoulliRBM computes its own only when verbose.

(b) Quality at 16 hidden units. Train on the first 1500 digits, report the exact average
    log-likelihood of the last 297: log Z by enumerating the 2^16 hidden states with the
    visibles summed out, computed here with numpy, independently of ebmlang, from each fit's
    weights. For every ebmlang fit we check that ebmlang's `score(...)["logp"]` agrees, and for
    scikit-learn fits we load their weights into ebmlang's model and check the same. Rows:
    independent pixels (Bernoulli at the add-one-smoothed training means); BernoulliRBM at the
    settings of (a); its best cell over lr {0.01, 0.03, 0.06, 0.1} x epochs {20, 50, 100}
    (chosen on the test set itself, which flatters it); ebmlang's default fit (pcd, adam
    lr 0.02, linear decay, batch 10, 100 chains, 20 epochs) and variants. Each fit is repeated
    over --seeds; the table gives the mean and the range.

BLAS runs single-threaded (--blas-threads) for both libraries: the matrices are tiny, and on a
small shared machine multi-threaded OpenBLAS turns a 20 us product into milliseconds of
spinning whenever another process holds a core.

The report is Markdown on stdout; bench/RESULTS.md records the latest one.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

try:
    import sklearn
    from sklearn.neural_network import BernoulliRBM
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - a benchmark dependency, not ebmlang's
    sys.exit("bench/rbm_digits.py needs scikit-learn: pip install scikit-learn")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))      # this checkout's ebmlang, not whichever one is installed

import ebmlang  # noqa: E402
from ebmlang.infer.score import score  # noqa: E402

MODEL = ROOT / "examples" / "rbm.ebm"
DIGITS = ROOT / "examples" / "data" / "digits.csv"
N_TRAIN = 1500

# (a): scikit-learn's BernoulliRBM settings, and ebmlang's closest equivalent.
TIME_HIDDEN, TIME_LR, TIME_BATCH, TIME_EPOCHS = 100, 0.06, 10, 20
EBM_MATCHED = {"method": "pcd", "optimizer": "sgd", "momentum": 0.0, "lr": TIME_LR,
               "schedule": "constant", "batch_size": TIME_BATCH, "chains": TIME_BATCH,
               "epochs": TIME_EPOCHS}

# (b): quality at 16 hidden units.
QUALITY_HIDDEN = 16
SK_GRID_LR = (0.01, 0.03, 0.06, 0.1)
SK_GRID_EPOCHS = (20, 50, 100)
EBM_VARIANTS = [                   # label, fit keywords on top of ebmlang's defaults
    ("defaults (adam lr 0.02, 20 epochs)", {}),
    ("lr 0.01 (the default before this benchmark)", {"lr": 0.01}),
    ("epochs 50", {"epochs": 50}),
    ("epochs 100", {"epochs": 100}),
    ("lr 0.03", {"lr": 0.03}),
    ("lr 0.05", {"lr": 0.05}),
]
GOAL_MARGIN = 1.0                  # nats by which ebmlang's defaults should beat sklearn's best


# ------------------------------------------------------------------ data and models

def load_digits() -> np.ndarray:
    """(1797, 64) of 0/1 in file order."""
    return np.loadtxt(DIGITS, delimiter=",", skiprows=1)


def sklearn_fit(x: np.ndarray, hidden: int, lr: float, epochs: int, seed: int) -> BernoulliRBM:
    rbm = BernoulliRBM(n_components=hidden, learning_rate=lr, batch_size=TIME_BATCH,
                       n_iter=epochs, random_state=seed)
    return rbm.fit(x)


def sklearn_weights(rbm: BernoulliRBM):
    """(W (visible, hidden), b visible, c hidden) in ebmlang's orientation."""
    return rbm.components_.T, rbm.intercept_visible_, rbm.intercept_hidden_


def ebmlang_weights(model):
    return model.params["W"].copy(), model.params["b"].copy(), model.params["c"].copy()


def ebmlang_fit(x: np.ndarray, hidden: int, seed: int, **kwargs):
    model = ebmlang.load(MODEL, M=hidden)
    model.fit({"v": x}, seed=seed, **kwargs)
    return model


# ------------------------------------------------------------------ exact log-likelihood

def softplus(a: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, a)


def rbm_log_z(W: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """log Z of a binary RBM, enumerating the hidden states and summing the visibles out:
    Z = sum_h exp(c.h) prod_i (1 + exp(b_i + (W h)_i))."""
    m = W.shape[1]
    h = ((np.arange(2 ** m)[:, None] >> np.arange(m)) & 1).astype(float)
    terms = h @ c + softplus(h @ W.T + b).sum(axis=1)
    top = terms.max()
    return float(top + np.log(np.exp(terms - top).sum()))


def rbm_loglik(W: np.ndarray, b: np.ndarray, c: np.ndarray, v: np.ndarray) -> float:
    """Mean exact log p(v) over the rows of v: -free energy - log Z."""
    log_unnorm = v @ b + softplus(v @ W + c).sum(axis=1)
    return float(np.mean(log_unnorm) - rbm_log_z(W, b, c))


def independent_loglik(train: np.ndarray, test: np.ndarray) -> float:
    """Mean log-likelihood of test under independent Bernoulli pixels at the add-one-smoothed
    training means."""
    p = (train.sum(axis=0) + 1.0) / (len(train) + 2.0)
    return float(np.mean(test @ np.log(p) + (1.0 - test) @ np.log1p(-p)))


def ebmlang_logp(weights, test: np.ndarray) -> float:
    """ebmlang's own exact mean log p(v) for the given weights (the cross-check)."""
    model = ebmlang.load(MODEL, M=weights[0].shape[1])
    for name, value in zip("Wbc", weights):
        model.params[name] = value
    return float(np.mean(score(model, {"v": test})["logp"]))


# ------------------------------------------------------------------ (a) fit time

def timed(fn, *args, **kwargs) -> tuple[float, object]:
    """(wall seconds, result) of one call."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def time_fits(x: np.ndarray, reps: int) -> dict[str, list[float]]:
    """Seconds per epoch of each library (and ebmlang's compile, in seconds), interleaved."""
    out = {"sklearn": [], "ebmlang": [], "ebmlang defaults": [], "compile": []}
    for rep in range(reps):
        seconds, _ = timed(sklearn_fit, x, TIME_HIDDEN, TIME_LR, TIME_EPOCHS, rep)
        out["sklearn"].append(seconds / TIME_EPOCHS)
        seconds, model = timed(ebmlang.load, MODEL, M=TIME_HIDDEN)
        out["compile"].append(seconds)
        seconds, _ = timed(model.fit, {"v": x}, seed=rep, **EBM_MATCHED)
        out["ebmlang"].append(seconds / TIME_EPOCHS)
        model = ebmlang.load(MODEL, M=TIME_HIDDEN)
        seconds, _ = timed(model.fit, {"v": x}, seed=rep, epochs=TIME_EPOCHS)
        out["ebmlang defaults"].append(seconds / TIME_EPOCHS)
    return out


def profile_fit(x: np.ndarray, top: int = 18) -> str:
    """cProfile of one ebmlang fit at the settings of (a): the top functions by cumulative
    time, then by own time."""
    model = ebmlang.load(MODEL, M=TIME_HIDDEN)
    prof = cProfile.Profile()
    prof.enable()
    model.fit({"v": x}, seed=0, **EBM_MATCHED)
    prof.disable()
    sections = []
    for key, label, n in (("cumulative", "cumulative", top), ("tottime", "own", top // 2)):
        text = io.StringIO()
        pstats.Stats(prof, stream=text).strip_dirs().sort_stats(key).print_stats(n)
        lines = [ln for ln in text.getvalue().splitlines() if ln.strip()]
        keep = [ln for ln in lines if "function calls" not in ln
                and not ln.lstrip().startswith(("Ordered", "List"))]
        sections.append(f"by {label} time ({lines[0].strip()}):\n" + "\n".join(keep))
    return "\n\n".join(sections)


# ------------------------------------------------------------------ (b) quality

def sklearn_quality(train, test, seeds):
    """{(lr, epochs): [test LL per seed]} over the grid, plus the cross-check differences."""
    cells, diffs = {}, []
    for lr in SK_GRID_LR:
        for epochs in SK_GRID_EPOCHS:
            cells[(lr, epochs)] = []
            for seed in seeds:
                w = sklearn_weights(sklearn_fit(train, QUALITY_HIDDEN, lr, epochs, seed))
                cells[(lr, epochs)].append(rbm_loglik(*w, test))
                if (lr, epochs) == (TIME_LR, TIME_EPOCHS):
                    diffs.append(abs(ebmlang_logp(w, test) - cells[(lr, epochs)][-1]))
    return cells, diffs


def ebmlang_quality(train, test, seeds, variants):
    """{label: [test LL per seed]}, the cross-check differences and the fit seconds."""
    rows, diffs, seconds = {}, [], {}
    for label, kwargs in variants:
        rows[label], seconds[label] = [], []
        for seed in seeds:
            spent, model = timed(ebmlang_fit, train, QUALITY_HIDDEN, seed, **kwargs)
            seconds[label].append(spent)
            ll = rbm_loglik(*ebmlang_weights(model), test)
            rows[label].append(ll)
            diffs.append(abs(float(np.mean(score(model, {"v": test})["logp"])) - ll))
    return rows, diffs, seconds


# ------------------------------------------------------------------ report

def machine() -> list[str]:
    with open("/proc/cpuinfo") as fh:
        cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")),
                   platform.processor() or "unknown")
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    versions = (f"Python {platform.python_version()}, numpy {np.__version__}, scikit-learn "
                f"{sklearn.__version__}, ebmlang {ebmlang.__version__} ({git_revision()}; "
                f"imported from {Path(ebmlang.__file__).parent})")
    return [f"- CPUs (`nproc`): {os.cpu_count()}; CPU: {cpu}; load average at start: {load}",
            f"- {versions}", f"- {platform.platform()}"]


def git_revision() -> str:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                             check=False, capture_output=True, text=True, timeout=10)
        return f"git {out.stdout.strip()}" if out.returncode == 0 else "not a git checkout"
    except OSError:
        return "git unavailable"


def spread(values) -> str:
    v = np.asarray(values)
    return f"{v.mean():.2f}" + (f" [{v.min():.2f}, {v.max():.2f}]" if len(v) > 1 else "")


def time_table(t: dict) -> str:
    sk = np.median(t["sklearn"])
    rows = [("scikit-learn BernoulliRBM (sgd lr 0.06, batch 10, 10 fantasy particles)", sk),
            ("ebmlang, matched (pcd, sgd lr 0.06, momentum 0, constant, batch 10, 10 chains)",
             np.median(t["ebmlang"])),
            ("ebmlang, its defaults (pcd, adam lr 0.02, linear, batch 10, 100 chains)",
             np.median(t["ebmlang defaults"]))]
    out = ["| fit (64 visible, 100 hidden, 1797 digits) | s / epoch (median) | ratio to sklearn |",
           "|---|---:|---:|"]
    out += [f"| {name} | {s:.4f} | {s / sk:.1f} |" for name, s in rows]
    out.append(f"\nebmlang compile (`ebmlang.load`, M = 100), not included above: "
               f"{t['compile'][0]:.3f} s the first time in the process, then median "
               f"{np.median(t['compile'][1:] or t['compile']):.3f} s. "
               f"Repetitions: {len(t['sklearn'])}; "
               f"per-rep s/epoch: sklearn {', '.join(f'{v:.4f}' for v in t['sklearn'])}; "
               f"ebmlang matched {', '.join(f'{v:.4f}' for v in t['ebmlang'])}.")
    return "\n".join(out)


def quality_table(indep, sk_cells, ebm_rows, ebm_seconds, seeds) -> tuple[str, dict]:
    best = max(sk_cells, key=lambda k: np.mean(sk_cells[k]))
    lucky = max(v for vals in sk_cells.values() for v in vals)
    head = (f"| model (16 hidden; train 1500, test 297) | test LL, nats: mean [min, max] over "
            f"seeds {', '.join(map(str, seeds))} | vs sklearn best cell |")
    out = [head, "|---|---:|---:|"]
    ref = float(np.mean(sk_cells[best]))

    def row(name, vals):
        out.append(f"| {name} | {spread(vals)} | {np.mean(vals) - ref:+.2f} |")
    row("independent pixels (smoothed training means)", [indep])
    row(f"scikit-learn, lr {TIME_LR}, {TIME_EPOCHS} epochs (the settings of (a))",
        sk_cells[(TIME_LR, TIME_EPOCHS)])
    row(f"scikit-learn, best grid cell: lr {best[0]}, {best[1]} epochs", sk_cells[best])
    for label, vals in ebm_rows.items():
        row(f"ebmlang, {label} ({np.median(ebm_seconds[label]):.1f} s)", vals)
    out.append(f"\nBest single scikit-learn fit over the whole grid and every seed: {lucky:.2f}.")
    return "\n".join(out), {"ref": ref, "lucky": lucky, "best": best}


def grid_table(sk_cells) -> str:
    out = ["| scikit-learn lr \\ epochs | " + " | ".join(map(str, SK_GRID_EPOCHS)) + " |",
           "|---|" + "---:|" * len(SK_GRID_EPOCHS)]
    for lr in SK_GRID_LR:
        out.append(f"| {lr} | " + " | ".join(spread(sk_cells[(lr, e)]) for e in SK_GRID_EPOCHS)
                   + " |")
    return "\n".join(out)


def verdict(ebm_rows, ref: dict) -> str:
    """Is the goal met? Against scikit-learn's best grid cell (mean over seeds) and, stricter,
    against its luckiest single fit."""
    default = float(np.mean(next(iter(ebm_rows.values()))))
    lines = []
    for what, value in (("best grid cell, mean over seeds", ref["ref"]),
                        ("luckiest single fit", ref["lucky"])):
        goal = value + GOAL_MARGIN
        meets = [label for label, vals in ebm_rows.items() if np.mean(vals) >= goal]
        lines.append(f"- vs scikit-learn's {what} ({value:.2f}): the goal is >= {goal:.2f}; "
                     f"ebmlang's defaults give {default:.2f}: "
                     f"{'met' if default >= goal else 'NOT met'}. Settings whose mean meets "
                     f"it: {'; '.join(meets) if meets else 'none'}.")
    return (f"Goal: ebmlang's default fit beats scikit-learn's best by {GOAL_MARGIN:.0f} nat "
            "or more.\n\n" + "\n".join(lines))


# ------------------------------------------------------------------ main

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=5, help="timing repetitions (default 5)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="seeds of every quality fit (default 0 1 2)")
    p.add_argument("--profile", action="store_true", help="add a cProfile of ebmlang's fit")
    p.add_argument("--blas-threads", type=int, default=1, help="BLAS threads (default 1)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: 2 reps, seed 0, fewer ebmlang variants")
    args = p.parse_args(argv)
    if args.quick:
        args.reps, args.seeds = 2, [0]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    digits = load_digits()
    train, test = digits[:N_TRAIN], digits[N_TRAIN:]
    variants = EBM_VARIANTS[:2] if args.quick else EBM_VARIANTS
    command = "python bench/rbm_digits.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print("# RBM on the binarized digits: ebmlang vs scikit-learn\n")
    print("\n".join(machine()) + f"\n- BLAS threads: {args.blas_threads} (threadpoolctl)")
    print(f"- command: `{command.strip()}`\n")
    with threadpool_limits(limits=args.blas_threads):
        times = time_fits(digits, args.reps)
        print("## (a) Fit time\n\n" + time_table(times) + "\n", flush=True)
        sk_cells, sk_diffs = sklearn_quality(train, test, args.seeds)
        ebm_rows, ebm_diffs, ebm_seconds = ebmlang_quality(train, test, args.seeds, variants)
        table, ref = quality_table(independent_loglik(train, test), sk_cells, ebm_rows,
                                  ebm_seconds, args.seeds)
        print("## (b) Quality: exact test log-likelihood\n\n" + table + "\n")
        print(grid_table(sk_cells) + "\n")
        print(verdict(ebm_rows, ref) + "\n")
        print(f"Cross-check, ebmlang `score(...)['logp']` vs this script's numpy enumeration: "
              f"max |difference| {max(sk_diffs + ebm_diffs):.2e} nats over "
              f"{len(sk_diffs + ebm_diffs)} fits.\n")
        if args.profile:
            print("## Profile of ebmlang's fit (settings of (a), 20 epochs)\n\n```\n"
                  + profile_fit(digits) + "\n```")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Memory of the million-spin Ising model: peak resident memory of `ebmlang check` and of
`ebmlang sample` with one chain, and where it goes, stage by stage.

    python bench/memory.py            # L = 1024; --L 512 for a quicker run

Peaks of whole commands come from the kernel (getrusage of the child process: its maximum
resident set size). The stage table runs the same work in this process and reports each
stage's resident size at its end and the kernel's high-water mark during it (Linux: VmRSS and
VmHWM of /proc/self/status, the mark reset through /proc/self/clear_refs before each stage).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "ising.ebm"
sys.path.insert(0, str(ROOT))   # this checkout's ebmlang, not an installed one


def command_peak(argv: list[str]) -> tuple[float, float]:
    """(peak resident MB, wall seconds) of `python -m ebmlang ARGV` in a fresh process."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
            "print(time.perf_counter() - t, "
            "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "ebmlang", *argv],
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout.split()
    return float(out[1]) / 1024, float(out[0])


class Watch:
    """Resident memory of this process at the end of each stage, and its peak during it."""

    def __init__(self):
        self.rows: list[tuple[str, float, float, float]] = []
        self._reset()

    @staticmethod
    def _status(key: str) -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1]) / 1024
        raise RuntimeError(f"no {key} in /proc/self/status")

    def _reset(self) -> None:
        Path("/proc/self/clear_refs").write_text("5")   # the high-water mark := now
        self.t = time.perf_counter()

    def stage(self, name: str) -> None:
        t = time.perf_counter()
        self.rows.append((name, self._status("VmRSS"), self._status("VmHWM"), t - self.t))
        self._reset()


def stages(L: int, tmp: Path) -> list[tuple[str, float, float, float]]:
    """The work of `ebmlang sample ... -o` in this process, stage by stage."""
    w = Watch()
    import ebmlang
    from ebmlang.report.text import sample_summary
    w.stage("import ebmlang")
    model = ebmlang.load(MODEL, L=L)
    w.stage("ebmlang.load (parse, check, lower, graph, codegen)")
    model.parts("numba")
    w.stage("compiled parts (incidence, tables)")
    samples = model.sample(draws=10, burn_in=10, chains=1, seed=0)
    w.stage("sample: 20 sweeps, 10 kept draws")
    sample_summary(samples, burn_in=10)
    w.stage("summary (stats, energies, R-hat)")
    samples.to_csv(tmp)
    w.stage("samples CSV")
    return w.rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--L", type=int, default=1024)
    args = ap.parse_args()
    L = args.L
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"ebmlang-bench-memory-{os.getpid()}.csv"
    print(f"# Memory at L = {L} ({L * L:,} spins)\n")
    print(f"Command: `python bench/memory.py --L {L}`\n")
    print(f"- machine: {os.cpu_count()} CPUs, {platform.machine()}, load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    import numba
    import numpy
    print(f"- Python {platform.python_version()}, numpy {numpy.__version__}, "
          f"numba {numba.__version__}\n")
    print("| command | peak resident MB | wall s |\n|---|---:|---:|")
    base = [str(MODEL), "--set", f"L={L}"]
    runs = [("check", ["check", *base]),
            ("sample -n 10 --burn-in 10 --chains 1 (summary)",
             ["sample", *base, "-n", "10", "--burn-in", "10", "--chains", "1", "--no-progress"]),
            ("sample -n 10 --burn-in 10 --chains 1 -o OUT.csv",
             ["sample", *base, "-n", "10", "--burn-in", "10", "--chains", "1", "--no-progress",
              "-o", str(tmp)]),
            ("sample --chains 1 (the default -n 1000, burn-in 500; summary)",
             ["sample", *base, "--chains", "1", "--no-progress"]),
            ("sample ... --backend numpy (summary)",
             ["sample", *base, "-n", "10", "--burn-in", "10", "--chains", "1", "--no-progress",
              "--backend", "numpy"])]
    for name, argv in runs:
        mb, secs = command_peak(argv)
        print(f"| `ebmlang {name}` | {mb:,.0f} | {secs:.1f} |")
    print("\nStage by stage, in one process (numba backend, `-o OUT.csv`):\n")
    print("| stage | resident at its end, MB | peak during it, MB | s |\n|---|---:|---:|---:|")
    for name, now, peak, secs in stages(L, tmp):
        print(f"| {name} | {now:,.0f} | {peak:,.0f} | {secs:.2f} |")
    tmp.unlink(missing_ok=True)


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()

"""A Ctrl-C (SIGINT) while the command line imports its modules: exit status 130 and the
one line `ebmlang: interrupted`, no traceback, both for `python -m ebmlang` and for the
`ebmlang` entry point (`ebmlang.__main__:run`). The test-only EBMLANG_TEST_IMPORT_PAUSE
holds the import of cli/app.py after it says so on stderr; SIGINT is sent once it has."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENTRY = "from ebmlang.__main__ import run; raise SystemExit(run())"   # what the script runs


@pytest.mark.parametrize("argv", [["-m", "ebmlang"], ["-c", ENTRY]], ids=["module", "entry"])
def test_sigint_during_startup_imports_exits_130_quietly(argv):
    env = dict(os.environ, EBMLANG_TEST_IMPORT_PAUSE="120",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, *argv, "check", str(ROOT / "examples" / "ising.ebm")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()            # blocks until the import is held
        assert "paused in the start-up imports" in first, first
        proc.send_signal(signal.SIGINT)
        out, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, first + rest
    assert rest.strip() == "ebmlang: interrupted" and "Traceback" not in rest
    assert out == ""

"""`python -m ebmlang` and the `ebmlang` entry point: the command line (`cli.app.main`),
with a Ctrl-C at any moment of it, the start-up imports included, an exit with status 130
and one line on stderr, never a traceback."""

import signal
import sys


def run() -> int:
    """The process's command line: `cli.app.main` imported and run; SIGINT arriving while its
    modules are imported, or after `main` has decided the exit status, ends it with 130 (or
    that status) quietly. Leaves SIGINT ignored on return: the process is about to exit."""
    try:
        from ebmlang.cli.app import main
        status = main()
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # a second Ctrl-C changes nothing
        sys.stderr.write("ebmlang: interrupted\n")
        return 130
    signal.signal(signal.SIGINT, signal.SIG_IGN)       # nor one during the interpreter's exit
    return status


if __name__ == "__main__":
    raise SystemExit(run())

"""`python -m ebmlang`: the command line."""

from .cli import main

raise SystemExit(main())

"""`python -m ebmlang`: the command line."""

from ebmlang.cli import main

raise SystemExit(main())

"""`python -m ebmlang`: the command line."""

from ebmlang.cli.app import main

raise SystemExit(main())

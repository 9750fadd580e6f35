"""`python -m ecswatch` runs the command line."""

from ecswatch.cli import main

raise SystemExit(main())

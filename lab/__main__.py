"""``python -m lab``: the command line (:mod:`lab.cli`)."""

from .cli import main

raise SystemExit(main())

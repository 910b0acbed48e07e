"""`python -m breakpoint` is the `breakpoint` command."""

from breakpoint.cli.main import main

raise SystemExit(main())

"""`python -m breakpoint` is the `breakpoint` command."""

from .cli import main

raise SystemExit(main())

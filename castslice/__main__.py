"""`python -m castslice`, the same as the `castslice` command."""

from castslice.cli import run

run()

"""``python -m framework``: the same as the ``exsync`` command."""

from framework.cli import main

main()

"""``python -m perfq``: the perfq command-line tool."""

from ._cli import main

main()

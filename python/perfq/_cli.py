"""The ``perfq`` command of a pip-installed perfq: runs the tool the package carries."""

from __future__ import annotations

import os
import sys


def main() -> None:
    tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "perfq")
    if not os.access(tool, os.X_OK):
        sys.exit(f"perfq: the command-line tool is not in this installation ({tool})")
    os.execv(tool, [tool, *sys.argv[1:]])


if __name__ == "__main__":
    main()

"""``python -m vaelab <command>``: see vaelab/cli/__init__.py."""

import sys

from vaelab.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m helpers <command>``: see helpers/cli/__init__.py."""

import sys

from helpers.cli import main

if __name__ == "__main__":
    sys.exit(main())

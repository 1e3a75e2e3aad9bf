"""``python -m instructor <command>``: the instructor's command line."""

import sys

from instructor.commands import main

if __name__ == "__main__":
    sys.exit(main())

"""What runs from a checkout of the lab and is not in the students' package.

- ``python -m vaelab``: the command line (``cli``; ``validate`` checks its arguments);
- ``demo``: the README's demo (generated slice -> cache -> train -> plots);
- ``synthetic``: the generated CelebA-format slice that CI, the demo and SMOKE=1 use;
- ``solution``: the lab's reference parts, generated from the solutions' ``%%export``
  cells by ``python -m instructor make-student`` (never edit it by hand).

Students install only ``helpers`` (``pip install vae-celeba-lab``); this package
imports from it, never the other way round.
"""

from pathlib import Path

SOLUTION_FILE = Path(__file__).with_name("solution.py")

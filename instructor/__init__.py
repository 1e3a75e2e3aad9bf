"""The instructor's tools: releases, the nbgrader course, hand-ins, model export.

Students never install this package: the wheel the notebooks' first cell installs
holds ``helpers`` only (``pyproject.toml``'s package list), and the student release
copies ``helpers/`` alone. Run it from a checkout of the instructor's repository::

    python -m instructor make-student            # solutions/ -> notebooks/, solution.py
    python -m instructor make-student --release DIR | --course DIR
    python -m instructor check-submission submitted/
    python -m instructor repair-submission submitted/ --release release/
    python -m instructor export-model RUN_DIR OUT.keras

Modules, each importing only ``helpers`` and the modules listed before it:

- ``grading``: nbgrader metadata stamped from the solution markers; repair of
  hand-ins; notebooks written deterministically;
- ``notebook_tools``: solution markers to stubs, outputs, repository links;
- ``export_cells``: ``vaelab/solution.py`` from the solutions' ``%%export`` cells;
- ``release``: the student release and the nbgrader course;
- ``submissions``: the release's list of graded cells; the class survey;
- ``export``: a run's model as a portable file for students to download;
- ``commands``: the command line (through ``vaelab.cli.main``).
"""

"""``python -m helpers``: the students' package holds no command line."""

raise SystemExit(
    "error: the lab's commands run from a checkout of the lab: `python -m vaelab "
    "<command>` (the instructor's: `python -m instructor <command>`)"
)

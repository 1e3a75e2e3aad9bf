"""The instructor's tools' tests (instructor/, never installed by students).

They share the lab's test helpers (``notebook_answers``) one folder up.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

"""helpers: the tested package behind the CelebA VAE teaching lab.

Modules are imported on demand (``from helpers import model``); importing the
package itself loads nothing heavy and never downloads or writes files.
"""

__version__ = "0.1.0"

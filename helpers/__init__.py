"""helpers: the tested package behind the CelebA VAE teaching lab.

Modules are imported on demand; importing the package loads nothing heavy.
"""

__version__ = "0.1.0"

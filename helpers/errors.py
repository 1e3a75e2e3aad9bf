"""Errors that carry a message for people: what went wrong and what to do.

The command line prints these without a traceback and exits non-zero; any other
exception is a bug and keeps its traceback.
"""


class LabError(Exception):
    """A problem the user can fix; the message says how."""


class DataError(LabError):
    """The data is missing, in the wrong layout, or unreadable."""


class DownloadError(LabError):
    """A download failed: network, checksum, HTML instead of a zip, unsafe zip."""


class CredentialsError(DownloadError):
    """Kaggle credentials are missing or rejected (never contains the key)."""


class TrainingError(LabError):
    """Training stopped: a NaN loss, or a run directory that does not match."""


class DamagedFileError(LabError):
    """A file the lab wrote earlier cannot be read; the message names it and the fix."""

    def __init__(self, path, problem: str, fix: str):
        self.path, self.problem, self.fix = path, problem, fix
        super().__init__(f"{path} is damaged ({problem}): {fix}")

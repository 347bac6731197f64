"""The errors a user can cause, in one place: each message names the file, row, field or argument at fault.

Everything here is a `UserError`, shown as one line (the CLI exits 2, a page shows a message and keeps its data).
Any other exception is a bug in ecgviz and keeps its traceback, so plain `ValueError` is deliberately not listed.
"""

from __future__ import annotations

__all__ = ["USER_ERRORS", "CheckpointError", "DataError", "FieldError", "NameInUse", "SplitError", "UserError"]


class UserError(ValueError):
    """Input or a request that ecgviz refuses, with a message that says what to change."""


class DataError(UserError):
    """Unusable input data; the message names the file and, where known, the row and attribute."""


class SplitError(UserError):
    """The requested protocol cannot be applied to these labels."""


class CheckpointError(UserError):
    """A file that is not a usable ecgviz checkpoint, or one that does not fit the data."""


class FieldError(UserError):
    """One field of a checkpoint has the wrong type or range."""


class NameInUse(UserError):
    """The name is taken: a checkpoint of that name exists, or another training holds it."""


# What a command or a page reports as one line; OSError covers unreadable paths and full disks.
USER_ERRORS = (UserError, OSError)

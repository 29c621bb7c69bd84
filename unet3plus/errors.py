"""Exceptions whose messages are meant for the user: what went wrong and what to do about it.

Subsystems derive their own (download, loading, data, inference) from these so that callers can
catch one base class and the CLI can print them without a traceback.

Chaining: an error that wraps a caught exception raises ``... from error``, so a traceback still shows
the cause; ``from None`` only where the caught exception says nothing the message does not (a failed
dictionary lookup or number parse).
"""
from __future__ import annotations


class UserFacingError(Exception):
    """An error caused by input or environment, with a message that names the problem and the fix."""


class InputError(UserFacingError, ValueError):
    """Bad input data or arguments (wrong shape, unreadable file, unpaired files, ...)."""


class MissingDependencyError(UserFacingError, ImportError):
    """An optional dependency is not installed; the message names the pip extra that brings it."""


class DatasetError(InputError):
    """A dataset that cannot be trained on as given; the message says which files and what to do."""

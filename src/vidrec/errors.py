"""Error types. Every failure vidrec raises on purpose derives from :class:`VidrecError`."""

from __future__ import annotations

import sys
from collections.abc import Callable


class VidrecError(Exception):
    """Base class of vidrec's own errors; the message names the file, key or value and the fix."""


class DecodeError(VidrecError):
    """A video file or frame folder could not be read."""


class AnnotationError(VidrecError):
    """An annotation file is malformed or inconsistent."""


class ConfigError(VidrecError):
    """A configuration value is invalid."""


class CheckpointError(VidrecError):
    """A checkpoint is missing, corrupt, unsafe or does not match the model."""


class DataError(VidrecError):
    """The data as a whole is unusable (too many skipped videos, empty subset...)."""


class DivergedError(VidrecError):
    """Training produced a non-finite loss."""


def run_command(action: Callable[[], None]) -> int:
    """A command-line tool's exit status: 0 when ``action()`` succeeds, else 2 with its error as one line on stderr."""
    try:
        action()
    except VidrecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0

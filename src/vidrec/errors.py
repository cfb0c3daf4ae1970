"""Error types. Every failure vidrec raises on purpose derives from :class:`VidrecError`."""

from __future__ import annotations


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

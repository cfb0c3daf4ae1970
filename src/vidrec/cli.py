"""Shared behaviour of the entry points: vidrec errors become one clear line and exit status 1."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from vidrec.errors import VidrecError

log = logging.getLogger("vidrec")


class BelowLevel(logging.Filter):
    """Logging filter that passes records below ``level`` (predict.py and export.py log to stderr, where
    :func:`run_entry` already prints the ``error:`` line)."""

    def __init__(self, level: str | int = logging.ERROR):
        super().__init__()
        self.level = logging.getLevelName(level) if isinstance(level, str) else level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.level


def user_error(exc: BaseException) -> VidrecError | None:
    """The :class:`VidrecError` behind ``exc``: itself or the error it was raised from (Hydra's
    ``instantiate`` wraps what a builder raises in an ``InstantiationException``); ``None`` for anything else."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, VidrecError):
            return current
        seen.add(id(current))
        current = current.__cause__
    return None


def error_line(exc: VidrecError) -> str:
    """The message of ``exc`` on one line. A DataLoader worker's error arrives re-raised with the worker's
    traceback in its text ("Caught DecodeError in DataLoader worker process 0. Original Traceback ..."):
    only the original message, the traceback's last line, is kept."""
    text = str(exc)
    if "\nOriginal Traceback" in text:
        last = text.rstrip().splitlines()[-1]
        prefix = f"{type(exc).__module__}.{type(exc).__qualname__}: "
        text = last[len(prefix):] if last.startswith(prefix) else last
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def run_entry(fn: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run ``fn(cfg)``; a :class:`VidrecError` (also one wrapped by Hydra or re-raised from a loader worker) is
    printed as one ``error: <message>`` line, without a traceback, and the process exits with status 1."""
    try:
        return fn(cfg)
    except Exception as exc:
        err = user_error(exc)
        if err is None:
            raise
        line = error_line(err)
        log.debug("full error:\n%s", exc)
        log.error("%s", line)
        print(f"error: {line}", file=sys.stderr, flush=True)
        sys.exit(1)

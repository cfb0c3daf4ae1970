"""Shared behaviour of the entry points: vidrec errors become one clear line and exit status 1."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from vidrec.errors import VidrecError

log = logging.getLogger("vidrec")


def run_entry(fn: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run ``fn(cfg)``; a :class:`VidrecError` is printed as ``error: <message>`` without a traceback."""
    try:
        return fn(cfg)
    except VidrecError as exc:
        log.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)

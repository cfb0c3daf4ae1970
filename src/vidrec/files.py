"""Atomic file writes: write to a temporary file beside the target, then rename into place.

The file gets the mode a plain ``open(path, "w")`` would give (0666 less the umask, e.g. 0644), not the 0600
of ``tempfile.mkstemp``, so teammates and serving processes can read checkpoints, results and annotations.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where Linux shows it (``/proc/self/status``), else by
    setting and restoring it under a lock."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    with _UMASK_LOCK:
        old = os.umask(0o077)  # restrictive while the real value is read back
        os.umask(old)
    return old


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[BinaryIO]:
    """Open a temporary file next to ``path``; on success it is fsynced and renamed onto ``path``.

    On any error the temporary file is removed and ``path`` keeps its previous content.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp's 0600 → the mode a plain write gets
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike, data: Any, indent: int | None = 2) -> None:
    """Serialise ``data`` as JSON and write it to ``path`` atomically."""
    atomic_write_text(path, json.dumps(data, indent=indent, sort_keys=False) + "\n")


def free_bytes(folder: str | os.PathLike) -> int | None:
    """Free space on the disk holding ``folder`` (its nearest existing parent), or None where it cannot be read."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None

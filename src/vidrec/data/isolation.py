"""Supervised decoding: each process decodes in a long-lived child of its own, so that a decoder which
crashes (SIGSEGV, abort, OOM kill) or hangs costs one video, not the DataLoader worker or the run.

``read_frames`` and ``count_frames`` here take the arguments of :mod:`vidrec.data.decoding` plus ``timeout``
(seconds; ``None`` decodes in this process, unsupervised). The child is forked from the calling process on
first use (``os.fork``: DataLoader workers are daemonic and may not start ``multiprocessing`` children), serves
one request at a time over a socket pair, and returns arrays as out-of-band pickle buffers written into a
shared anonymous mapping (one copy in, one copy out: a socket moves 42 MB five times slower on a busy machine). When it dies, the call raises :class:`DecodeCrash` (``crashed: SIGSEGV``); when it does not answer
within ``timeout`` seconds it is killed and the call raises :class:`DecodeTimeout` (``timed out after 60 s``).
Both are :class:`~vidrec.errors.DecodeError`, so the dataset skips, counts and lists the video as any other;
the next call starts a fresh child. Any other exception of the child is re-raised in the caller.

:func:`map_items` runs a whole loader batch in one round trip (the fixed cost of a request, ~0.1–0.5 ms of CPU,
is paid once per batch, not per video): the child works on the copy of the dataset it inherited when it was
forked, notes in the shared mapping which item it is on and since when, and the timeout applies to each item.
"""

from __future__ import annotations

import faulthandler
import itertools
import logging
import math
import mmap
import os
import pickle
import signal
import struct
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, Pipe
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vidrec.errors import DecodeError

if TYPE_CHECKING:  # torch and the decoders load lazily: the preprocessing commands never import torch
    import torch

    from vidrec.data.spec import DataConfig

SHM_BYTES = 1 << 30  # shared result buffer per supervisor (virtual; a larger result goes through the socket)
REAP_S = 5.0  # how long a killed child may take to be reaped before it is abandoned (stuck in the kernel)
PROGRESS = struct.Struct("qd")  # at the start of the shared mapping: (item in progress, its start, CLOCK_MONOTONIC)
RESULTS_AT = 64  # results are placed after it

_CHILD_SHM: mmap.mmap | None = None  # set in a decoder child, where the functions here run their work in-process
_SHARED: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()  # serial → object; children inherit it
_SERIALS: dict[int, int] = {}  # id(object) → its serial in _SHARED
_NEXT_SERIAL = itertools.count(1)


class DecodeCrash(DecodeError):
    """The decoder process died (a signal or an exit) while it read the video."""

    item = 0  # in :func:`map_items`: the position of the item the child was working on


class DecodeTimeout(DecodeError):
    """The decoder process did not answer within the timeout and was killed."""

    item = 0


def _die_with_parent() -> None:
    try:  # Linux: SIGKILL when the parent dies, so no decoder outlives its worker
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    try:  # the kernel's OOM killer takes the decoder before the worker or the trainer
        Path("/proc/self/oom_score_adj").write_text("1000")
    except OSError:
        pass


def _serve(conn: Connection, shm: mmap.mmap) -> None:
    """The child's loop: ``(fn, args)`` in; out ``("ok", pickle, places)``, each out-of-band buffer placed in ``shm``
    at ``(offset, size)`` or, when ``shm`` is full, sent after the reply (``(-1, size)``); or ``("err", exc)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    for sig in (signal.SIGTERM, signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGABRT):
        signal.signal(sig, signal.SIG_DFL)  # not a DataLoader worker's handlers ("segmentation fault in worker")
    faulthandler.disable()  # an inherited handler would dump the parent's stack as if the parent had crashed
    _die_with_parent()
    global _CHILD_SHM
    _CHILD_SHM = shm
    if "torch" in sys.modules:  # one intra-op thread, as in a loader worker
        sys.modules["torch"].set_num_threads(1)
    logging.getLogger("vidrec.data.decoding").setLevel(logging.ERROR)  # the caller warns (once) for what we find
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            buffers: list[pickle.PickleBuffer] = []
            head = pickle.dumps(fn(*args), protocol=5, buffer_callback=buffers.append)
            places, piped, offset = [], [], RESULTS_AT
            for raw in (b.raw() for b in buffers):
                if offset + raw.nbytes <= len(shm):
                    np.copyto(np.frombuffer(shm, np.uint8, raw.nbytes, offset), np.frombuffer(raw, np.uint8))
                    places.append((offset, raw.nbytes))
                    offset += raw.nbytes
                else:
                    places.append((-1, raw.nbytes))
                    piped.append(raw)
            conn.send(("ok", head, places))
            for raw in piped:
                conn.send_bytes(raw)
        except Exception as exc:  # the caller re-raises it
            try:
                conn.send(("err", exc))
            except Exception:
                conn.send(("err", RuntimeError(f"{type(exc).__name__}: {exc}")))


class Supervisor:
    """One decoder child of the current process, restarted after a crash or a timeout."""

    def __init__(self) -> None:
        self.pid = 0
        self.owner = (0, 0)  # (pid, thread) that forked the child: Linux's parent-death signal follows the thread
        self.conn: Connection | None = None
        self.shm: mmap.mmap | None = None
        self.inherited = 0  # the child holds the objects of _SHARED with serials up to this one

    def _start(self) -> None:
        parent, child = Pipe()
        if self.shm is None:  # shared with each child of this supervisor; pages are committed only when written
            self.shm = mmap.mmap(-1, SHM_BYTES)
        pid = os.fork()
        if pid == 0:  # the child: serve until the parent goes, never return into the parent's code
            code = 0
            try:
                parent.close()
                _serve(child, self.shm)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        child.close()
        self.pid, self.owner, self.conn = pid, (os.getpid(), threading.get_ident()), parent
        self.inherited = max(_SHARED.keys(), default=0)

    def _alive(self) -> bool:
        return self.conn is not None and self.owner == (os.getpid(), threading.get_ident())

    def call(self, fn: Callable[..., Any], args: Sequence[Any], timeout: float,
             path: str | os.PathLike | Callable[[int], str], needs: int = 0) -> Any:
        """``fn(*args)`` in the child; ``path`` names the video in a crash or timeout message (a function of the
        item's position for :func:`map_items`); ``needs``: the serial of a shared object the child must hold."""
        if self._alive() and needs > self.inherited:  # forked before that object was shared: fork afresh
            self._stop(kill=True)
        if not self._alive():  # first use, or a copy inherited by a forked worker: its child is not ours
            if self.owner[0] == os.getpid():  # ours, but forked by another thread: replace it
                self._stop(kill=True)
            self._start()
        assert self.conn is not None and self.shm is not None
        name = path if callable(path) else (lambda _: str(path))
        try:
            PROGRESS.pack_into(self.shm, 0, 0, time.monotonic())  # item 0 starts now
            self.conn.send((fn, tuple(args)))
            item = self._wait(timeout)
            if item is not None:
                self._stop(kill=True)
                exc = DecodeTimeout(f"{name(item)}: timed out after {timeout:g} s (the decoder was killed; "
                                    "data.decode_timeout_s sets the limit)")
                exc.item = item
                raise exc
            reply = self.conn.recv()
            if reply[0] == "ok":
                buffers = [np.empty(size, np.uint8) for _, size in reply[2]]  # copies 2× faster than bytearray
                for (offset, size), buf in zip(reply[2], buffers):
                    if offset >= 0:
                        np.copyto(buf, np.frombuffer(self.shm, np.uint8, size, offset))
                    else:
                        self.conn.recv_bytes_into(buf)
        except (EOFError, ConnectionError):
            item = PROGRESS.unpack_from(self.shm, 0)[0]
            reason = self._stop(kill=False)
            exc = DecodeCrash(f"{name(item)}: crashed: {reason} (in the isolated decoder process; the video is "
                              "skipped)")
            exc.item = item
            raise exc from None
        except BaseException as exc:  # e.g. Ctrl-C mid-reply: the pipe is out of step, start afresh next time
            if not isinstance(exc, DecodeTimeout):
                self._stop(kill=True)
            raise
        if reply[0] == "err":
            raise reply[1]
        return pickle.loads(reply[1], buffers=buffers)

    def _wait(self, timeout: float) -> int | None:
        """Wait for the reply; ``None`` when it is there, else the item that has run for ``timeout`` seconds."""
        assert self.conn is not None and self.shm is not None
        if math.isinf(timeout):
            self.conn.poll(None)
            return None
        while True:
            item, started = PROGRESS.unpack_from(self.shm, 0)
            if self.conn.poll(max(0.0, started + timeout - time.monotonic())):
                return None
            if PROGRESS.unpack_from(self.shm, 0) == (item, started):  # no new item since: this one ran out of time
                return item

    def _stop(self, kill: bool) -> str:
        """End the child (SIGKILL when ``kill``) and reap it; return how it ended (``SIGSEGV``, ``exit code 1``)."""
        pid, self.pid = self.pid, 0
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if not pid:
            return "unknown"
        if kill:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + REAP_S
        while True:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored)
                return "unknown signal"
            if done:
                break
            if time.monotonic() > deadline:  # stuck in uninterruptible I/O: abandon it
                return "did not exit"
            time.sleep(0.01)
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            try:
                return signal.Signals(sig).name
            except ValueError:
                return f"signal {sig}"
        return f"exit code {os.WEXITSTATUS(status)}"

    def close(self) -> None:
        """Kill and reap the child (only in the process that forked it)."""
        if self.owner[0] == os.getpid():
            self._stop(kill=True)


_SUPERVISOR = Supervisor()


def _read_array(path: str, indices: list[int], backend: str) -> tuple[np.ndarray, tuple[int, int] | None]:
    """The frames, and (claimed, decoded) frame counts when this read found the video truncated (else None)."""
    from vidrec.data import decoding

    return decoding.read_frames(path, indices, backend=backend).numpy(), decoding.truncation(path)


def _count(path: str, exact: bool) -> int:
    from vidrec.data import decoding

    return decoding.count_frames(path, exact=exact)


def _share(obj: Any) -> int:
    """The serial under which decoder children forked from now on find ``obj`` (registered on first use)."""
    serial = _SERIALS.get(id(obj))
    if serial is None or _SHARED.get(serial) is not obj:
        serial = next(_NEXT_SERIAL)
        _SHARED[serial] = obj
        _SERIALS[id(obj)] = serial
    return serial


def _map_shared(serial: int, method: str, items: list[Any]) -> list[Any]:
    """In the child: ``obj.method(item)`` for each item of the inherited object, noting each item's start."""
    fn, out = getattr(_SHARED[serial], method), []
    for i, item in enumerate(items):
        PROGRESS.pack_into(_CHILD_SHM, 0, i, time.monotonic())
        out.append(fn(item))
    return out


def map_items(obj: Any, method: str, items: Sequence[Any], timeout: float | None,
              path: Callable[[Any], str]) -> list[Any]:
    """``[obj.method(item) for item in items]`` in the supervised child, in one round trip.

    ``obj`` must not change once shared (the child works on the copy it inherited at its fork; a child forked
    before ``obj`` was first shared is replaced). An item whose call crashes or hangs the child gives its
    :class:`DecodeCrash` or :class:`DecodeTimeout` (named by ``path(item)``) in its place; the other items are
    computed (again) in a fresh child. ``timeout=None``: in this process."""
    items = list(items)
    if timeout is None or _CHILD_SHM is not None or not items:
        return [getattr(obj, method)(item) for item in items]
    serial = _share(obj)
    try:
        return _SUPERVISOR.call(_map_shared, (serial, method, items), timeout, lambda i: path(items[i]), serial)
    except (DecodeCrash, DecodeTimeout) as exc:
        i = exc.item
        return (map_items(obj, method, items[:i], timeout, path) + [exc]
                + map_items(obj, method, items[i + 1:], timeout, path))


def _indices(indices: Sequence[int] | torch.Tensor) -> list[int]:
    return [int(i) for i in (indices.flatten().tolist() if hasattr(indices, "flatten") else indices)]


def read_frames(path: str | os.PathLike, indices: Sequence[int] | torch.Tensor, backend: str = "auto",
                timeout: float | None = 60.0) -> torch.Tensor:
    """:func:`vidrec.data.decoding.read_frames` in the supervised child (``timeout=None``: in this process)."""
    import torch

    from vidrec.data import decoding

    if timeout is None or _CHILD_SHM is not None:
        return decoding.read_frames(path, indices, backend=backend)
    frames, counts = _SUPERVISOR.call(_read_array, (str(path), _indices(indices), backend), timeout, path)
    if counts is not None:  # the child found the video truncated: warn here once, sample from what decodes
        decoding.note_count(path, *counts)
    return torch.from_numpy(frames)


def count_frames(path: str | os.PathLike, exact: bool = True, timeout: float | None = 60.0) -> int:
    """:func:`vidrec.data.decoding.count_frames` in the supervised child (``timeout=None``: in this process)."""
    if timeout is None or _CHILD_SHM is not None:
        return _count(str(path), exact)
    return int(_SUPERVISOR.call(_count, (str(path), exact), timeout, path))


def call(fn: Callable[..., Any], *args: Any, timeout: float | None, path: str | os.PathLike) -> Any:
    """Any picklable ``fn(*args)`` under the same supervision (preprocessing, the scan)."""
    if timeout is None or _CHILD_SHM is not None:
        return fn(*args)
    return _SUPERVISOR.call(fn, args, timeout, path)


def timeout_of(data: DataConfig) -> float | None:
    """The supervision timeout a ``data`` config asks for: ``data.decode_timeout_s``, or ``None`` when
    ``data.isolate_decoding`` is false (decode in the loader's own process)."""
    if not data.isolate_decoding:
        return None
    return float(data.decode_timeout_s) if data.decode_timeout_s is not None else math.inf  # null: no time limit

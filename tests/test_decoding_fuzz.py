"""Fuzz: mutated video bytes never crash, hang or leak a foreign exception out of ``read_frames``.

``read_frames`` must return a well-formed clip (uint8 ``(T, H, W, 3)``) or raise vidrec's ``VidrecError`` naming
the file. Native decoders can die in ways pytest cannot catch (decord aborts the process with an uncaught
``std::bad_alloc`` on an AVI whose header claims 2^31 frames), so every example runs in a long-lived child
process (this file run with ``--worker``) under a timeout: a signal or a hang is a failed example, not a dead
test session.
"""

from __future__ import annotations

import json
import selectors
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

INDICES = [0, 5, 11, 40, 3]  # 40 is past the end of the 12-frame seeds: it loops back
TIMEOUT_S = 30.0  # per example, generous for a busy machine; a healthy read takes well under a second


def worker() -> None:
    """Child loop: read ``<path>\\t<backend>`` lines, answer one JSON line per read."""
    from vidrec.data.decoding import read_frames
    from vidrec.errors import VidrecError

    print("ready", flush=True)
    for line in sys.stdin:
        path, backend = line.rstrip("\n").split("\t")
        try:
            clip = read_frames(path, INDICES, backend=backend)
            result = {"kind": "clip", "dtype": str(clip.dtype), "shape": list(clip.shape)}
        except VidrecError as exc:
            result = {"kind": "vidrec", "message": str(exc)}
        except Exception as exc:  # what the property forbids
            result = {"kind": "foreign", "type": type(exc).__name__, "message": str(exc)[:500]}
        print(json.dumps(result), flush=True)


class DecoderChild:
    """A worker process fed one file at a time; restarted after a crash or a hang."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self._start()

    def _start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1)
        assert self._readline(120.0) == "ready\n", "the decoder worker did not start"

    def _readline(self, timeout: float) -> str | None:
        """A line of the child's output, or None when none comes within ``timeout``."""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                return None
        return self.proc.stdout.readline()

    def read(self, path: Path, backend: str = "auto") -> dict:
        """The child's answer for ``read_frames(path)``, or ``{"kind": "crash"|"hang", ...}``."""
        try:
            self.proc.stdin.write(f"{path}\t{backend}\n")
            self.proc.stdin.flush()
            line = self._readline(TIMEOUT_S)
        except BrokenPipeError:  # the child died before it read the request
            line = ""
        if line:
            return json.loads(line)
        if line is None:
            self.proc.kill()
        result = {"kind": "hang" if line is None else "crash", "returncode": self.proc.wait()}
        self._start()
        return result

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def child():
    process = DecoderChild()
    yield process
    process.close()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    """Valid 12-frame 48×64 videos in four containers/codecs: H.264 MP4, MPEG-4 AVI, VP9 WebM, H.264 MKV."""
    from conftest import moving_bar_frames
    from vidrec.data.synthetic import write_video

    folder = tmp_path_factory.mktemp("seeds")
    out = {}
    for ext in (".mp4", ".avi", ".webm", ".mkv"):
        write_video(folder / f"seed{ext}", moving_bar_frames(12))
        out[ext] = (folder / f"seed{ext}").read_bytes()
    return out


def mutate(data: bytes, mutation: tuple) -> bytes:
    """Apply one mutation: truncation, bit flips, a garbage header, or a 32-bit header field set to any value."""
    kind, *args = mutation
    buf = bytearray(data)
    if kind == "truncate":
        return bytes(buf[: int(args[0] * len(buf))])
    if kind == "flip":
        for where, bit in args[0]:
            buf[int(where * (len(buf) - 1))] ^= 1 << bit
    elif kind == "header":
        buf[: len(args[0])] = args[0]
    elif kind == "int32":
        at = int(args[0] * (min(4096, len(buf)) - 4))
        buf[at : at + 4] = struct.pack("<I", args[1])
    return bytes(buf)


unit = st.floats(0.0, 1.0)
MUTATIONS = st.one_of(
    st.tuples(st.just("truncate"), unit),
    st.tuples(st.just("flip"), st.lists(st.tuples(unit, st.integers(0, 7)), min_size=1, max_size=64)),
    st.tuples(st.just("header"), st.binary(min_size=1, max_size=512)),
    st.tuples(st.just("int32"), unit, st.integers(0, 2**32 - 1)),
)


def check_answer(answer: dict, path: Path) -> None:
    assert answer["kind"] in ("clip", "vidrec"), f"{path.name}: {answer}"
    if answer["kind"] == "clip":
        t, h, w, c = answer["shape"]
        assert answer["dtype"] == "torch.uint8" and (t, c) == (len(INDICES), 3) and h > 0 and w > 0, answer
    else:
        assert str(path) in answer["message"], answer


@settings(derandomize=True, max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ext=st.sampled_from([".mp4", ".avi", ".webm", ".mkv"]), mutation=MUTATIONS, backend=st.sampled_from(["auto", "decord"]))
def test_mutated_video_bytes_give_a_clip_or_a_vidrec_error(child, seeds, tmp_path_factory, ext, mutation, backend):
    path = tmp_path_factory.getbasetemp() / f"fuzz{ext}"
    path.write_bytes(mutate(seeds[ext], mutation))
    check_answer(child.read(path, backend), path)


def test_avi_header_claiming_billions_of_frames(child, seeds, tmp_path):
    """Regression: decord aborted the process (std::bad_alloc) on this file; it must go to PyAV instead."""
    data = bytearray(seeds[".avi"])
    length_at = data.find(b"strh") + 8 + 32  # AVISTREAMHEADER.dwLength: the stream's frame count
    assert struct.unpack_from("<I", data, length_at)[0] == 12
    struct.pack_into("<I", data, length_at, 0x8000000C)
    path = tmp_path / "lying_header.avi"
    path.write_bytes(bytes(data))
    auto = child.read(path, "auto")
    assert auto["kind"] == "clip" and auto["shape"] == [len(INDICES), 48, 64, 3], auto
    forced = child.read(path, "decord")
    assert forced["kind"] == "vidrec" and "header claims 2147483660 frames" in forced["message"], forced


if __name__ == "__main__" and sys.argv[1:] == ["--worker"]:
    worker()

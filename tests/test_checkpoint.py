"""Checkpoints: corrupt files give one clear line, pickled code never runs, a failed write keeps the previous file."""

from __future__ import annotations

import errno
import io
import multiprocessing
import os
import pickle
import resource
import signal
import stat
import traceback

import numpy as np
import pytest
import torch

from conftest import TINY, one_error_line, run_entry
from vidrec.checkpoint import AtomicCheckpointIO, load_checkpoint
from vidrec.data.annotations import load_annotation, make_entry, write_annotation
from vidrec.errors import CheckpointError
from vidrec.files import atomic_write_json
from vidrec.models import build_model, load_pretrained
from vidrec.models.weights.common import read_checkpoint


class RunsCode:
    """Unpickling this object would run ``touch <marker>``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def lightning_like(epoch: int = 0) -> dict:
    """The parts of a train.py checkpoint that matter here (tiny R(2+1)D weights)."""
    state = build_model("r2plus1d_tiny", 8).state_dict()
    return {"epoch": epoch, "state_dict": {f"model.{k}": v for k, v in state.items()}, "hyper_parameters": {}}


@pytest.fixture
def good_ckpt(tmp_path):
    path = tmp_path / "good.ckpt"
    torch.save(lightning_like(), path)
    return path


# ------------------------------------------------------------------ corrupt files
CORRUPT = {
    "truncated": lambda data: data[: len(data) // 2],
    "garbage": lambda data: np.random.default_rng(0).bytes(len(data)),
    "empty": lambda data: b"",
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_checkpoint_is_a_checkpoint_error(good_ckpt, case):
    good_ckpt.write_bytes(CORRUPT[case](good_ckpt.read_bytes()))
    with pytest.raises(CheckpointError, match=rf"{good_ckpt}: not a readable checkpoint \(truncated or corrupt"):
        load_checkpoint(good_ckpt)
    with pytest.raises(CheckpointError, match=str(good_ckpt)):
        load_pretrained(build_model("r2plus1d_tiny", 8), good_ckpt)


def test_eval_of_a_truncated_checkpoint_is_one_line(good_ckpt, tmp_path):
    good_ckpt.write_bytes(CORRUPT["truncated"](good_ckpt.read_bytes()))
    line = one_error_line(run_entry("eval.py", f"ckpt_path={good_ckpt}", f"hydra.run.dir={tmp_path / 'run'}", check=False))
    assert str(good_ckpt) in line and "truncated or corrupt" in line


def test_run_resume_from_a_truncated_checkpoint_is_one_line(good_ckpt, tmp_path, data_dir):
    good_ckpt.write_bytes(CORRUPT["truncated"](good_ckpt.read_bytes()))
    line = one_error_line(run_entry("train.py", *TINY, f"paths.data_dir={data_dir}", f"hydra.run.dir={tmp_path / 'run'}",
                                    f"ckpt_path={good_ckpt}", check=False))
    assert str(good_ckpt) in line and "truncated or corrupt" in line


# ------------------------------------------------------------------ pickled code is refused
@pytest.mark.parametrize("zipfile_format", [True, False], ids=["zip", "legacy"])
def test_torch_checkpoint_with_code_is_refused(tmp_path, zipfile_format):
    marker, path = tmp_path / "pwned", tmp_path / "evil.ckpt"
    ckpt = lightning_like()
    ckpt["hyper_parameters"] = {"config": RunsCode(marker)}
    torch.save(ckpt, path, _use_new_zipfile_serialization=zipfile_format)
    with pytest.raises(CheckpointError, match=rf"{path}: refused to load .* only load checkpoints you trust"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match=rf"{path}: refused to load \(weights_only=True\) .* only load checkpoints you trust"):
        load_pretrained(build_model("r2plus1d_tiny", 8), path)  # the same reader as checkpoints
    assert not marker.exists(), "unpickling ran the checkpoint's code"


def test_caffe2_pickle_with_code_is_refused(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "r2plus1d_34.pkl"
    blobs = {"blobs": {"conv1_middle_w": np.zeros((45, 3, 1, 7, 7), np.float32), "comp_0_conv_1_w": RunsCode(marker)}}
    path.write_bytes(pickle.dumps(blobs, protocol=2))
    with pytest.raises(CheckpointError, match=rf"{path}: refusing to unpickle global posix\.system"):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        load_pretrained(build_model("r2plus1d_34", 400), path)
    assert not marker.exists(), "unpickling ran the pickle's code"


def test_eval_of_a_checkpoint_with_code_is_one_line_and_runs_nothing(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "evil.ckpt"
    ckpt = lightning_like()
    ckpt["hyper_parameters"] = {"config": RunsCode(marker)}
    torch.save(ckpt, path)
    line = one_error_line(run_entry("eval.py", f"ckpt_path={path}", f"hydra.run.dir={tmp_path / 'run'}", check=False))
    assert str(path) in line and "refused to load" in line
    assert not marker.exists()


# ------------------------------------------------------------------ a failed write keeps the previous file
def assert_previous_kept(path, epoch: int) -> None:
    assert load_checkpoint(path)["epoch"] == epoch
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name], "a temporary file was left behind"


def test_disk_full_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    io_ = AtomicCheckpointIO()
    io_.save_checkpoint(lightning_like(epoch=1), path)
    real_save = torch.save

    def disk_full_halfway(obj, handle):
        buffer = io.BytesIO()
        real_save(obj, buffer)
        handle.write(buffer.getvalue()[: buffer.tell() // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", disk_full_halfway)
    with pytest.raises(CheckpointError, match=r"last\.ckpt: writing the checkpoint failed \(.*No space left on device.*MiB free"
                                              r".*is intact — free disk space, then resume with ckpt_path=last"):
        io_.save_checkpoint(lightning_like(epoch=2), path)
    monkeypatch.undo()
    assert_previous_kept(path, epoch=1)


def run_under_file_size_limit(body, nbytes: int) -> None:
    """Run ``body()`` in a forked child whose kernel refuses writes past ``nbytes`` per file (EFBIG, as a full
    disk refuses them with ENOSPC). The limit never touches this process, whose own log files may be larger."""
    def child() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        try:
            body()
        except BaseException:  # report the failure through the exit status; the traceback goes to stderr
            traceback.print_exc()
            os._exit(1)
        os._exit(0)

    proc = multiprocessing.get_context("fork").Process(target=child)
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0, f"the limited child failed (exit {proc.exitcode}); see its traceback above"


def test_refused_write_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "last.ckpt"
    io_ = AtomicCheckpointIO()
    io_.save_checkpoint(lightning_like(epoch=1), path)

    def body() -> None:
        with pytest.raises(CheckpointError, match="writing the checkpoint failed"):
            io_.save_checkpoint(lightning_like(epoch=2), path)

    run_under_file_size_limit(body, path.stat().st_size // 2)
    assert_previous_kept(path, epoch=1)


def test_refused_write_keeps_the_previous_annotation_and_results(tmp_path):
    ann, results = tmp_path / "annotation.json", tmp_path / "results.json"
    write_annotation(ann, ["a"], {"v0": make_entry("training", "a", 10)})
    atomic_write_json(results, {"top1": 0.5})
    before = ann.read_bytes(), results.read_bytes()

    def body() -> None:
        big = {f"v{i}": make_entry("training", "a", 10) for i in range(200)}
        with pytest.raises(OSError):
            write_annotation(ann, ["a"], big)
        with pytest.raises(OSError):
            atomic_write_json(results, {"top1": 0.5, "padding": "x" * 4096})

    run_under_file_size_limit(body, max(len(before[0]), len(before[1])) + 10)
    assert (ann.read_bytes(), results.read_bytes()) == before
    assert load_annotation(ann).entries[0].video_id == "v0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotation.json", "results.json"]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_atomic_writes_get_the_mode_a_plain_write_gets(tmp_path, umask, mode):
    """mkstemp creates 0600; annotation JSON, results and checkpoints must follow the umask as a log file does."""
    old = os.umask(umask)
    try:
        write_annotation(tmp_path / "annotation.json", ["a"], {"v0": make_entry("training", "a", 10)})
        atomic_write_json(tmp_path / "results.json", {"top1": 0.5})
        AtomicCheckpointIO().save_checkpoint(lightning_like(), tmp_path / "checkpoints" / "last.ckpt")
        (tmp_path / "train.log").write_text("a plain write\n")
    finally:
        os.umask(old)
    modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode) for p in tmp_path.rglob("*") if p.is_file()}
    assert modes == dict.fromkeys(["annotation.json", "results.json", "checkpoints/last.ckpt", "train.log"], mode)

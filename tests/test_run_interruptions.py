"""Interruptions: kill -9 during training loses at most the epoch in progress; loader worker failures name the video.

kill -9 during frame extraction, then a rerun that completes with no half-written folder:
tests/test_preprocess.py::test_killed_extraction_resumes_to_the_same_result.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, TINY, ctrl_c_reaches_it, data_module, dataset_cfg, make_dataset, run_entry
from vidrec.checkpoint import load_checkpoint
from vidrec.cli import run_entry as run_cli_entry
from vidrec.data.dataset import VideoDataset

EPOCHS, STEPS_PER_EPOCH = 2, 3  # TINY: 24 training videos in batches of 8


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGKILL semantics")
def test_kill_during_training_then_resume_from_last(tmp_path, data_dir):
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.ckpt"
    args = [*TINY, f"paths.data_dir={data_dir}", f"hydra.run.dir={run}", f"trainer.max_epochs={EPOCHS}", "test=false"]
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), *args], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 300
    while not last.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "train.py ended before it could be killed"
    at_kill = load_checkpoint(last)
    assert at_kill["epoch"] < EPOCHS - 1 and at_kill["global_step"] == (at_kill["epoch"] + 1) * STEPS_PER_EPOCH

    resumed = run_entry("train.py", *args, "ckpt_path=last")
    assert f"Restoring states from the checkpoint path at {last}" in resumed.stdout + resumed.stderr
    final = load_checkpoint(last)
    assert final["epoch"] == EPOCHS - 1 and final["global_step"] == EPOCHS * STEPS_PER_EPOCH
    assert (run / "metrics.json").is_file()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGINT semantics")
def test_ctrl_c_ends_with_the_resume_command_which_resumes(tmp_path, data_dir):
    import shlex

    run = tmp_path / "run (a)"  # a run dir Hydra's grammar needs quoted
    last = run / "checkpoints" / "last.ckpt"
    epochs = 8  # Ctrl-C after the first epoch lands mid-run (one tiny epoch can end before the signal arrives)
    args = [*TINY, f"paths.data_dir={data_dir}", f"hydra.run.dir={run}", f"trainer.max_epochs={epochs}", "test=false"]
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            preexec_fn=ctrl_c_reaches_it)
    deadline = time.monotonic() + 300
    while not last.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    signalled = {"running": proc.poll() is None, "epoch": load_checkpoint(last)["epoch"] if last.is_file() else None}
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "interrupted; resume with:" in err, (signalled, out[-1500:], err[-1500:])
    command = shlex.split(err.split("interrupted; resume with:")[1].strip().splitlines()[0])
    assert command[:2] == ["python", "train.py"] and "ckpt_path=last" in command and f"hydra.run.dir={run}" in command
    resumed = run_entry("train.py", *command[2:])
    assert f"Restoring states from the checkpoint path at {last}" in resumed.stdout + resumed.stderr
    assert load_checkpoint(last)["epoch"] == epochs - 1


@dataclasses.dataclass
class BuggyDataset(VideoDataset):
    """A dataset whose loading of one video raises an exception vidrec does not expect (a bug, a library failure)."""

    buggy_path: str = ""

    def load(self, index, generator):
        if str(self.path(index)) == self.buggy_path:
            raise ZeroDivisionError("integer division or modulo by zero")
        return super().load(index, generator)


def worker_datamodule(root, **data):
    dm = data_module(dataset_cfg(root, "video", num_workers=1, loader={"persistent_workers": False}), data=data)
    dm.setup("fit")
    return dm


def test_unexpected_error_in_a_loader_worker_names_the_video(tmp_path, capsys):
    make_dataset(tmp_path, "video")
    dm = worker_datamodule(tmp_path)
    buggy = tmp_path / "right" / "right_1.mp4"
    val = dm.datasets["val"]
    dm.datasets["val"] = BuggyDataset(**{f.name: getattr(val, f.name) for f in dataclasses.fields(val)}, buggy_path=str(buggy))
    with pytest.raises(SystemExit) as exit_:
        run_cli_entry(lambda cfg: list(dm.val_dataloader()), None)
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: loading {buggy} failed: ZeroDivisionError")


def test_strict_error_from_a_loader_worker_is_one_line(tmp_path, capsys):
    make_dataset(tmp_path, "video")
    broken = tmp_path / "left" / "left_1.mp4"
    broken.write_bytes(b"")
    dm = worker_datamodule(tmp_path, strict=True)
    with pytest.raises(SystemExit):
        run_cli_entry(lambda cfg: list(dm.val_dataloader()), None)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {broken}: the file is empty (0 bytes)")
    assert "data.strict=true" in err and "Traceback" not in err and "worker" not in err

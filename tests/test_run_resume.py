"""A run cut in two and resumed ends exactly where the unbroken run ends.

Four real train.py runs on the synthetic data (TINY, 4 epochs, dropout 0.5 so that the global RNG matters,
one loader worker so that the worker prefetch meets the resumed sampler epoch, the per-step cosine schedule):
the unbroken run; a run stopped after 2 epochs (``trainer.max_steps``, as a killed job would stop at its last
checkpoint); that run resumed in place with ``ckpt_path=last``; a copy of it resumed into a new run dir with
``ckpt_path=<run>/checkpoints/last.ckpt``. Weights, optimizer state, schedule, RNG state, metrics and
predictions must be identical, not merely close.
"""

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from conftest import TINY, read_json, run_entry
from vidrec.checkpoint import resolve_resume_path
from vidrec.errors import CheckpointError
from vidrec.models import build_model, load_pretrained

ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # 2 shared cores: one intra-op thread per process is much faster
STEPS_PER_EPOCH = 3  # 24 training videos / batch 8
RECIPE = [*TINY, "trainer.max_epochs=4", "checkpoint.every_n_epochs=1", "model.net.dropout=0.5", "dataset.num_workers=1"]


def _train(run_dir, data_dir, *extra):
    return run_entry("train.py", *RECIPE, f"paths.data_dir={data_dir}", f"hydra.run.dir={run_dir}", *extra,
                     env=ONE_THREAD)


def _parallel(*calls):
    with ThreadPoolExecutor(len(calls)) as pool:
        return [f.result() for f in [pool.submit(fn, *args) for fn, *args in calls]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("resume")
    full, cut, moved = root / "full", root / "cut", root / "moved"
    _parallel((_train, full, data_dir), (_train, cut, data_dir, f"trainer.max_steps={2 * STEPS_PER_EPOCH}", "test=false"))
    cut_state = torch.load(cut / "checkpoints" / "last.ckpt", weights_only=True)
    copy = shutil.copytree(cut, root / "cut_copy")
    _parallel((_train, cut, data_dir, "ckpt_path=last"),
              (_train, moved, data_dir, f"ckpt_path={copy}/checkpoints/last.ckpt"))
    return {"full": full, "cut": cut, "moved": moved, "cut_state": cut_state}


def _ckpt(run):
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)


def _assert_same_tree(a, b, path="checkpoint"):
    """Tensors equal bit for bit, everything else equal, all the way down."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), path
    elif isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys {set(a) ^ set(b)}"
        for key in a:
            _assert_same_tree(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_tree(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


@pytest.mark.slow  # runs cut and resumed: make test-slow
def test_the_cut_run_stopped_after_two_epochs(runs):
    state = runs["cut_state"]
    assert state["epoch"] == 1 and state["global_step"] == 2 * STEPS_PER_EPOCH
    assert state["lr_schedulers"][0]["last_epoch"] == 2 * STEPS_PER_EPOCH
    assert any(k.startswith("RNGState") for k in state["callbacks"])


@pytest.mark.parametrize("resumed", ["cut", "moved"])
@pytest.mark.slow  # runs cut and resumed: make test-slow
def test_run_resumed_checkpoint_equals_the_unbroken_one(runs, resumed):
    full, other = _ckpt(runs["full"]), _ckpt(runs[resumed])
    assert (full["epoch"], full["global_step"]) == (other["epoch"], other["global_step"]) == (3, 4 * STEPS_PER_EPOCH)
    assert set(full["state_dict"]) == set(other["state_dict"])
    for name, tensor in full["state_dict"].items():
        assert torch.equal(tensor, other["state_dict"][name]), name
    _assert_same_tree(full["optimizer_states"], other["optimizer_states"], "optimizer_states")
    _assert_same_tree(full["lr_schedulers"], other["lr_schedulers"], "lr_schedulers")
    rng = next(k for k in full["callbacks"] if k.startswith("RNGState"))
    _assert_same_tree(full["callbacks"][rng], other["callbacks"][rng], "rng_state")


@pytest.mark.parametrize("resumed", ["cut", "moved"])
@pytest.mark.slow  # runs cut and resumed: make test-slow
def test_run_resumed_metrics_and_predictions_equal_the_unbroken_ones(runs, resumed):
    full, other = read_json(runs["full"] / "metrics.json"), read_json(runs[resumed] / "metrics.json")
    for key in ("val/top1", "val/top5", "val/loss", "train/loss", "train/top1", "test/top1", "test/top5",
                "test/mean_class_acc"):
        assert full[key] == other[key], key
    assert (runs["full"] / "predictions.csv").read_text() == (runs[resumed] / "predictions.csv").read_text()


@pytest.mark.slow  # runs cut and resumed: make test-slow
def test_run_resume_in_place_keeps_one_set_of_checkpoints(runs):
    names = sorted(p.name for p in (runs["cut"] / "checkpoints").glob("*.ckpt"))
    assert names[-5:] == ["epoch000.ckpt", "epoch001.ckpt", "epoch002.ckpt", "epoch003.ckpt", "last.ckpt"]
    assert not [n for n in names if "-v" in n]  # no epoch001-v1.ckpt: nothing was trained twice
    assert len([n for n in names if n.startswith("best-")]) == 1


@pytest.mark.slow  # runs cut and resumed: make test-slow
def test_run_resume_into_a_new_run_dir_tests_the_overall_best(runs):
    """The best checkpoint may be one written before the cut, in the old run dir: the test must use it."""
    full, moved = read_json(runs["full"] / "results.json"), read_json(runs["moved"] / "results.json")
    assert (full["checkpoint"].rsplit("/", 1)[-1]) == (moved["checkpoint"].rsplit("/", 1)[-1])
    assert full["top1"] == moved["top1"]


@pytest.mark.slow  # runs cut and resumed: make test-slow
def test_weights_export_loads_back_with_load_pretrained(runs, tmp_path):
    best = next((runs["full"] / "checkpoints").glob("best-*.ckpt"))
    out = tmp_path / "shared" / "tiny.pt"
    proc = subprocess.run([sys.executable, "-m", "vidrec.weights_export", str(best), str(out)],
                          capture_output=True, text=True, check=True)
    assert f"wrote {out}" in proc.stdout and f"python train.py model=r2plus1d model.depth=tiny model.pretrained={out}" in proc.stdout
    state = torch.load(out, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values()) and not any(k.startswith("model.") for k in state)
    info = json.loads((tmp_path / "shared" / "tiny.pt.json").read_text())
    assert info["model"] == "r2plus1d_tiny" and info["num_classes"] == 8 and len(info["labels"]) == 8
    assert info["clip"]["frames"] == 4 and len(info["mean"]) == 3 and info["source_checkpoint"] == str(best)

    model = build_model(info["model"], info["num_classes"])
    report = load_pretrained(model, out)
    assert not (report.missing or report.unexpected or report.mismatched)
    trained = torch.load(best, weights_only=True)["state_dict"]
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, trained[f"model.{name}"]), name


def test_weights_export_of_a_missing_checkpoint_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "vidrec.weights_export", str(tmp_path / "nope.ckpt")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith("error:") and "nope.ckpt" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_ckpt_path_auto_resumes_only_when_there_is_a_last_checkpoint(tmp_path):
    assert resolve_resume_path("auto", tmp_path) is None  # first start of a requeueable job
    with pytest.raises(CheckpointError, match="ckpt_path=last"):
        resolve_resume_path("last", tmp_path)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert resolve_resume_path("auto", tmp_path) == resolve_resume_path("last", tmp_path) == str(tmp_path / "checkpoints" / "last.ckpt")
    assert resolve_resume_path(str(tmp_path), "/elsewhere") == str(tmp_path / "checkpoints" / "last.ckpt")  # a run dir


@pytest.mark.slow  # runs cut and resumed: make test-slow
def test_resumed_run_keeps_its_whole_csv_log_and_draws_the_curves(runs):
    """Resumed into the same run dir, csv/metrics.csv holds the epochs before and after the cut (Lightning's own
    CSV logger would have deleted them); every step's train/loss is there although an epoch has fewer steps than
    trainer.log_every_n_steps; training_curves.png shows the whole run."""
    from vidrec.loggers import read_metrics

    for name in ("full", "cut"):
        rows = read_metrics(runs[name] / "csv" / "metrics.csv")
        assert sorted(int(r["epoch"]) for r in rows if "val/top1" in r) == [0, 1, 2, 3], name
        assert len([r for r in rows if "train/loss" in r]) == 4 * STEPS_PER_EPOCH, name
        assert (runs[name] / "training_curves.png").stat().st_size > 5000

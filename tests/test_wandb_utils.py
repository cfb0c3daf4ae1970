"""logger=wandb, offline: a 1-job multirun writes an offline W&B run with the resolved config, per-step losses and
learning rates, clip-level (val) and video-level (test) metrics, the confusion matrix and the model table row,
grouped under the sweep's name. The run file is read back record by record (no network, no wandb server)."""

import pytest

from conftest import TINY, read_json, run_entry
from vidrec.models import build_model
from vidrec.wandb_utils import read_offline_run

ENV = {"OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}


@pytest.fixture(scope="module")
def wandb_run(tmp_path_factory, data_dir):
    sweep = tmp_path_factory.mktemp("wandb_sweep")
    proc = run_entry("train.py", "-m", *TINY, "trainer.max_epochs=2", "trainer.log_every_n_steps=1", "logger=wandb",
              "logger.wandb.offline=true", "logger.wandb.project=vidrec-test", "logger.wandb.tags=[tiny,ci]",
              "logger.wandb.log_model=true", f"paths.data_dir={data_dir}", f"hydra.sweep.dir={sweep}", "seed=0", env=ENV)
    job = sweep / "0"
    offline = sorted((job / "wandb").glob("offline-run-*"))
    assert len(offline) == 1, list((job / "wandb").iterdir())
    assert "log_model needs an online run" in proc.stdout + proc.stderr  # offline: checkpoints stay local
    return sweep, job, offline[0], read_offline_run(offline[0])


def test_run_is_named_grouped_and_tagged(wandb_run):
    sweep, _, _, run = wandb_run
    assert run["project"] == "vidrec-test" and run["tags"] == ["tiny", "ci"]
    assert run["group"] == sweep.name and run["name"].startswith("0:")


def test_resolved_config_is_logged(wandb_run):
    _, job, _, run = wandb_run
    cfg = run["config"]
    assert cfg["model"]["net"]["name"] == "r2plus1d_tiny" and cfg["dataset"]["num_classes"] == 8
    assert cfg["optimizer"]["lr"] == 0.003 and cfg["trainer"]["max_epochs"] == 2
    assert cfg["paths"]["output_dir"] == str(job)  # resolved, not ${hydra:runtime.output_dir}


def test_history_has_losses_lr_and_both_metric_levels(wandb_run):
    _, _, _, run = wandb_run
    rows = run["history"]
    steps = [r for r in rows if "train/loss" in r]
    assert len(steps) == 6  # 2 epochs × 3 steps, logged every step
    lrs = [r["lr-AdamW"] for r in rows if "lr-AdamW" in r]
    assert len(lrs) == 6 and max(lrs) == pytest.approx(0.003) and lrs[0] < lrs[2]  # warm-up, then cosine decay
    assert len([r for r in rows if "val/top1" in r]) == 2  # clip-level, each epoch
    assert len([r for r in rows if "test/top1" in r]) == 1  # video-level, once


def test_summary_matches_the_run_metrics(wandb_run):
    _, job, _, run = wandb_run
    metrics, summary = read_json(job / "metrics.json"), run["summary"]
    for key in ("val/top1", "val/top5", "test/top1", "test/top5", "test/mean_class_acc"):
        assert summary[key] == pytest.approx(metrics[key]), key
    assert summary["model/params"] == sum(p.numel() for p in build_model("r2plus1d_tiny", 8).parameters())
    assert summary["model/gflops"] > 0


def test_confusion_matrix_and_model_table_are_files_of_the_run(wandb_run):
    _, _, offline, run = wandb_run
    images = [f for f in run["files"] if f.startswith("media/images/test/confusion_matrix")]
    tables = [f for f in run["files"] if f.startswith("media/table/model/table")]
    assert images and tables
    assert (offline / "files" / images[0]).stat().st_size > 1000
    assert '"r2plus1d_tiny"' in (offline / "files" / tables[0]).read_text()


def test_no_network_means_offline(monkeypatch):
    import socket

    from hydra.core.hydra_config import HydraConfig

    from vidrec import wandb_utils

    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)  # outside a Hydra job (another test may have set one)
    with socket.socket() as s:  # a local port nobody listens on: the connection is refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(wandb_utils, "WANDB_HOST", ("127.0.0.1", port))
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = wandb_utils.prepare_logger_config({"_target_": "pytorch_lightning.loggers.WandbLogger", "offline": False,
                                             "log_model": True, "group": None, "name": None})
    assert cfg["offline"] is True and cfg["log_model"] is False and cfg["group"] is None

"""Sweeps: a 2-job multirun and a 2-trial Optuna search on the synthetic data end with a summary of every job;
the documented sweep commands start as typed (no ``hydra.sweep.dir``: Hydra's default sweep dir under the folder the
command runs in); the SLURM launcher config composes with the DDP layout derived from the trainer config."""

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import REPO, TINY, read_json, run_entry
from vidrec.sweep import collect_jobs, summary_table

ONE_THREAD = {"OMP_NUM_THREADS": "1"}
SWEEP = [*TINY, "test=false"]


def _summary_rows(sweep_dir):
    with open(sweep_dir / "summary.csv") as f:
        return list(csv.DictReader(f))


def only_sweep_dir(root: Path) -> Path:
    """The one sweep dir Hydra made under ``root`` (``logs/train/multiruns/<time>``)."""
    found = sorted((root / "logs" / "train" / "multiruns").glob("*"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def multirun(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("multirun")
    proc = run_entry("train.py", "-m", *SWEEP, f"paths.data_dir={data_dir}", "optimizer.lr=0.01,0.001", cwd=root,
                     env=ONE_THREAD)
    return only_sweep_dir(root), proc


@pytest.fixture(scope="module")
def optuna_sweep(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("optuna")
    proc = run_entry("train.py", "hparams_search=optuna", "hydra.sweeper.n_trials=2", *SWEEP, f"paths.data_dir={data_dir}",
                     cwd=root, env=ONE_THREAD)
    return only_sweep_dir(root), proc


def start_as_typed(command: str, root: Path, first_job_started, timeout: float = 240.0) -> str:
    """Run a documented command exactly as typed (``python train.py ...``) in an empty folder until
    ``first_job_started(root)`` holds, then stop it; returns its stderr. A start-up failure fails the test."""
    args = command.split()
    assert args[:2] == ["python", "train.py"]
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), *args[2:]], cwd=root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None and not first_job_started(root):
            time.sleep(1)
        started = first_job_started(root)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert started, f"{command} did not start its first job:\n{err[-3000:]}"
    assert "Traceback" not in err, err[-3000:]
    return err


def first_job_training(root: Path) -> bool:
    """The sweep's job 0 has built its model and data and starts training (its start-up line is in its log)."""
    logs = list((root / "logs" / "train" / "multiruns").glob("*/0/train.log"))
    return bool(logs) and "effective batch" in logs[0].read_text()


@pytest.mark.slow
@pytest.mark.parametrize("command", ["python train.py -m optimizer.lr=0.1,0.01 model.depth=18,34",
                                     "python train.py hparams_search=optuna hydra.sweeper.n_trials=30"])
def test_documented_sweep_commands_start_as_typed(command, tmp_path):
    """docs/training.md's sweeps, typed as documented: the first job trains the network the command asks for
    (the tests above run whole sweeps with tiny overrides)."""
    start_as_typed(command, tmp_path, first_job_training, timeout=400)
    sweep = only_sweep_dir(tmp_path)
    cfg = OmegaConf.load(sweep / "0" / ".hydra" / "config.yaml")
    if "model.depth" in command:
        assert cfg.model.net.name == "r2plus1d_18" and cfg.optimizer.lr == 0.1
    else:
        assert 1e-4 <= cfg.optimizer.lr <= 1e-1


def test_multirun_jobs_have_their_own_dirs(multirun):
    sweep, _ = multirun
    for job, lr in (("0", 0.01), ("1", 0.001)):
        assert (sweep / job / "metrics.json").is_file() and (sweep / job / "checkpoints" / "last.ckpt").is_file()
        assert yaml.safe_load((sweep / job / ".hydra" / "config.yaml").read_text())["optimizer"]["lr"] == lr


def test_multirun_summary_lists_every_job(multirun):
    sweep, proc = multirun
    rows = _summary_rows(sweep)
    assert [r["job"] for r in rows] == ["0", "1"] and [r["optimizer.lr"] for r in rows] == ["0.01", "0.001"]
    for row in rows:
        metrics = read_json(sweep / row["job"] / "metrics.json")
        assert float(row["val/top1"]) == metrics["val/top1"] and row["status"] == "ok"
    md = (sweep / "summary.md").read_text()
    assert "| job | optimizer.lr | val/top1 |" in md and "best by val/top1" in md
    assert "| job | optimizer.lr | val/top1 |" in proc.stdout  # printed at the end of the sweep


def test_optuna_search_maximises_val_top1(optuna_sweep):
    sweep, _ = optuna_sweep
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    trials = [read_json(sweep / job / "metrics.json")["val/top1"] for job in ("0", "1")]
    assert result["best_value"] == max(trials)
    assert set(result["best_params"]) == {"optimizer.lr", "optimizer.weight_decay", "model.net.dropout"}
    for job in ("0", "1"):
        cfg = yaml.safe_load((sweep / job / ".hydra" / "config.yaml").read_text())
        assert 1e-4 <= cfg["optimizer"]["lr"] <= 1e-1 and 1e-6 <= cfg["optimizer"]["weight_decay"] <= 1e-2
        assert 0.0 <= cfg["model"]["net"]["dropout"] <= 0.6
    rows = _summary_rows(sweep)
    assert len(rows) == 2 and {"optimizer.lr", "optimizer.weight_decay", "model.net.dropout", "val/top1"} <= set(rows[0])


def test_summary_cli_and_unfinished_jobs(multirun, tmp_path):
    sweep, _ = multirun
    out = subprocess.run([sys.executable, "-m", "vidrec.sweep", str(sweep)], capture_output=True, text=True, check=True).stdout
    assert "| 0 | 0.01 |" in out
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "metrics.json").write_text(json.dumps({"val/top1": 0.5, "_levels": {}}))
    for job, lr in (("0", "0.1"), ("1", "0.2")):
        (tmp_path / job / ".hydra").mkdir(parents=True)
        (tmp_path / job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"optimizer.lr={lr}", "seed=1"]))
    header, rows, note = summary_table(collect_jobs(tmp_path), "val/top1")
    assert header == ["job", "optimizer.lr", "val/top1", "status"]
    assert rows[0] == ["0", "0.1", 0.5, "ok"] and rows[1][:3] == ["1", "0.2", ""] and "no metrics.json" in rows[1][3]
    assert "common overrides: seed=1" in note and "best by val/top1 (max): job 0" in note


def test_slurm_launcher_config_composes():
    proc = run_entry("train.py", "hydra/launcher=slurm", "--cfg", "hydra")
    assert "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher" in proc.stdout
    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2",
                                          "hydra.launcher.partition=gpu", "hydra.sweep.dir=/tmp/sweep"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)  # one task per GPU
    assert launcher.partition == "gpu" and launcher.timeout_min > 0 and launcher.max_num_timeout > 0
    assert cfg.trainer.strategy == "ddp"
    params = instantiate(launcher).params  # what submitit receives (resolved against the job config)
    assert (params["nodes"], params["tasks_per_node"], params["gpus_per_node"], params["partition"]) == (2, 4, 4, "gpu")

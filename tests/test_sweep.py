"""Sweeps: a 2-job multirun and a 2-trial Optuna search on the synthetic data end with a summary of every job;
the SLURM launcher config composes with the DDP layout derived from the trainer config."""

import csv
import json
import subprocess
import sys

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from conftest import REPO, TINY, read_json, run_entry
from vidrec.sweep import collect_jobs, summary_table

ONE_THREAD = {"OMP_NUM_THREADS": "1"}
SWEEP = [*TINY, "test=false"]


def _summary_rows(sweep_dir):
    with open(sweep_dir / "summary.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def multirun(tmp_path_factory, data_dir):
    sweep = tmp_path_factory.mktemp("multirun")
    proc = run_entry("train.py", "-m", *SWEEP, f"paths.data_dir={data_dir}", f"hydra.sweep.dir={sweep}",
                     "optimizer.lr=0.01,0.001", env=ONE_THREAD)
    return sweep, proc


@pytest.fixture(scope="module")
def optuna_sweep(tmp_path_factory, data_dir):
    sweep = tmp_path_factory.mktemp("optuna")
    proc = run_entry("train.py", "hparams_search=optuna", "hydra.sweeper.n_trials=2", *SWEEP, f"paths.data_dir={data_dir}",
                     f"hydra.sweep.dir={sweep}", env=ONE_THREAD)
    return sweep, proc


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

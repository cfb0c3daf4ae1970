"""Precision and speed options: bf16-mixed on CPU trains, with channels_last_3d, torch.compile (eager backend),
gradient accumulation and clipping, and the linear learning-rate scaling rule; the start-up line says so."""

import math

import pytest
import torch

from conftest import TINY, read_json, run_entry
from vidrec.compute import apply_scaling, scaled_lr, trainer_config
from vidrec.errors import ConfigError

ONE_THREAD = {"OMP_NUM_THREADS": "1"}
OPTIONS = ["trainer=cpu", "trainer.precision=bf16-mixed", "model.channels_last=true", "model.compile={backend:eager}",
           "trainer.accumulate_grad_batches=2", "trainer.gradient_clip_val=1.0", "optimizer_scaling.rule=linear",
           "optimizer_scaling.base_batch_size=4"]


@pytest.fixture(scope="module")
def bf16_run(tmp_path_factory, data_dir):
    run = tmp_path_factory.mktemp("bf16")
    proc = run_entry("train.py", *TINY, *OPTIONS, f"paths.data_dir={data_dir}", f"hydra.run.dir={run}", env=ONE_THREAD)
    return run, proc.stdout + proc.stderr


def test_bf16_mixed_trains_on_cpu(bf16_run):
    run, out = bf16_run
    assert "Using bfloat16 Automatic Mixed Precision" in out
    metrics = read_json(run / "metrics.json")
    assert math.isfinite(metrics["train/loss"]) and math.isfinite(metrics["val/loss"])
    assert 0 <= metrics["test/top1"] <= 1
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 2  # 3 batches, 2 accumulated per step: steps after batches 2 and 3
    assert all(torch.isfinite(t).all() for t in ckpt["state_dict"].values() if t.is_floating_point())


def test_startup_line_shows_batch_lr_and_options(bf16_run):
    _, out = bf16_run
    line = next(ln for ln in out.splitlines() if "compute:" in ln)
    for part in ["effective batch 16 = 8 × 1 process(es) × 2 accumulation", "lr 0.012 = 0.003 × 16/4 (linear scaling rule",
                 "precision bf16-mixed", "grad clip 1.0 (norm)", "channels_last_3d on", "torch.compile {'backend': 'eager'}"]:
        assert part in line, part


def test_options_reach_the_model_and_the_optimizer(bf16_run):
    run, _ = bf16_run
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    conv = ckpt["state_dict"]["model.stem.0.weight"]
    assert conv.dim() == 5 and conv.is_contiguous(memory_format=torch.channels_last_3d) and not conv.is_contiguous()
    assert not any("_orig_mod" in k for k in ckpt["state_dict"])  # compiled in place: plain keys
    cfg = ckpt["hyper_parameters"]["config"]
    assert cfg["optimizer"]["lr"] == pytest.approx(0.012) and cfg["optimizer_scaling"]["base_lr"] == 0.003
    assert ckpt["optimizer_states"][0]["param_groups"][0]["initial_lr"] == pytest.approx(0.012)


def _cfg(rule="linear", base=256, lr=0.1, batch=32, accumulate=1):
    return {"optimizer": {"lr": lr}, "optimizer_scaling": {"rule": rule, "base_batch_size": base},
            "dataset": {"batch_size": batch}, "trainer": {"accumulate_grad_batches": accumulate}}


def test_linear_scaling_rule():
    assert scaled_lr(_cfg(), world_size=8)[0] == pytest.approx(0.1)  # 32 × 8 = 256
    assert scaled_lr(_cfg(accumulate=2), world_size=8)[0] == pytest.approx(0.2)
    assert scaled_lr(_cfg(rule="none"), world_size=8) == (0.1, "lr 0.1 (scaling rule none)")
    cfg = _cfg(base=64, batch=8)
    apply_scaling(cfg, world_size=2)
    assert cfg["optimizer"]["lr"] == pytest.approx(0.025) and cfg["optimizer_scaling"]["base_lr"] == 0.1


@pytest.mark.parametrize("cfg,match", [(_cfg(rule="sqrt"), "optimizer_scaling.rule=sqrt"),
                                       (_cfg(base=None), "base_batch_size=None")])
def test_bad_scaling_config_is_one_clear_error(cfg, match):
    with pytest.raises(ConfigError, match=match):
        scaled_lr(cfg, world_size=1)


def test_sync_batchnorm_is_dropped_on_cpu_only():
    assert trainer_config({"accelerator": "cpu", "sync_batchnorm": True})["sync_batchnorm"] is False
    assert trainer_config({"accelerator": "gpu", "sync_batchnorm": True})["sync_batchnorm"] is True

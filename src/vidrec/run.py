"""What train.py and eval.py do: build model, data, module and trainer from a config, run, write results."""

from __future__ import annotations

import copy
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from vidrec.checkpoint import AtomicCheckpointIO, load_checkpoint, resolve_ckpt_path
from vidrec.data.datamodule import VideoDataModule
from vidrec.errors import CheckpointError, ConfigError
from vidrec.evaluation import write_eval_outputs, write_skipped
from vidrec.io import atomic_write_json
from vidrec.models import load_pretrained, model_info
from vidrec.module import VideoClassifier

log = logging.getLogger("vidrec")
torch.serialization.add_safe_globals([Counter])  # MultiStepLR keeps its milestones in a Counter


def _container(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else copy.deepcopy(node)


def build_network(model_cfg: dict[str, Any]) -> torch.nn.Module:
    """Instantiate ``model.net``, then load ``model.pretrained`` and apply ``model.freeze``."""
    from vidrec.models.finetune import freeze

    net = hydra.utils.instantiate(model_cfg["net"])
    if model_cfg.get("pretrained"):
        load_pretrained(net, model_cfg["pretrained"], skip_head=True)
    freeze(net, str(model_cfg.get("freeze") or "none"))
    return net


def build_datamodule(cfg: dict[str, Any]) -> VideoDataModule:
    info = model_info(cfg["model"]["net"]["name"])
    return VideoDataModule(cfg["dataset"], cfg.get("data"), seed=int(cfg.get("seed", 0)), mean=info.mean, std=info.std)


def build_module(cfg: dict[str, Any], net: torch.nn.Module) -> VideoClassifier:
    sched_cfg = dict(cfg.get("scheduler") or {})
    interval = sched_cfg.pop("interval", "epoch")
    return VideoClassifier(
        model=net,
        num_classes=int(cfg["dataset"]["num_classes"]),
        optimizer=hydra.utils.instantiate(cfg["optimizer"]) if cfg.get("optimizer") else None,
        scheduler=hydra.utils.instantiate(sched_cfg) if sched_cfg.get("_target_") else None,
        scheduler_interval=interval,
        label_smoothing=float(cfg.get("loss", {}).get("label_smoothing", 0.0)),
        views_per_batch=int(cfg["dataset"].get("test", {}).get("views_per_batch") or 30),
        head_lr_mult=float(cfg["model"].get("head_lr_mult", 1.0)),
        max_skip_ratio=float(cfg.get("data", {}).get("max_skip_ratio", 0.1)),
        config=cfg,
    )


def build_trainer(cfg: dict[str, Any], with_callbacks: bool = True) -> pl.Trainer:
    callbacks = [hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values()] if with_callbacks else []
    loggers = [hydra.utils.instantiate(c) for c in (cfg.get("logger") or {}).values()]
    return hydra.utils.instantiate(
        cfg["trainer"], callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()]
    )


def _startup_line(cfg: dict[str, Any], dm: VideoDataModule, trainer: pl.Trainer) -> str:
    d = cfg["dataset"]
    eff = int(d["batch_size"]) * trainer.world_size * int(cfg["trainer"].get("accumulate_grad_batches", 1))
    return (
        f"model {cfg['model']['net']['name']} | data {dm.describe()} | clips {d['clip']['frames']}×"
        f"{d['clip']['sample_rate']} @ {d['train']['crop_size']}px | batch {d['batch_size']} × {trainer.world_size} "
        f"process(es) × {cfg['trainer'].get('accumulate_grad_batches', 1)} accumulation = {eff} | "
        f"optimizer lr {cfg['optimizer'].get('lr')} | {cfg['trainer']['max_epochs']} epochs"
    )


def train(dcfg: DictConfig) -> dict[str, float]:
    """Fit, then (``test=true``) run the multi-view test on the best checkpoint; write ``metrics.json``."""
    cfg = _container(dcfg)
    out = Path(cfg["paths"]["output_dir"])
    pl.seed_everything(int(cfg["seed"]), workers=True)
    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.setup("fit")
    module = build_module(cfg, build_network(cfg["model"]))
    trainer = build_trainer(cfg)
    log.info(_startup_line(cfg, dm, trainer))
    trainer.fit(module, datamodule=dm, ckpt_path=resolve_ckpt_path(cfg.get("ckpt_path"), out))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("val/", "train/"))}
    if cfg.get("test") and not cfg["trainer"].get("fast_dev_run"):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        dm.setup("test")
        trainer.test(module, datamodule=dm, ckpt_path=best or None, verbose=False)
        if trainer.is_global_zero:
            metrics.update(_test_outputs(cfg, dm, module, out, best))
    if trainer.is_global_zero:
        write_skipped(out, module.skipped, dm.missing)
        atomic_write_json(out / "metrics.json", {**metrics, **_levels(cfg)})
        _report(metrics, out)
    return metrics


def _levels(cfg: dict[str, Any]) -> dict[str, Any]:
    t = cfg["dataset"].get("test", {})
    return {
        "_levels": {
            "train": "clip-level (1 random clip per video, augmented)",
            "val": "clip-level (1 centre clip × 1 centre crop per video)",
            "test": f"video-level (mean softmax over {t.get('num_clips', 1)} clips × {t.get('num_crops', 1)} crops)",
        }
    }


def _test_outputs(cfg: dict[str, Any], dm: VideoDataModule, module: VideoClassifier, out: Path, ckpt: str) -> dict[str, float]:
    results = write_eval_outputs(out, cfg, dm, module, ckpt)
    return {f"test/{k}": results[k] for k in ("top1", "top5", "mean_class_acc")}


def _report(metrics: dict[str, float], out: Path) -> None:
    shown = {k: metrics[k] for k in ("val/top1", "val/top5", "test/top1", "test/top5", "test/mean_class_acc") if k in metrics}
    text = " | ".join(f"{k} {v:.4f}" for k, v in shown.items())
    log.info("%s  (val = clip-level, test = video-level)", text)
    log.info("run dir: %s  (metrics in %s)", out, out / "metrics.json")
    print(f"\n{text}\nrun dir: {out}\nmetrics: {out / 'metrics.json'}", flush=True)


def config_from_checkpoint(ckpt_path: str) -> dict[str, Any]:
    """The resolved training config stored in a vidrec checkpoint."""
    ckpt = load_checkpoint(ckpt_path)
    cfg = (ckpt.get("hyper_parameters") or {}).get("config")
    if not cfg:
        raise CheckpointError(f"{ckpt_path}: no vidrec config in this checkpoint; was it written by train.py?")
    return cfg


def eval_config(dcfg: DictConfig) -> dict[str, Any]:
    """Merge eval.yaml (``test.*``, ``data.*``, ``dataset``, trainer, paths) into the checkpoint's config."""
    ecfg = _container(dcfg)
    ckpt_path = resolve_ckpt_path(ecfg["ckpt_path"], ecfg["paths"]["output_dir"])
    cfg = config_from_checkpoint(ckpt_path)
    if ecfg.get("dataset"):
        if int(ecfg["dataset"]["num_classes"]) != int(cfg["dataset"]["num_classes"]):
            raise ConfigError(
                f"dataset={ecfg['dataset'].get('name')} has {ecfg['dataset']['num_classes']} classes but the checkpoint "
                f"was trained for {cfg['dataset']['num_classes']}"
            )
        cfg["dataset"] = ecfg["dataset"]
    cfg["dataset"].setdefault("test", {}).update({k: v for k, v in ecfg["test"].items() if v is not None})
    cfg.setdefault("data", {}).update({k: v for k, v in ecfg["data"].items() if v is not None})
    cfg["trainer"], cfg["paths"], cfg["ckpt_path"] = ecfg["trainer"], ecfg["paths"], ckpt_path
    cfg["model"]["pretrained"] = None  # the checkpoint holds the weights
    cfg["logger"], cfg["callbacks"] = {}, {}
    return cfg


def evaluate(dcfg: DictConfig) -> dict[str, Any]:
    """Multi-view test of a checkpoint; writes results.json, predictions.csv, per_class.csv, confusion_matrix.png."""
    cfg = eval_config(dcfg)
    out = Path(cfg["paths"]["output_dir"])
    pl.seed_everything(int(cfg.get("seed", 0)), workers=True)
    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.setup("test")
    module = build_module(cfg, hydra.utils.instantiate(cfg["model"]["net"]))
    trainer = build_trainer(cfg, with_callbacks=False)
    trainer.test(module, datamodule=dm, ckpt_path=cfg["ckpt_path"], verbose=False)
    results: dict[str, Any] = {}
    if trainer.is_global_zero:
        results = write_eval_outputs(out, cfg, dm, module, cfg["ckpt_path"])
        write_skipped(out, module.skipped, dm.missing)
        metrics = {f"test/{k}": results[k] for k in ("top1", "top5", "mean_class_acc")}
        atomic_write_json(out / "metrics.json", {**metrics, **_levels(cfg)})
        _report(metrics, out)
    return results

"""What train.py and eval.py do: build model, data, module and trainer from a config, run, write results."""

from __future__ import annotations

import contextlib
import copy
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from vidrec import wandb_utils
from vidrec.checkpoint import (
    AtomicCheckpointIO,
    check_model_fits,
    load_checkpoint,
    resolve_ckpt_path,
    resolve_resume_path,
    run_config,
)
from vidrec.data.datamodule import VideoDataModule
from vidrec.errors import ConfigError
from vidrec.evaluation import write_eval_outputs, write_skipped
from vidrec.io import atomic_write_json
from vidrec.models import load_pretrained, model_info
from vidrec.module import VideoClassifier
from vidrec.training import (
    apply_model_options,
    apply_scaling,
    describe_compute,
    resolve_compute,
    trainer_config,
)

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
    """The Lightning trainer of ``cfg.trainer`` with the configured callbacks and loggers, writing checkpoints atomically."""
    callbacks = [hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values()] if with_callbacks else []
    loggers = [hydra.utils.instantiate(wandb_utils.prepare_logger_config(c) if wandb_utils.is_wandb_logger(c) else c)
               for c in (cfg.get("logger") or {}).values()]
    if not loggers:  # `logger=none`: a learning-rate monitor has nowhere to write
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.LearningRateMonitor)]
    return hydra.utils.instantiate(
        trainer_config(cfg["trainer"]), callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()]
    )


def _startup_line(cfg: dict[str, Any], dm: VideoDataModule, trainer: pl.Trainer, lr_text: str,
                  precision_reason: str | None = None) -> str:
    """What the run trains, on what, and how: model, data, clips, processes, effective batch, lr, precision."""
    d = cfg["dataset"]
    return (
        f"model {cfg['model']['net']['name']} | data {dm.describe()} | clips {d['clip']['frames']}×"
        f"{d['clip']['sample_rate']} @ {d['train']['crop_size']}px | {cfg['trainer']['max_epochs']} epochs\n"
        f"compute: {describe_compute(cfg, trainer.world_size, lr_text, precision_reason)}"
    )


def train(dcfg: DictConfig) -> dict[str, float]:
    """Fit, then (``test=true``) run the multi-view test on the best checkpoint; write ``metrics.json``."""
    cfg = _container(dcfg)
    out = Path(cfg["paths"]["output_dir"])
    pl.seed_everything(int(cfg["seed"]), workers=True)
    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.setup("fit")
    precision_reason = resolve_compute(cfg)
    trainer = build_trainer(cfg)
    lr_text = apply_scaling(cfg, trainer.world_size)
    module = build_module(cfg, apply_model_options(build_network(cfg["model"]), cfg["model"]))
    for line in _startup_line(cfg, dm, trainer, lr_text, precision_reason).splitlines():
        log.info(line)
    wandb_utils.log_config(trainer, cfg)
    ckpt_path = resolve_resume_path(cfg.get("ckpt_path"), out)
    if ckpt_path:
        log.info("resuming from %s", ckpt_path)
    check_model_fits(module.model, ckpt_path, cfg["model"]["net"]["name"])
    with _skips_listed_on_failure(trainer, out, module, dm):
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("val/", "train/"))}
    if cfg.get("test") and not cfg["trainer"].get("fast_dev_run"):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        dm.setup("test")
        with _skips_listed_on_failure(trainer, out, module, dm):
            trainer.test(module, datamodule=dm, ckpt_path=best or None, verbose=False)
        if trainer.is_global_zero:
            metrics.update(_test_outputs(cfg, dm, module, out, best))
    if trainer.is_global_zero:
        write_skipped(out, module.skipped, dm.missing)
        atomic_write_json(out / "metrics.json", {**metrics, **_levels(cfg)})
        _report(metrics, out)
    wandb_utils.log_run_end(trainer, cfg, module.model, out, metrics)
    wandb_utils.finish(trainer)
    return metrics


@contextlib.contextmanager
def _skips_listed_on_failure(trainer: pl.Trainer, out: Path, module: VideoClassifier, dm: VideoDataModule) -> Iterator[None]:
    """When a run stops (e.g. more unreadable videos than ``data.max_skip_ratio``), still write skipped_videos.csv."""
    try:
        yield
    except BaseException:
        if trainer.is_global_zero:
            write_skipped(out, module.skipped, dm.missing)
        raise


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
    return run_config(load_checkpoint(ckpt_path), ckpt_path)


def _check_optional_choice(group: str) -> None:
    """eval.yaml loads ``dataset`` as an ``optional`` group, for which Hydra silently skips a name that has no
    config (``eval.py dataset=ucf`` would evaluate on the checkpoint's dataset): refuse such a name instead."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    name = HydraConfig.get().runtime.choices.get(group)
    options = GlobalHydra.instance().config_loader().get_group_options(group)
    if name and name not in options:
        raise ConfigError(f"{group}={name}: no such {group} config; available: {', '.join(options)}")


def eval_config(dcfg: DictConfig) -> dict[str, Any]:
    """Merge eval.yaml (``test.*``, ``data.*``, ``dataset``, trainer, paths) into the checkpoint's config."""
    _check_optional_choice("dataset")
    ignored = ("model", "optimizer", "scheduler")  # the checkpoint's own; eval.yaml composes them for dataset presets
    ecfg = _container(OmegaConf.masked_copy(dcfg, [k for k in dcfg if k not in ignored]))
    ckpt_path = resolve_ckpt_path(ecfg["ckpt_path"], ecfg["paths"]["output_dir"])
    cfg = config_from_checkpoint(ckpt_path)
    override = ecfg.get("dataset") or {}
    if "name" in override:  # dataset=<name>: a whole dataset config replaces the checkpoint's
        cfg["dataset"] = override
    else:  # +dataset.<key>=<value>: single keys change the checkpoint's dataset config
        cfg["dataset"] = OmegaConf.to_container(OmegaConf.merge(cfg["dataset"], override))
    if int(cfg["dataset"]["num_classes"]) != int(cfg["model"]["net"]["num_classes"]):
        raise ConfigError(
            f"dataset {cfg['dataset'].get('name')} has {cfg['dataset']['num_classes']} classes but the checkpoint "
            f"{ckpt_path} was trained for {cfg['model']['net']['num_classes']}; evaluate it on a dataset with the same classes"
        )
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
    check_model_fits(module.model, cfg["ckpt_path"], cfg["model"]["net"]["name"])
    with _skips_listed_on_failure(trainer, out, module, dm):
        trainer.test(module, datamodule=dm, ckpt_path=cfg["ckpt_path"], verbose=False)
    results: dict[str, Any] = {}
    if trainer.is_global_zero:
        results = write_eval_outputs(out, cfg, dm, module, cfg["ckpt_path"])
        write_skipped(out, module.skipped, dm.missing)
        metrics = {f"test/{k}": results[k] for k in ("top1", "top5", "mean_class_acc")}
        atomic_write_json(out / "metrics.json", {**metrics, **_levels(cfg)})
        _report(metrics, out)
    return results

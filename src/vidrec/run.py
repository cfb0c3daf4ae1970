"""What train.py and eval.py do: build model, data, module and trainer from a config, run, write results."""

from __future__ import annotations

import copy
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from vidrec import wandb_utils
from vidrec.callbacks import DataWait
from vidrec.checkpoint import (
    AtomicCheckpointIO,
    check_model_fits,
    load_checkpoint,
    resolve_ckpt_path,
    resolve_resume_path,
    run_config,
    scored_state,
)
from vidrec.compute import apply_scaling, describe_compute, resolve_compute, trainer_config
from vidrec.config import check_arguments
from vidrec.data.datamodule import VideoDataModule
from vidrec.data.spec import DataSpec, describe_views
from vidrec.errors import ConfigError
from vidrec.evaluation import Receipt, skips_listed_on_failure, test_stage, write_skipped
from vidrec.files import atomic_write_json
from vidrec.loggers import curves_of, plot_curves
from vidrec.models import load_pretrained, model_info
from vidrec.models.complexity import count_params, gmacs
from vidrec.module import VideoClassifier
from vidrec.precision import INFERENCE_PRECISION
from vidrec.protocol import (
    FINE_TUNING_KEYS,
    apply_protocol,
    command_line_keys,
    command_line_overrides,
    with_weights_arch,
)

log = logging.getLogger("vidrec")
TEST_METRICS = ("top1", "top5", "mean_class_acc")
torch.serialization.add_safe_globals([Counter])  # MultiStepLR keeps its milestones in a Counter


def _container(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else copy.deepcopy(node)


def build_datamodule(cfg: dict[str, Any]) -> VideoDataModule:
    """The data module of a run config: its typed data spec, normalised with the model's statistics."""
    info = model_info(cfg["model"]["net"]["name"])
    spec = DataSpec.from_config(cfg["dataset"], cfg.get("data"))
    return VideoDataModule(spec, info.mean, info.std, seed=int(cfg.get("seed", 0)))


def build_module(cfg: dict[str, Any], spec: DataSpec) -> VideoClassifier:
    """The LightningModule of ``cfg.model`` (its ``_target_``, with ``net`` built first), given the optimizer and
    scheduler partials, the test chunk size and the skip policy from the other groups."""
    for group in ("optimizer", "scheduler"):
        check_arguments(cfg.get(group), group)
    model = dict(cfg["model"])
    target = hydra.utils.get_class(model.pop("_target_"))
    model["net"] = cfg["model"]["net"] = with_weights_arch(model["net"], model.get("pretrained"), command_line_overrides())
    net = hydra.utils.instantiate(model.pop("net"))
    scheduler = cfg.get("scheduler") or {}
    return target(
        net=net,
        **model,
        optimizer=hydra.utils.instantiate(cfg["optimizer"]) if cfg.get("optimizer") else None,
        scheduler=hydra.utils.instantiate(scheduler) if scheduler.get("_target_") else None,
        views_per_batch=spec.dataset.test.views_per_batch,
        max_skip_ratio=spec.data.max_skip_ratio,
        fully_conv_test=spec.dataset.test.fully_conv,
        config=cfg,
    )


def build_trainer(cfg: dict[str, Any], with_callbacks: bool = True) -> pl.Trainer:
    """The Lightning trainer of ``cfg.trainer`` with the configured callbacks and loggers, writing checkpoints
    atomically; always with a :class:`~vidrec.callbacks.DataWait` (the configured one, else a default one)."""
    callbacks = [hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values()] if with_callbacks else []
    if not any(isinstance(c, DataWait) for c in callbacks):
        callbacks.append(DataWait())
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
    d, name = dm.spec.dataset, cfg["model"]["net"]["name"]
    size = f"{count_params(name, d.num_classes) / 1e6:.1f} M parameters, {gmacs(name, d.clip.frames, d.train.crop_size):.2f} GFLOPs a clip"
    return (
        f"model {name} ({size}) | data {dm.describe()} | clips {d.clip.frames}×"
        f"{d.clip.sample_rate} @ {d.train.crop_size}px | {cfg['trainer']['max_epochs']} epochs\n"
        f"compute: {describe_compute(cfg, trainer.world_size, lr_text, precision_reason)}"
    )


def train(dcfg: DictConfig) -> dict[str, float]:
    """Fit, then (``test=true``) run the multi-view test on the best checkpoint; write ``metrics.json``."""
    cfg = _container(dcfg)
    out = Path(cfg["paths"]["output_dir"])
    pl.seed_everything(int(cfg["seed"]), workers=True)
    spec = DataSpec.from_config(cfg["dataset"], cfg.get("data"))  # bad data settings stop the run before any work
    precision_reason = resolve_compute(cfg)  # trainer.precision=auto: the mode this device trains well in
    trainer = build_trainer(cfg)
    lr_text = apply_scaling(cfg, trainer.world_size)
    module = build_module(cfg, spec)
    # fine-tuning released weights: their input statistics and clip, unless the command line sets them
    cfg["dataset"], _ = apply_protocol(cfg["dataset"], getattr(module.model, "pretrained_cfg", None),
                                       command_line_keys(), FINE_TUNING_KEYS)
    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.setup("fit")
    module.set_input_stats(dm.mean, dm.std)
    for line in _startup_line(cfg, dm, trainer, lr_text, precision_reason).splitlines():
        log.info(line)
    wandb_utils.log_config(trainer, cfg)
    ckpt_path = resolve_resume_path(cfg.get("ckpt_path"), out)
    if ckpt_path:
        log.info("resuming from %s", ckpt_path)
    try:
        with skips_listed_on_failure(trainer, out, module, dm):
            trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    except SystemExit:  # Lightning's answer to Ctrl-C: say how to go on
        if trainer.interrupted and trainer.is_global_zero:
            _draw_curves(trainer, out)
            print(f"\ninterrupted; resume with:\n  {resume_command(out)}", file=sys.stderr, flush=True)
        raise
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("val/", "train/"))}
    tested = bool(cfg.get("test")) and not cfg["trainer"].get("fast_dev_run")
    if tested:  # the test stage also lists the skipped videos of every stage
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        results = test_stage(trainer, module, dm, out, best or None, ckpt_path=best or None)
        metrics.update({f"test/{k}": results[k] for k in TEST_METRICS if k in results})
    if trainer.is_global_zero:
        if not tested:
            write_skipped(out, module.skipped, dm.missing)
        _draw_curves(trainer, out)
        _finish(out, metrics, dm.spec, {"val": f"epoch {trainer.current_epoch - 1}, the last",
                                        "test": Path(best).name if tested and best else None})
    wandb_utils.log_run_end(trainer, cfg, module.model, out, metrics)
    wandb_utils.finish(trainer)
    return metrics


def _draw_curves(trainer: pl.Trainer, out: Path) -> None:
    """training_curves.png from the run's CSV log (the whole run, also after a resume)."""
    metrics_csv = curves_of(trainer)
    if metrics_csv is not None and plot_curves(metrics_csv, out / "training_curves.png", title=out.name):
        log.info("training curves: %s", out / "training_curves.png")


def resume_command(out: Path) -> str:
    """The command that resumes this run: its own overrides, then ``ckpt_path=last hydra.run.dir=<out>``."""
    import shlex

    from hydra.core.hydra_config import HydraConfig

    given = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    kept = [o for o in given if not o.startswith(("ckpt_path=", "hydra.run.dir="))]
    return " ".join(["python train.py", *map(shlex.quote, kept), "ckpt_path=last", shlex.quote(f"hydra.run.dir={out}")])


def _finish(out: Path, metrics: dict[str, float], spec: DataSpec, sources: dict[str, str | None]) -> None:
    """Write metrics.json (with what each level means and which weights each comes from) and print the final
    lines once (the log file gets them too)."""
    levels = {
        "train": "clip-level (1 random clip per video, augmented)",
        "val": "clip-level (1 centre clip × 1 centre crop per video)",
        "test": f"video-level (mean softmax over {describe_views(spec.protocol())})",
    }
    atomic_write_json(out / "metrics.json", {**metrics, "_levels": levels, "_weights": sources})
    shown = {k: metrics[k] for k in ("val/top1", "val/top5", "test/top1", "test/top5", "test/mean_class_acc") if k in metrics}
    text = " | ".join(f"{k} {v:.4f}" for k, v in shown.items())
    where = "; ".join(f"{level} = {levels[level].split(' (')[0]}" + (f", {sources[level]}" if sources.get(level) else "")
                      for level in ("val", "test") if any(k.startswith(level) for k in shown))
    lines = [f"{text}  ({where})", f"run dir: {out}", f"metrics: {out / 'metrics.json'}"]
    for line in lines:
        log.info("%s", line, extra={"file_only": True})
    print("\n" + "\n".join(lines), flush=True)


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


def _on_command_line(key: str) -> bool:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.initialized() and any(o.split("=", 1)[0].lstrip("+~") == key for o in HydraConfig.get().overrides.task)


def eval_config(ecfg: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checkpoint's run config with eval.yaml's ``test.*``, ``data.*``, ``dataset``, trainer and paths merged
    in, and the checkpoint itself (read once, here)."""
    ckpt_path = resolve_ckpt_path(ecfg["ckpt_path"], ecfg["paths"]["output_dir"])
    ckpt = load_checkpoint(ckpt_path)
    cfg = run_config(ckpt, ckpt_path)
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
    trainer = {**ecfg["trainer"]}
    if not _on_command_line("trainer.precision"):  # one policy for every inference command: fp32 unless asked
        trainer["precision"] = INFERENCE_PRECISION
    cfg["trainer"], cfg["paths"], cfg["ckpt_path"] = trainer, ecfg["paths"], ckpt_path
    cfg["model"]["pretrained"] = None  # the checkpoint holds the weights
    cfg["logger"], cfg["callbacks"] = {}, {}
    return cfg, ckpt


def evaluate(dcfg: DictConfig) -> dict[str, Any]:
    """Multi-view test of a train.py checkpoint (read once), or of released weights (``model=<group>
    model.pretrained=<file> dataset=<name>``) under their authors' protocol; writes results.json (with a
    receipt for released weights), predictions.csv, per_class.csv, confusion_matrix.png and metrics.json."""
    for group in ("dataset", "model"):
        _check_optional_choice(group)
    ecfg = _container(dcfg)
    if not ecfg.get("ckpt_path"):
        return evaluate_released(ecfg)
    if ecfg.get("model"):
        log.warning("ckpt_path is given: model=%s is ignored, the checkpoint rebuilds its own network",
                    ecfg["model"]["net"]["name"])
    cfg, ckpt = eval_config(ecfg)
    out, path = Path(cfg["paths"]["output_dir"]), cfg["ckpt_path"]
    log.info("scoring %s", path)
    pl.seed_everything(int(cfg.get("seed", 0)), workers=True)
    dm = build_datamodule(cfg)
    dm.prepare_data()
    module = build_module(cfg, dm.spec)
    module.set_input_stats(dm.mean, dm.std)
    weights, which = scored_state(ckpt, path, run_config(ckpt, path))
    log.info("scoring the %s weights of %s", "EMA-averaged" if which == "ema" else "trained", path)
    check_model_fits(module.model, weights, path, cfg["model"]["net"]["name"])
    module.model.load_state_dict(weights)
    del ckpt, weights
    trainer = build_trainer(cfg, with_callbacks=False)
    results = test_stage(trainer, module, dm, out, path)
    if trainer.is_global_zero:
        _finish(out, {f"test/{k}": results[k] for k in TEST_METRICS}, dm.spec, {"test": str(path)})
    return results


def evaluate_released(ecfg: dict[str, Any]) -> dict[str, Any]:
    """The multi-view test of released weights under the protocol of the entry they are recognised as."""
    model_cfg, pretrained = ecfg.get("model"), (ecfg.get("model") or {}).get("pretrained")
    if not pretrained:
        raise ConfigError("give ckpt_path=<train.py checkpoint>, or released weights: model=<group> "
                          "model.pretrained=<file> dataset=<name> (python -m vidrec.weights list)")
    if not (ecfg.get("dataset") or {}).get("name"):
        raise ConfigError(f"model.pretrained={pretrained}: name the data to evaluate on, dataset=<name> (e.g. "
                          "dataset=kinetics)")
    dataset = copy.deepcopy(ecfg["dataset"])
    dataset.setdefault("test", {}).update({k: v for k, v in ecfg["test"].items() if v is not None})
    trainer = {**ecfg["trainer"]}
    if not _on_command_line("trainer.precision"):
        trainer["precision"] = INFERENCE_PRECISION
    cfg = {**{k: ecfg[k] for k in ("seed", "paths")}, "trainer": trainer, "dataset": dataset,
           "data": {k: v for k, v in ecfg["data"].items() if v is not None},
           "model": {**model_cfg, "pretrained": None}, "logger": {}, "callbacks": {}}
    cfg["model"]["net"] = with_weights_arch(cfg["model"]["net"], pretrained, command_line_overrides())
    out = Path(cfg["paths"]["output_dir"])
    pl.seed_everything(int(cfg.get("seed", 0)), workers=True)
    module = build_module(cfg, DataSpec.from_config(cfg["dataset"], cfg["data"]))
    report = load_pretrained(module.model, pretrained, skip_head=False)  # tested as released: its own classifier
    cfg["dataset"], departures = apply_protocol(cfg["dataset"], module.model.pretrained_cfg, command_line_keys())
    cfg["model"]["pretrained"] = pretrained
    dm = build_datamodule(cfg)
    dm.prepare_data()
    module.set_input_stats(dm.mean, dm.std)
    module.hparams.views_per_batch = dm.spec.dataset.test.views_per_batch
    module.hparams.fully_conv_test = dm.spec.dataset.test.fully_conv
    module.hparams.config = cfg
    trainer = build_trainer(cfg, with_callbacks=False)
    results = test_stage(trainer, module, dm, out, pretrained, released=Receipt(pretrained, report.entry, departures))
    if trainer.is_global_zero:
        _finish(out, {f"test/{k}": results[k] for k in TEST_METRICS}, dm.spec, {"test": str(pretrained)})
    return results

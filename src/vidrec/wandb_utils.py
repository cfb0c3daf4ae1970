"""Weights & Biases around Lightning's ``WandbLogger``: run naming and grouping in sweeps, offline fallback,
the extras logged at the end of a run, and a reader for offline runs (``read_offline_run``)."""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

log = logging.getLogger(__name__)
WANDB_HOST = ("api.wandb.ai", 443)


def is_wandb_logger(logger_cfg: Mapping[str, Any]) -> bool:
    return str(logger_cfg.get("_target_", "")).endswith("WandbLogger")


def _reachable(host: tuple[str, int], timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(host, timeout=timeout):
            return True
    except OSError:
        return False


def prepare_logger_config(logger_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Fill in what the config leaves open: the run's name and group from Hydra (a multirun's jobs share the
    sweep dir's name as group and are named after their overrides), and ``offline`` when W&B is unreachable."""
    out = dict(logger_cfg)
    job = _hydra_job()
    if job is not None:
        if not out.get("group") and job["multirun"]:
            out["group"] = job["sweep_name"]
        if not out.get("name"):
            out["name"] = job["job_name"]
    mode = os.environ.get("WANDB_MODE", "")
    if not out.get("offline") and mode not in ("offline", "disabled", "dryrun") and not _reachable(WANDB_HOST):
        log.warning("wandb: %s:%d is unreachable, logging offline; upload later with `wandb sync %s/wandb/offline-run-*`",
                    *WANDB_HOST, out.get("save_dir", "."))
        out["offline"] = True
    if out.get("offline") and out.get("log_model"):
        log.warning("wandb: logger.wandb.log_model needs an online run (Lightning uploads checkpoints only online); "
                    "the checkpoints stay in %s/checkpoints", out.get("save_dir", "the run dir"))
        out["log_model"] = False
    return out


def _hydra_job() -> dict[str, Any] | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    overrides = hc.job.override_dirname or ""
    name = f"{hc.job.num}:{overrides}" if multirun else Path(hc.runtime.output_dir).name
    return {"multirun": multirun, "sweep_name": Path(hc.sweep.dir).name, "job_name": name[:128]}


def wandb_loggers(trainer: pl.Trainer) -> list[Any]:
    from pytorch_lightning.loggers import WandbLogger

    return [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]


def log_config(trainer: pl.Trainer, cfg: Mapping[str, Any]) -> None:
    """The resolved run config, at the top level of the W&B run config (``optimizer.lr``, ``model.net.name``...)."""
    for lg in wandb_loggers(trainer):
        if trainer.is_global_zero:
            lg.experiment.config.update(dict(cfg), allow_val_change=True)


def log_run_end(trainer: pl.Trainer, cfg: Mapping[str, Any], net: torch.nn.Module, out: Path,
                metrics: Mapping[str, float]) -> None:
    """Final metrics, the test confusion matrix and the model's table row (params, GFLOPs at the run's clip)."""
    loggers = wandb_loggers(trainer)
    if not loggers or not trainer.is_global_zero:
        return
    import wandb

    run = loggers[0].experiment
    run.summary.update({k: v for k, v in metrics.items() if isinstance(v, int | float)})
    row = model_row(cfg, net)
    run.summary.update({"model/params": row["params"], "model/gflops": row["gflops"]})
    payload: dict[str, Any] = {"model/table": wandb.Table(columns=list(row), data=[list(row.values())])}
    cm = out / "confusion_matrix.png"
    if cm.is_file():
        payload["test/confusion_matrix"] = wandb.Image(str(cm), caption="video-level test confusion matrix")
    run.log(payload)


def model_row(cfg: Mapping[str, Any], net: torch.nn.Module) -> dict[str, Any]:
    """One row of the model table (docs/models.md) for this run: name, params, GFLOPs of one clip, clip size."""
    from vidrec.models.complexity import gmacs

    name = cfg["model"]["net"]["name"]
    frames, size = int(cfg["dataset"]["clip"]["frames"]), int(cfg["dataset"]["train"]["crop_size"])
    try:
        flops = round(gmacs(name, frames, size), 3)
    except Exception as exc:  # a model the meta-device counter cannot trace: the row still has its params
        log.warning("wandb: GFLOPs of %s not measured (%s)", name, exc)
        flops = float("nan")
    return {"model": name, "params": sum(p.numel() for p in net.parameters()), "gflops": flops,
            "clip": f"{frames}×{size}×{size}"}


def finish(trainer: pl.Trainer) -> None:
    """Close the W&B run, so that the next job of a multirun (same process) starts its own."""
    if wandb_loggers(trainer) and trainer.is_global_zero:
        import wandb

        wandb.finish()


# ---------------------------------------------------------------- offline runs
def _records(path: Path) -> Iterator[bytes]:
    """Records of a ``run-*.wandb`` file: a 7-byte ``:W&B`` header, then a LevelDB log (32 KiB blocks of
    7-byte-headed chunks: full, first, middle, last)."""
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    pos, block, buf = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0:
            continue
        buf = chunk if kind in (1, 2) else buf + chunk
        if kind in (1, 4):
            yield buf


def read_offline_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """What an offline W&B run recorded: ``project``, ``group``, ``tags``, ``config``, ``summary`` (last values),
    ``history`` (one dict per logged step) and the names of logged ``files``."""
    from wandb.proto import wandb_internal_pb2 as pb

    run_dir = Path(run_dir)
    files = sorted(run_dir.glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"{run_dir}: no run-*.wandb file")
    out: dict[str, Any] = {"config": {}, "summary": {}, "history": [], "files": []}

    def key(item: Any) -> str:
        return item.key or "/".join(item.nested_key)

    for raw in _records(files[0]):
        rec = pb.Record()
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            out.update(project=rec.run.project, group=rec.run.run_group, tags=list(rec.run.tags), name=rec.run.display_name)
            out["config"].update({key(i): json.loads(i.value_json) for i in rec.run.config.update})
        elif kind == "config":
            out["config"].update({key(i): json.loads(i.value_json) for i in rec.config.update})
        elif kind == "summary":
            out["summary"].update({key(i): json.loads(i.value_json) for i in rec.summary.update})
        elif kind == "history":
            out["history"].append({key(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "files":
            out["files"] += [f.path for f in rec.files.files]
    return out

"""Shared behaviour of the entry points: vidrec errors become one clear line and exit status 1."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from vidrec.errors import VidrecError

log = logging.getLogger("vidrec")


class BelowLevel(logging.Filter):
    """Logging filter that passes records below ``level`` (predict.py and export.py log to stderr, where
    :func:`run_entry` already prints the ``error:`` line)."""

    def __init__(self, level: str | int = logging.ERROR):
        super().__init__()
        self.level = logging.getLevelName(level) if isinstance(level, str) else level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.level


def user_error(exc: BaseException) -> VidrecError | None:
    """The :class:`VidrecError` behind ``exc``: itself or the error it was raised from (Hydra's
    ``instantiate`` wraps what a builder raises in an ``InstantiationException``); ``None`` for anything else."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, VidrecError):
            return current
        seen.add(id(current))
        current = current.__cause__
    return None


def error_line(exc: VidrecError) -> str:
    """The message of ``exc`` on one line. A DataLoader worker's error arrives re-raised with the worker's
    traceback in its text ("Caught DecodeError in DataLoader worker process 0. Original Traceback ..."):
    only the original message, the traceback's last line, is kept."""
    text = str(exc)
    if "\nOriginal Traceback" in text:
        last = text.rstrip().splitlines()[-1]
        prefix = f"{type(exc).__module__}.{type(exc).__qualname__}: "
        text = last[len(prefix):] if last.startswith(prefix) else last
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


class FileOnly(logging.Filter):
    """Console-handler filter: records logged with ``extra={"file_only": True}`` go to the log file alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "file_only", False)


#: Lightning's messages that do not apply to vidrec runs (tips for other products; a deprecation inside Lightning
#: itself; the checkpoint callback's complaint when max_steps ends a run before any validation; the notice that the
#: module's batch hook is used).
QUIET_WARNINGS = (r".*litlogger.*", r".*litmodels.*", r".*LeafSpec.*", r".*could not find the monitored key.*",
                  r".*is smaller than the logging interval.*",
                  # vidrec's LightningModule normalises uint8 clips in on_after_batch_transfer on purpose
                  r".*overridden `on_after_batch_transfer` in `LightningModule`.*")


def quiet_lightning() -> None:
    """Silence :data:`QUIET_WARNINGS` (as warnings and as log records of Lightning's rank-zero logger)."""
    import re
    import warnings

    for pattern in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    matches = [re.compile(p, re.S) for p in QUIET_WARNINGS]
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: not any(m.match(record.getMessage()) for m in matches))


def _remove_empty_run_dir() -> None:
    """A run that failed before writing anything (only ``.hydra/`` and its log) leaves no folder behind."""
    import shutil
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig

    try:
        hydra_cfg = HydraConfig.get()
        out, job = Path(hydra_cfg.runtime.output_dir), hydra_cfg.job.name
    except Exception:  # no Hydra app is running (a library call of run_entry)
        return
    kept = {p.name for p in out.iterdir()} if out.is_dir() else set()
    if kept and kept <= {".hydra", f"{job}.log"}:
        logging.shutdown()
        shutil.rmtree(out, ignore_errors=True)


def run_entry(fn: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run ``fn(cfg)``; a :class:`VidrecError` (also one wrapped by Hydra or re-raised from a loader worker) is
    printed as one ``error: <message>`` line (also in the run's log file), without a traceback, and the process
    exits with status 1; a run dir with nothing in it but its config is removed."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.addFilter(FileOnly())
    quiet_lightning()
    try:
        return fn(cfg)
    except Exception as exc:
        err = user_error(exc)
        if err is None:
            _remove_empty_run_dir()
            raise
        line = error_line(err)
        log.debug("full error:\n%s", exc)
        log.error("error: %s", line, extra={"file_only": True})
        print(f"error: {line}", file=sys.stderr, flush=True)
        _remove_empty_run_dir()
        sys.exit(1)


def hydra_main(config_name: str, target: str) -> Any:
    """Run ``target`` (``"vidrec.run:train"``) as the Hydra app of ``configs/<config_name>.yaml`` beside the
    calling script, under :func:`run_entry`: what train.py, eval.py, predict.py and export.py are. Path values
    are quoted for Hydra, train.py gets its default experiment, and a training run returns
    ``optimized_metric`` (for sweeps)."""
    import importlib
    from pathlib import Path

    import hydra

    from vidrec.config import command_line, insert_override, register_configs, unknown_override

    register_configs()
    module, function = target.split(":")
    args = command_line(sys.argv[1:], default_experiment=config_name == "train")
    problem = unknown_override(config_name, args, Path(sys.argv[0]).resolve().parent / "configs")
    if problem:
        print(f"error: {problem}", file=sys.stderr, flush=True)
        sys.exit(1)
    sys.argv[1:] = insert_override(args, f"hydra.job.name={config_name}")  # the log file is <config_name>.log

    @hydra.main(version_base="1.3", config_path=str(Path(sys.argv[0]).resolve().parent / "configs"),
                config_name=config_name)
    def task(cfg: DictConfig) -> Any:
        result = run_entry(getattr(importlib.import_module(module), function), cfg)
        metric = cfg.get("optimized_metric")
        return result.get(metric) if metric and isinstance(result, dict) else None

    return task()

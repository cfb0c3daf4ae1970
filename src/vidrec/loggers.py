"""Loggers of a run: a CSV log that one run dir keeps whole across resumes, and the training-curve picture."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment

from vidrec.files import atomic_open


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer deletes an existing ``metrics.csv``; this one keeps it and appends to it."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = list(csv.DictReader(file).fieldnames or [])


class ResumableCSVLogger(CSVLogger):
    """``csv/metrics.csv`` of a run that is interrupted and resumed into the same run dir holds the whole run:
    the rows written before the interruption stay, the resumed run's rows follow."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """The rows of a ``metrics.csv`` as numbers (empty cells left out)."""
    with open(path, newline="") as file:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(file)]


def plot_curves(metrics_csv: str | Path, out: str | Path, title: str = "") -> Path | None:
    """``training_curves.png``: training loss per step, clip-level val top-1 per epoch and the learning rate, from a
    run's ``metrics.csv``; ``None`` when there is nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_csv) if Path(metrics_csv).is_file() else []
    series: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        for key, value in row.items():
            if key != "step" and "step" in row and math.isfinite(value):
                series.setdefault(key, []).append((row["step"], value))
    panels = [(k, t) for k, t in (("train/loss", "training loss"), ("val/top1", "val top-1 (clip-level)")) if k in series]
    lr = next((k for k in series if k.startswith("lr")), None)
    if lr:
        panels.append((lr, "learning rate"))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.4), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        steps, values = zip(*series[key])
        ax.plot(steps, values, marker="o" if len(values) < 40 else None, markersize=3)
        ax.set_title(label)
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_open(out, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)
    return Path(out)


def curves_of(trainer: Any) -> Path | None:
    """The CSV log of a trainer's loggers, where there is one."""
    for logger in trainer.loggers:
        if isinstance(logger, CSVLogger):
            return Path(logger.log_dir) / ExperimentWriter.NAME_METRICS_FILE
    return None

"""Sweep summaries: one row per job of a Hydra multirun (its overrides and final metrics).

Hydra calls :class:`SweepSummary` (configs/hydra/default.yaml ``callbacks``) when a multirun ends; it writes
``<sweep dir>/summary.csv`` and ``summary.md`` and prints the table. ``python -m vidrec.sweep <sweep dir>``
does the same for a sweep whose jobs finished elsewhere (e.g. on SLURM after the launcher was stopped).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from vidrec.files import atomic_write_text

#: metrics shown first, in this order; any other val/ or test/ metric follows
METRIC_ORDER = ("val/top1", "val/top5", "val/mean_class_acc", "test/top1", "test/top5", "test/mean_class_acc")


def _job_sort_key(path: Path) -> tuple[int, int, str]:
    """Numbered job dirs (Hydra's default subdir) in numeric order, then any others by name."""
    name = path.parent.parent.name
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def collect_jobs(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Every job under ``sweep_dir`` (a folder with ``.hydra/overrides.yaml``): its dir, overrides and metrics."""
    sweep_dir = Path(sweep_dir)
    jobs = []
    for overrides_file in sorted(sweep_dir.glob("*/.hydra/overrides.yaml"), key=_job_sort_key):
        job_dir = overrides_file.parent.parent
        overrides = yaml.safe_load(overrides_file.read_text()) or []
        metrics_file = job_dir / "metrics.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        jobs.append({
            "job": job_dir.name,
            "dir": str(job_dir),
            "overrides": dict(o.split("=", 1) if "=" in o else (o, "") for o in overrides),
            "metrics": {k: v for k, v in metrics.items() if isinstance(v, int | float) and k.startswith(("val/", "test/"))},
            "status": "ok" if metrics_file.is_file() else "no metrics.json (failed or running)",
        })
    return jobs


def summary_table(jobs: list[dict[str, Any]], metric: str | None = None, mode: str = "max") -> tuple[list[str], list[list[Any]], str]:
    """Header, rows and a closing note (the common overrides, the best job by ``metric``) of a sweep."""
    keys = list(dict.fromkeys(k for j in jobs for k in j["overrides"]))
    varying = [k for k in keys if len({j["overrides"].get(k) for j in jobs}) > 1]
    common = [f"{k}={jobs[0]['overrides'][k]}" for k in keys if k not in varying and jobs]
    present = {k for j in jobs for k in j["metrics"]}
    metrics = [m for m in METRIC_ORDER if m in present] + sorted(present - set(METRIC_ORDER))
    header = ["job", *varying, *metrics, "status"]
    rows = [[j["job"], *(j["overrides"].get(k, "") for k in varying), *(j["metrics"].get(m, "") for m in metrics), j["status"]]
            for j in jobs]
    note = f"{len(jobs)} job(s); common overrides: {' '.join(common) or 'none'}"
    scored = [j for j in jobs if metric and isinstance(j["metrics"].get(metric), int | float)]
    if scored:
        best = (max if mode == "max" else min)(scored, key=lambda j: j["metrics"][metric])
        note += f"\nbest by {metric} ({mode}): job {best['job']} ({metric} {best['metrics'][metric]:.4f}) in {best['dir']}"
    return header, rows, note


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def markdown(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_summary(sweep_dir: str | Path, metric: str | None = None, mode: str = "max") -> str:
    """Write ``summary.csv`` and ``summary.md`` into ``sweep_dir``; return the Markdown text."""
    sweep_dir = Path(sweep_dir)
    header, rows, note = summary_table(collect_jobs(sweep_dir), metric, mode)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(sweep_dir / "summary.csv", buf.getvalue())
    text = f"# Sweep {sweep_dir}\n\n{markdown(header, rows)}\n{note}\n"
    atomic_write_text(sweep_dir / "summary.md", text)
    return text


class SweepSummary(Callback):
    """Hydra callback: at the end of a multirun, summarise every job's final metrics (``summary.csv``/``.md``)."""

    def __init__(self, mode: str = "max") -> None:
        self.mode = mode

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if not sweep_dir.is_dir():
            return
        direction = str(OmegaConf.select(config, "hydra.sweeper.direction", default="") or "")  # optuna's
        mode = {"maximize": "max", "minimize": "min"}.get(direction, self.mode)
        text = write_summary(sweep_dir, config.get("optimized_metric"), mode)
        print(f"\n{text}summary: {sweep_dir / 'summary.csv'}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """``python -m vidrec.sweep <sweep dir> [--metric val/top1] [--mode max]``."""
    parser = argparse.ArgumentParser(description="Summarise the jobs of a Hydra multirun (summary.csv, summary.md).")
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--metric", default="val/top1", help="the metric that picks the best job")
    parser.add_argument("--mode", default="max", choices=["max", "min"])
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        parser.error(f"{args.sweep_dir} is not a directory")
    print(write_summary(args.sweep_dir, args.metric, args.mode), end="")


if __name__ == "__main__":
    main()

"""The test stage shared by train.py and eval.py, and its outputs: results.json, predictions.csv, per_class.csv,
skipped_videos.csv, confusion_matrix.png."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from vidrec.callbacks import DataWait
from vidrec.data import decoding
from vidrec.data.coverage import for_results as coverage_for_results
from vidrec.data.datamodule import VideoDataModule
from vidrec.data.spec import DataSpec
from vidrec.errors import VidrecError
from vidrec.files import atomic_open, atomic_write_json, atomic_write_text
from vidrec.models.weights import sha256_of
from vidrec.models.weights.entries import get_weights
from vidrec.module import VideoClassifier
from vidrec.scoring import top_k

log = logging.getLogger(__name__)


def confusion_matrix(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``cm[i, j]`` = number of videos of class i predicted as j."""
    return torch.bincount(labels * num_classes + pred, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_rows(cm: torch.Tensor, names: Sequence[str]) -> list[dict[str, Any]]:
    """Accuracy and support of each class, worst first (classes without test videos last)."""
    rows = []
    for i, name in enumerate(names):
        support = int(cm[i].sum())
        rows.append({"class": name, "support": support, "accuracy": float(cm[i, i]) / support if support else float("nan"),
                     "most_confused_with": names[int(_off_diag(cm[i], i).argmax())] if support and cm[i].sum() > cm[i, i] else ""})
    return sorted(rows, key=lambda r: (r["support"] == 0, r["accuracy"]))


def _off_diag(row: torch.Tensor, i: int) -> torch.Tensor:
    row = row.clone()
    row[i] = -1
    return row


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def plot_confusion(cm: torch.Tensor, names: Sequence[str], path: Path, title: str, max_named: int = 40) -> None:
    """Row-normalised confusion matrix; classes with names when ≤ ``max_named``, else sorted by accuracy and
    shown with the 20 most-confused pairs beside it (readable at 400 classes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = cm.shape[0]
    norm = cm.float() / cm.sum(dim=1, keepdim=True).clamp(min=1)
    if n <= max_named:
        fig, ax = plt.subplots(figsize=(2 + 0.45 * n, 1.5 + 0.45 * n))
        im = ax.imshow(norm.numpy(), cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(n), names, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(n), names, fontsize=8)
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    else:
        order = torch.argsort(norm.diagonal())
        fig, (ax, bx) = plt.subplots(1, 2, figsize=(18, 8), gridspec_kw={"width_ratios": [1, 1]})
        im = ax.imshow(norm[order][:, order].numpy(), cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"{n} classes ranked by accuracy (worst first)")
        ax.set_xlabel("predicted class (rank)")
        ax.set_ylabel("true class (rank)")
        fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
        off = norm.clone()
        off.fill_diagonal_(0)
        top = torch.topk(off.flatten(), 20)
        keep = [(int(k), float(v)) for k, v in zip(top.indices, top.values) if v > 0]
        labels = [f"{names[k // n]} → {names[k % n]} ({int(cm[k // n, k % n])}/{int(cm[k // n].sum())})" for k, _ in keep]
        bx.barh(range(len(keep))[::-1], [v for _, v in keep])
        bx.set_yticks(range(len(keep))[::-1], labels, fontsize=8)
        bx.set_xlabel("share of the true class's videos")
        bx.set_title("most-confused pairs")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def test_stage(trainer: pl.Trainer, module: VideoClassifier, dm: VideoDataModule, out: Path,
               weights: str | None, ckpt_path: str | None = None, released: Receipt | None = None) -> dict[str, Any]:
    """The one multi-view, video-level test of train.py and eval.py: ``trainer.test`` (restoring ``ckpt_path``
    when given), then on rank 0 results.json (with the test's ``throughput``), predictions.csv, per_class.csv,
    the confusion matrix and skipped_videos.csv. ``released``: what results.json says of released weights.
    Returns the results (empty on other ranks)."""
    dm.setup("test")
    with skips_listed_on_failure(trainer, out, module, dm):
        trainer.test(module, datamodule=dm, ckpt_path=ckpt_path, verbose=False)
    if not trainer.is_global_zero:
        return {}
    throughput = next((c.test_throughput for c in trainer.callbacks if isinstance(c, DataWait)), None)
    results = write_eval_outputs(out, dm, module, weights, released, throughput, str(trainer.precision))
    write_skipped(out, module.skipped, dm.missing)
    return results


@dataclass
class Receipt:
    """Released weights under test: the file, the entry it was recognised as, and the departures from its protocol
    that the command line asked for (``apply_protocol``); :meth:`record` adds those of the data and the run."""

    path: str
    entry: str | None
    departures: list[str]

    def record(self, metrics: Mapping[str, float], spec: DataSpec | None = None, precision: str | None = None,
               coverage: Mapping[str, Any] | None = None, source_short_side: int | None = None) -> dict[str, Any]:
        """The receipt part of results.json: weights (entry, sha256), every departure from the authors' protocol
        (``{"setting", "authors", "used"}``), the published figure and protocol, and the difference in percentage
        points (ours − published) — only where it means something: no departure, the published split, the
        split's coverage of the official list stated (``data.coverage``) and a reproducible published protocol;
        otherwise ``difference`` is null and ``not_comparable`` says why."""
        entry = get_weights(self.entry) if self.entry else None
        published = entry.published if entry else None
        departures = [_parse_departure(d) for d in self.departures]
        if entry is not None and spec is not None:
            departures += _run_departures(entry, spec, precision, source_short_side)
        out: dict[str, Any] = {"weights": {"file": self.path, "entry": self.entry, "sha256": sha256_of(self.path)},
                               "departures_from_the_authors_protocol": departures}
        out["published"] = dataclasses.asdict(published) if published else None
        if published is None:
            out["difference"], out["not_comparable"] = None, ["the authors publish no figure for these weights"]
            return out
        reasons = [f"{d['setting']}: {d['used']} (the authors': {d['authors']})" for d in departures]
        if published.reproducible is False:
            reasons.append(f"the published protocol cannot be reproduced: {published.note}")
        if coverage is not None and coverage.get("reference") == "annotation":
            reasons.append("the coverage of the official split list is not stated (data.coverage=<coverage.json of "
                           "python -m vidrec.data.check --official-csv>)")
        ours = {k: 100 * metrics[k] for k in ("top1", "top5")}
        if published.metric == "top1/top5":
            difference = {k: round(ours[k] - getattr(published, k), 2) for k in ours if getattr(published, k) is not None}
        else:  # kenshohara 2018 reports the mean of top-1 and top-5
            difference = {"mean_top1_top5": round((ours["top1"] + ours["top5"]) / 2 - published.value, 2)}
        out["difference"] = None if reasons else difference
        out["not_comparable"] = reasons
        return out


def _parse_departure(text: str) -> dict[str, Any]:
    """``"test.num_clips=3 (the authors': 10)"`` (vidrec.protocol) as ``{"setting", "authors", "used"}``."""
    setting, _, rest = text.partition("=")
    used, _, authors = rest.partition(" (the authors': ")
    return {"setting": setting, "authors": authors.rstrip(")"), "used": used}


def _split_of(published_split: str) -> str:
    """The annotation subset a published figure was measured on ("K400 val" → validation, "K400 test" → testing)."""
    return "testing" if "test" in published_split.lower() else "validation"


def _run_departures(entry: Any, spec: DataSpec, precision: str | None, source_short_side: int | None) -> list[dict]:
    """Departures of the data and the run itself: the split, the precision, the source frames' size."""
    out = []
    split = _split_of(entry.published.split) if entry.published else None
    if split and spec.subset("test") != split:
        out.append({"setting": "split", "authors": entry.published.split, "used": spec.subset("test")})
    if precision and not str(precision).startswith("32"):
        out.append({"setting": "precision", "authors": "32-true (fp32)", "used": str(precision)})
    resize = entry.test_resize if isinstance(entry.test_resize, int) else min(entry.test_resize)
    if source_short_side and source_short_side < resize:
        out.append({"setting": "source frames", "authors": f"short side at least {resize} (the test resize)",
                    "used": f"short side {source_short_side}, upscaled to {resize}"})
    return out


def source_short_side(dm: VideoDataModule) -> int | None:
    """The short side of the first test video's frames (what the test resizes from), None when unreadable."""
    try:
        dataset = dm.datasets["test"]
        frame = decoding.read_frames(dataset.path(0), torch.zeros(1, dtype=torch.int64))
    except (VidrecError, KeyError, IndexError):
        return None
    return int(min(frame.shape[1:3]))


@contextlib.contextmanager
def skips_listed_on_failure(trainer: pl.Trainer, out: Path, module: VideoClassifier, dm: VideoDataModule) -> Iterator[None]:
    """When a run stops (e.g. more unreadable videos than ``data.max_skip_ratio``), still write skipped_videos.csv."""
    try:
        yield
    except BaseException:
        if trainer.is_global_zero:
            write_skipped(out, module.skipped, dm.missing)
        raise


def write_eval_outputs(out: Path, dm: VideoDataModule, module: VideoClassifier, weights: str | None,
                       released: Receipt | None = None, throughput: Mapping[str, float] | None = None,
                       precision: str | None = None) -> dict[str, Any]:
    """Write the files of a video-level test from ``module.test_results``; return the results dict.
    ``throughput``: the test's views/s and data-wait share (:class:`~vidrec.callbacks.DataWait`)."""
    res, spec = module.test_results, dm.spec
    names = dm.labels
    ids = dm.test_ids()
    probs, labels, metrics = res["probs"], res["labels"], res["metrics"]
    num_classes = probs.shape[1]
    views = spec.views_per_video
    results = {
        **metrics,
        "level": "video",
        "num_videos": len(res["index"]),
        "views_per_video": views,
        "skipped_videos": len(module.skipped["test"]) + len(dm.missing.get("test", [])),
        "checkpoint": str(weights) if weights else None,
        "dataset": spec.dataset.name,
        "subset": spec.subset("test"),
        "protocol": {**spec.protocol(), "precision": precision},
        "excluded_videos": len(getattr(dm, "excluded", {}).get("test", [])),  # data.exclude
        # what the figures were computed on: the split's videos present (of those listed officially, with
        # data.coverage) and those evaluated, missing on disk and skipped
        "coverage": {**coverage_for_results(spec, dm), "videos_evaluated": len(res["index"]),
                     "missing": len(dm.missing.get("test", [])), "skipped": len(module.skipped["test"])},
    }
    if throughput is not None:
        results["throughput"] = dict(throughput)
    if released is not None:
        results.update(released.record(metrics, spec, precision, results["coverage"], source_short_side(dm)))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "results.json", results)
    k = top_k(num_classes)
    top_p, top_i = probs.topk(k, dim=1)
    header = ["video_id", "label"] + [f"pred{j + 1}" for j in range(k)] + [f"score{j + 1}" for j in range(k)]
    rows = [
        [ids[i], names[int(y)]] + [names[int(c)] for c in ti] + [f"{float(p):.6f}" for p in tp]
        for i, y, ti, tp in zip(res["index"], labels, top_i, top_p)
    ]
    atomic_write_text(out / "predictions.csv", _csv_text(header, rows))
    cm = confusion_matrix(top_i[:, 0], labels, num_classes)
    per_class = per_class_rows(cm, names)
    atomic_write_text(out / "per_class.csv", _csv_text(
        ["class", "support", "accuracy", "most_confused_with"],
        [[r["class"], r["support"], f"{r['accuracy']:.4f}", r["most_confused_with"]] for r in per_class],
    ))
    per_video = f"{views} views/video" if views else f"{spec.dataset.test.clip_selection} clips"
    title = f"{results['dataset']} — video-level top-1 {metrics['top1']:.3f} ({per_video}, {results['num_videos']} videos)"
    shown = sorted(set(labels.tolist()) | set(top_i[:, 0].tolist()))  # classes with test videos or predictions
    if len(shown) < num_classes:  # a many-class run tested on few videos: no blank rows and columns
        title += f"; the {len(shown)} of {num_classes} classes with test videos or predictions"
    index = torch.tensor(shown)
    plot_confusion(cm[index][:, index], [names[i] for i in shown], out / "confusion_matrix.png", title)
    log.info("test (video-level, %s): top1 %.4f top5 %.4f mean class acc %.4f on %d videos",
             per_video, metrics["top1"], metrics["top5"], metrics["mean_class_acc"], results["num_videos"])
    return results


def write_skipped(out: Path, skipped: Mapping[str, list[tuple[int, str, str]]], missing: Mapping[str, list[str]]) -> None:
    """List every skipped (undecodable) or missing video of the run in ``skipped_videos.csv`` (only when any)."""
    rows = [[stage, vid, reason] for stage, items in skipped.items() for _, vid, reason in items]
    rows += [[stage, vid, "missing on disk"] for stage, ids in missing.items() for vid in ids]
    if rows:
        atomic_write_text(out / "skipped_videos.csv", _csv_text(["stage", "video_id", "reason"], rows))
        log.warning("%d skipped or missing video(s) listed in %s", len(rows), out / "skipped_videos.csv")

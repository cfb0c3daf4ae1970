"""Scoring videos from their views: the mean of the softmax over each video's views, one row per video across
ranks, and the video-level metrics. Shared by the test stage, evaluation outputs and prediction."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchmetrics import Metric

#: The k of top-k accuracy and of the predictions listed per video (fewer when a dataset has fewer classes).
TOP_K = 5


def top_k(num_classes: int) -> int:
    """The k used for ``num_classes`` classes: :data:`TOP_K`, or every class when there are fewer."""
    return min(TOP_K, num_classes)


def aggregate_views(logits: torch.Tensor, views: int) -> torch.Tensor:
    """Video scores from view logits ``(B·V, C)``: the mean of the softmax over each video's V views → ``(B, C)``."""
    return logits.float().softmax(dim=-1).view(-1, views, logits.shape[-1]).mean(dim=1)


def video_scores(model: nn.Module, views: torch.Tensor, views_per_batch: int, progress: bool = False) -> torch.Tensor:
    """Scores ``(B, C)`` of videos given as views ``(B, V, C, T, H, W)``.

    The B·V views go through ``model`` in chunks of ``views_per_batch`` (peak activation memory is that of
    one chunk, whatever V is), then :func:`aggregate_views` averages each video's softmax. ``progress``: a
    progress bar over the views (predict.py on a terminal).
    """
    from tqdm import tqdm

    v = views.shape[1]
    flat = views.flatten(0, 1)
    chunk = max(1, int(views_per_batch))
    logits = []
    with tqdm(total=flat.shape[0], unit="view", desc="views", disable=not progress, leave=False) as bar:
        for i in range(0, flat.shape[0], chunk):
            logits.append(model(flat[i : i + chunk]))
            bar.update(len(logits[-1]))
    return aggregate_views(torch.cat(logits), v)


def dedupe_videos(rows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> dict[str, Any]:
    """Merge ``(index, scores, label)`` batches of all ranks into one row per video, sorted by dataset index.

    The DDP sampler pads the last rank with repeats of the first videos; a repeat has the same index (and the
    same scores), so keeping one row per index counts every video exactly once.
    """
    if not rows:
        return {"index": [], "probs": torch.empty(0), "labels": torch.empty(0, dtype=torch.int64)}
    index, probs, labels = (torch.cat(parts) for parts in zip(*rows))
    first = {int(i): k for k, i in reversed(list(enumerate(index.tolist())))}
    order = sorted(first)
    keep = torch.tensor([first[i] for i in order], dtype=torch.int64)
    return {"index": order, "probs": probs[keep], "labels": labels[keep]}


def video_metrics(probs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Video-level top-1, top-5 and mean class accuracy (mean over the classes present in ``labels``)."""
    k = top_k(num_classes)
    top = probs.topk(k, dim=1).indices
    hit1 = top[:, 0] == labels
    hit5 = (top == labels[:, None]).any(dim=1)
    per_class = torch.stack([hit1[labels == c].float().mean() for c in labels.unique()])
    return {"top1": float(hit1.float().mean()), "top5": float(hit5.float().mean()), "mean_class_acc": float(per_class.mean())}


class MeanClassAccuracy(Metric):
    """Clip-level mean class accuracy with the definition of :func:`video_metrics`: top-1 accuracy of each class
    that has samples, averaged over those classes (a class that only appears among the predictions does not
    count). Per-class hits and counts are summed across ranks."""

    full_state_update = False

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.add_state("hits", torch.zeros(num_classes, dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("counts", torch.zeros(num_classes, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        hit = (logits.argmax(dim=1) == labels).long()
        self.hits += torch.bincount(labels, weights=hit, minlength=self.num_classes).long()
        self.counts += torch.bincount(labels, minlength=self.num_classes)

    def compute(self) -> torch.Tensor:
        present = self.counts > 0
        return (self.hits[present].double() / self.counts[present]).mean().float()

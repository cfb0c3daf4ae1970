"""Batch-level mixup and cutmix of video clips with soft targets (timm ``Mixup`` in ``mode='batch'``, PySlowFast
``MixUp``), run on the device after normalisation.

One draw per batch (timm pytorch-image-models timm/data/mixup.py@99a09eb8:141-157; PySlowFast SlowFast
slowfast/datasets/mixup.py@88bb4c9:148-165): with probability ``prob`` the batch is mixed, by cutmix with
probability ``switch_prob`` when both are enabled (else by mixup), with ``lam ~ Beta(alpha, alpha)`` of the chosen
kind. Each clip is mixed with the batch flipped (clip i with clip B-1-i, timm :203-206). Cutmix pastes one box of
the flipped batch, the same box on every frame of every clip; the box has sides ``int(H·sqrt(1-lam))`` ×
``int(W·sqrt(1-lam))`` around a uniform centre, clipped to the frame, and lam is corrected to the kept area
(``rand_bbox``, :30-51; ``cutmix_bbox_and_lam``, :77-87). Targets: ``lam · y + (1 - lam) · y.flip(0)`` of
label-smoothed one-hots, off value ``s / K``, on value ``1 - s + s / K`` (:22-27). The random draws come from a numpy
generator that :func:`step_rng` makes from (seed, epoch, batch index, rank), so a resumed run mixes as the unbroken
run.

Train accuracy under mixup: :func:`mixup_accuracy_inputs` merges the probability of the second mixed class into
the dominant one and scores against the dominant label (PySlowFast tools/train_net.py@287ec00:174-183).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from vidrec.errors import ConfigError


def step_rng(seed: int, *keys: int) -> np.random.Generator:
    """The generator of one batch, a pure function of the seed and the keys (e.g. epoch, batch index, rank)."""
    return np.random.default_rng([int(seed) & (2**63 - 1), *(int(k) for k in keys)])


def smooth_one_hot(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """One-hot rows with label smoothing: ``s / K`` off, ``1 - s + s / K`` on (timm mixup.py:17-27)."""
    off = smoothing / num_classes
    out = torch.full((labels.shape[0], num_classes), off, device=labels.device)
    return out.scatter_(1, labels.long().view(-1, 1), 1.0 - smoothing + off)


def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``-Σ_k target_k · log_softmax(logits)_k`` (timm loss/cross_entropy.py@99a09eb8:34-36;
    PySlowFast's ``soft_cross_entropy``, pytorchvideo ``SoftTargetCrossEntropyLoss(normalize_targets=False)``)."""
    return torch.sum(-targets * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()


@dataclass
class MixedBatch:
    video: torch.Tensor          # (B, C, T, H, W), mixed
    targets: torch.Tensor        # (B, K) soft targets, rows sum to 1
    lam: float                   # the weight of each clip's own label (area-corrected for cutmix)
    box: tuple[int, int, int, int] | None  # cutmix (top, bottom, left, right), None for mixup or no mixing


@dataclass
class Mixup:
    """Mixup / cutmix of a batch. Defaults: PySlowFast MIXUP.ALPHA 0.8, CUTMIX_ALPHA 1.0, PROB 1.0, SWITCH_PROB 0.5,
    LABEL_SMOOTH_VALUE 0.1 (slowfast/config/defaults.py@287ec00:242-257); ``alpha`` or ``cutmix_alpha`` 0 disables
    that kind."""

    num_classes: int
    alpha: float = 0.8
    cutmix_alpha: float = 1.0
    prob: float = 1.0
    switch_prob: float = 0.5
    label_smoothing: float = 0.1
    correct_lam: bool = True

    def __post_init__(self) -> None:
        if self.alpha <= 0 and self.cutmix_alpha <= 0:
            raise ConfigError("mixup: set mixup.alpha or mixup.cutmix_alpha above 0 (or turn mixup off)")
        if not 0 <= self.prob <= 1 or not 0 <= self.switch_prob <= 1:
            raise ConfigError(f"mixup.prob={self.prob} and mixup.switch_prob={self.switch_prob} must be in [0, 1]")

    def params(self, rng: np.random.Generator) -> tuple[float, bool]:
        """``(lam, use_cutmix)`` of one batch (timm mixup.py:141-157): lam 1 when the batch is not mixed."""
        if not rng.random() < self.prob:
            return 1.0, False
        if self.alpha > 0 and self.cutmix_alpha > 0:
            cutmix = bool(rng.random() < self.switch_prob)
        else:
            cutmix = self.cutmix_alpha > 0
        a = self.cutmix_alpha if cutmix else self.alpha
        return float(rng.beta(a, a)), cutmix

    @staticmethod
    def box(height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """``(top, bottom, left, right)`` of the cutmix box for lam (timm ``rand_bbox`` with margin 0)."""
        ratio = np.sqrt(1 - lam)
        cut_h, cut_w = int(height * ratio), int(width * ratio)
        cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
        top, bottom = int(np.clip(cy - cut_h // 2, 0, height)), int(np.clip(cy + cut_h // 2, 0, height))
        left, right = int(np.clip(cx - cut_w // 2, 0, width)), int(np.clip(cx + cut_w // 2, 0, width))
        return top, bottom, left, right

    def __call__(self, video: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator) -> MixedBatch:
        """Mix a float batch ``(B, C, T, H, W)`` (a new tensor; the input is left alone) with its flipped self."""
        lam, cutmix = self.params(rng)
        box = None
        if lam < 1.0:
            if cutmix:
                box = self.box(video.shape[-2], video.shape[-1], lam, rng)
                top, bottom, left, right = box
                if self.correct_lam:
                    lam = 1.0 - (bottom - top) * (right - left) / float(video.shape[-2] * video.shape[-1])
                video = video.clone()
                video[..., top:bottom, left:right] = video.flip(0)[..., top:bottom, left:right]
            else:
                video = video.mul(lam).add_(video.flip(0), alpha=1.0 - lam)
        own = smooth_one_hot(labels, self.num_classes, self.label_smoothing)
        targets = own * lam + own.flip(0) * (1.0 - lam)
        return MixedBatch(video, targets, lam, box)


def mixup_accuracy_inputs(logits: torch.Tensor, targets: torch.Tensor,
                          label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scores, labels)`` for train accuracy under mixup: the softmax with the second mixed class's probability
    added to the dominant class's (and zeroed), against the dominant label — a prediction of either mixed class
    counts as right (PySlowFast train_net.py:174-183, on probabilities rather than raw outputs). A row that was not
    mixed (its second-highest target is the smoothing value ``s / K``) is left as it is."""
    scores = logits.detach().float().softmax(dim=-1)
    top2 = targets.topk(2, dim=1)
    first, second = top2.indices[:, 0], top2.indices[:, 1]
    mixed = top2.values[:, 1] > label_smoothing / targets.shape[1] + 1e-6
    rows = torch.arange(scores.shape[0], device=scores.device)
    scores[rows, first] += torch.where(mixed, scores[rows, second], torch.zeros_like(top2.values[:, 1]))
    scores[rows[mixed], second[mixed]] = 0.0
    return scores, first

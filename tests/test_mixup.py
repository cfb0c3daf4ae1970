"""Mixup / cutmix: soft targets, the mixing weights, the cutmix box and its area-corrected lambda, draws."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidrec.errors import ConfigError
from vidrec.mixup import Mixup, mixup_accuracy_inputs, smooth_one_hot, soft_target_cross_entropy, step_rng

torch.set_num_threads(1)
K = 7


def batch(b=4, t=3, h=16, w=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 3, t, h, w, generator=g), torch.tensor([0, 3, 5, 6][:b])


def test_mixup_weights_are_lambda():
    video, labels = batch()
    mix = Mixup(K, alpha=0.8, cutmix_alpha=0.0, label_smoothing=0.0)
    out = mix(video, labels, step_rng(1, 0))
    lam = out.lam
    assert 0 < lam < 1 and out.box is None
    torch.testing.assert_close(out.video, lam * video + (1 - lam) * video.flip(0))
    torch.testing.assert_close(out.targets.sum(1), torch.ones(4))
    for i in range(4):  # clip i is mixed with clip 3 - i
        assert out.targets[i, labels[i]] == pytest.approx(lam)
        assert out.targets[i, labels[3 - i]] == pytest.approx(1 - lam)
    assert torch.equal(video, batch()[0])  # the input is left alone


def test_cutmix_box_is_shared_and_lambda_is_its_area():
    video, labels = batch(h=16, w=20)
    mix = Mixup(K, alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0)
    for step in range(20):
        out = mix(video, labels, step_rng(2, step))
        top, bottom, left, right = out.box
        inside = torch.zeros(16, 20, dtype=torch.bool)
        inside[top:bottom, left:right] = True
        # every frame of every clip: the box from the flipped batch, the rest its own
        assert torch.equal(out.video[..., inside], video.flip(0)[..., inside])
        assert torch.equal(out.video[..., ~inside], video[..., ~inside])
        area = (bottom - top) * (right - left) / (16 * 20)
        assert out.lam == pytest.approx(1 - area)
        assert out.targets[0, labels[0]] == pytest.approx(1 - area)
        assert out.targets[0, labels[3]] == pytest.approx(area)
        torch.testing.assert_close(out.targets.sum(1), torch.ones(4))


def test_cutmix_box_rule():
    """timm rand_bbox: sides int(H·sqrt(1-lam)), a uniform centre, clipped; the clipped box raises lam."""
    rng = np.random.default_rng(0)
    corrected = []
    for _ in range(300):
        lam = 0.64  # sqrt(0.36) = 0.6: cut 12 × 15 on a 20 × 25 frame
        top, bottom, left, right = Mixup.box(20, 25, lam, rng)
        assert bottom - top <= 12 and right - left <= 14  # 2 · (15 // 2) = 14: the half-widths are floored
        assert 0 <= top <= bottom <= 20 and 0 <= left <= right <= 25
        corrected.append(1 - (bottom - top) * (right - left) / 500)
    assert min(corrected) >= 1 - 12 * 14 / 500 - 1e-9 and max(corrected) > 0.75  # boxes at the border lose area


def test_label_smoothing_values():
    video, labels = batch()
    out = Mixup(K, prob=0.0, label_smoothing=0.1)(video, labels, step_rng(0, 0))
    assert out.lam == 1.0 and torch.equal(out.video, video)
    expect = torch.full((4, K), 0.1 / K)
    expect[torch.arange(4), labels] = 1 - 0.1 + 0.1 / K
    torch.testing.assert_close(out.targets, expect)
    torch.testing.assert_close(smooth_one_hot(labels, K, 0.1), expect)


def test_prob_and_switch_draws():
    mix = Mixup(K, alpha=0.8, cutmix_alpha=1.0, prob=0.6, switch_prob=0.25)
    draws = [mix.params(step_rng(5, s, r)) for s in range(2000) for r in (0, 1)]
    mixed = [d for d in draws if d[0] < 1.0]
    assert abs(len(mixed) / len(draws) - 0.6) < 0.03
    assert abs(np.mean([c for _, c in mixed]) - 0.25) < 0.03
    assert abs(np.mean([lam for lam, _ in mixed]) - 0.5) < 0.02  # Beta(a, a) is symmetric
    assert all(not c for lam, c in draws if lam == 1.0)
    assert all(mix.params(step_rng(9, 3, 1)) == mix.params(step_rng(9, 3, 1)) for _ in range(3))  # seeded
    assert mix.params(step_rng(9, 3, 0)) != mix.params(step_rng(9, 3, 1))  # ranks draw their own
    only_cut = Mixup(K, alpha=0.0, cutmix_alpha=1.0)
    assert all(only_cut.params(step_rng(1, s))[1] for s in range(50))
    with pytest.raises(ConfigError, match="alpha"):
        Mixup(K, alpha=0.0, cutmix_alpha=0.0)


def test_soft_target_cross_entropy():
    logits = torch.randn(5, K, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 2, 3, 6])
    torch.testing.assert_close(soft_target_cross_entropy(logits, smooth_one_hot(labels, K)),
                               F.cross_entropy(logits, labels))
    torch.testing.assert_close(soft_target_cross_entropy(logits, smooth_one_hot(labels, K, 0.1)),
                               F.cross_entropy(logits, labels, label_smoothing=0.1))


def test_train_accuracy_against_the_dominant_label():
    targets = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.0, 1.0], [0.2, 0.0, 0.8]])
    logits = torch.tensor([[0.0, 5.0, 0.0], [0.0, 5.0, 0.0], [9.0, 0.0, 1.0]]).log_softmax(1)
    scores, labels = mixup_accuracy_inputs(logits, targets)
    assert labels.tolist() == [0, 2, 2]
    # row 0: predicts the second mixed class, which counts for the dominant one; row 1 (not mixed): unchanged
    assert scores.argmax(1).tolist() == [0, 1, 2]
    torch.testing.assert_close(scores.sum(1), torch.ones(3))
    assert scores[0, 1] == 0 and scores[2, 0] == 0
    smoothed = 0.9 * torch.eye(3)[[1]] + 0.1 / 3  # not mixed, smoothed: left alone
    s, lab = mixup_accuracy_inputs(torch.zeros(1, 3), smoothed, label_smoothing=0.1)
    assert lab.tolist() == [1] and torch.allclose(s, torch.full((1, 3), 1 / 3))

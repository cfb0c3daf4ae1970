"""Video-level evaluation: view aggregation, chunking, metrics, DDP de-duplication, result files and plots."""

import csv
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from conftest import moving_bar_frames, read_json
from vidrec.data import isolation
from vidrec.data.annotations import VideoEntry
from vidrec.data.dataset import VideoDataset
from vidrec.data.sampling import test_clip_indices
from vidrec.data.spec import ClipConfig, DataSpec, Location
from vidrec.data.synthetic import write_video
from vidrec.data.transforms import ClipTransform
from vidrec.evaluation import confusion_matrix, per_class_rows, plot_confusion, write_eval_outputs
from vidrec.models.registry import IMAGENET_MEAN, IMAGENET_STD
from vidrec.scoring import aggregate_views, dedupe_videos, video_metrics, video_scores


def test_video_score_is_the_mean_softmax_of_hand_computed_views():
    # video 0: logits whose softmax is easy by hand; video 1: one confident view and one uniform view
    ln2, ln3 = math.log(2), math.log(3)
    logits = torch.tensor([
        [0.0, 0.0, 0.0],   # (1/3, 1/3, 1/3)
        [ln2, 0.0, 0.0],   # (1/2, 1/4, 1/4)
        [0.0, ln3, 0.0],   # (1/5, 3/5, 1/5)
        [0.0, 0.0, ln3],   # (1/5, 1/5, 3/5)
        [0.0, 0.0, 0.0],   # (1/3, 1/3, 1/3)
        [ln2, ln2, 0.0],   # (2/5, 2/5, 1/5)
    ])
    scores = aggregate_views(logits, views=3)
    expected = torch.tensor([
        [(1 / 3 + 1 / 2 + 1 / 5) / 3, (1 / 3 + 1 / 4 + 3 / 5) / 3, (1 / 3 + 1 / 4 + 1 / 5) / 3],
        [(1 / 5 + 1 / 3 + 2 / 5) / 3, (1 / 5 + 1 / 3 + 2 / 5) / 3, (3 / 5 + 1 / 3 + 1 / 5) / 3],
    ])
    torch.testing.assert_close(scores, expected, atol=1e-6, rtol=0)
    assert torch.allclose(scores.sum(dim=1), torch.ones(2))


class ViewProbe(nn.Module):
    """Logits = per-channel means of each view; records the batch sizes it is called with."""

    def __init__(self):
        super().__init__()
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(x.shape[0])
        return x.mean(dim=(2, 3, 4))


@pytest.mark.parametrize("views_per_batch", [1, 4, 7, 30, 100])
def test_views_run_in_chunks_with_the_same_scores(views_per_batch):
    views = torch.randn(3, 10, 3, 2, 4, 4, generator=torch.Generator().manual_seed(0))  # 3 videos × 10 views
    probe = ViewProbe()
    scores = video_scores(probe, views, views_per_batch)
    assert max(probe.calls) == min(views_per_batch, 30) and sum(probe.calls) == 30
    reference = aggregate_views(views.flatten(0, 1).mean(dim=(2, 3, 4)), 10)
    torch.testing.assert_close(scores, reference)
    per_video = torch.stack([views[b].mean(dim=(2, 3, 4)).softmax(-1).mean(0) for b in range(3)])
    torch.testing.assert_close(scores, per_video)


def test_video_metrics_by_hand():
    probs = torch.tensor([
        [0.6, 0.2, 0.1, 0.05, 0.03, 0.02],  # label 0: top-1 hit
        [0.5, 0.3, 0.1, 0.05, 0.03, 0.02],  # label 1: top-1 miss, top-5 hit
        [0.5, 0.3, 0.1, 0.05, 0.03, 0.02],  # label 5: miss in top-5 (rank 6)
        [0.1, 0.7, 0.1, 0.05, 0.03, 0.02],  # label 1: top-1 hit
    ])
    labels = torch.tensor([0, 1, 5, 1])
    m = video_metrics(probs, labels, num_classes=6)
    assert m["top1"] == pytest.approx(2 / 4)
    assert m["top5"] == pytest.approx(3 / 4)
    # per present class: class 0 → 1/1, class 1 → 1/2, class 5 → 0/1
    assert m["mean_class_acc"] == pytest.approx((1 + 0.5 + 0) / 3)


def test_padded_repeats_of_other_ranks_count_once():
    probs = torch.eye(4)
    rank0 = (torch.tensor([0, 2]), probs[[0, 2]], torch.tensor([0, 2]))
    rank1 = (torch.tensor([1, 3]), probs[[1, 3]], torch.tensor([1, 3]))
    rank1_pad = (torch.tensor([0]), probs[[0]], torch.tensor([0]))  # the sampler's padding repeats video 0
    merged = dedupe_videos([rank1, rank0, rank1_pad])
    assert merged["index"] == [0, 1, 2, 3]
    torch.testing.assert_close(merged["probs"], probs)
    assert merged["labels"].tolist() == [0, 1, 2, 3]


def test_test_views_decode_each_video_once(tmp_path, monkeypatch):
    frames = moving_bar_frames(n=20, h=48, w=64)
    write_video(tmp_path / "v.mp4", frames, fps=10)
    calls = []
    real = isolation.read_frames
    monkeypatch.setattr(isolation, "read_frames", lambda path, idx, **kw: calls.append(torch.as_tensor(idx).numel()) or real(path, idx, **kw))
    transform = ClipTransform(IMAGENET_MEAN, IMAGENET_STD, crop_size=32, test_scale=40, num_crops=3)
    ds = VideoDataset([VideoEntry("v", "testing", "a", 0, 20)], Location(str(tmp_path), "video", "{video_id}"),
                      mode="test", clip=ClipConfig(frames=4, sample_rate=2), num_clips=3, transform=transform,
                      decode_timeout_s=None)  # in this process, where the patch counts the reads
    item = ds[0]
    assert calls == [3 * 4]  # one decode for all 3 clips × 3 crops
    assert item["video"].shape == (9, 3, 4, 32, 32)
    # clip-major: view k·3 + j is crop j of clip k
    decoded = real(tmp_path / "v.mp4", test_clip_indices(20, 4, 2, 3))
    for k in range(3):
        torch.testing.assert_close(item["video"][3 * k : 3 * k + 3], transform.eval_views(decoded[4 * k : 4 * k + 4]))


def test_confusion_matrix_and_per_class_rows():
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    pred = torch.tensor([0, 1, 1, 1, 1, 0])
    cm = confusion_matrix(pred, labels, num_classes=4)
    assert cm.tolist() == [[1, 2, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    rows = {r["class"]: r for r in per_class_rows(cm, ["a", "b", "c", "d"])}
    assert rows["a"]["accuracy"] == pytest.approx(1 / 3) and rows["a"]["most_confused_with"] == "b"
    assert rows["b"]["accuracy"] == 1.0 and rows["b"]["most_confused_with"] == ""
    assert rows["c"]["accuracy"] == 0.0 and rows["c"]["support"] == 1
    assert [r["class"] for r in per_class_rows(cm, ["a", "b", "c", "d"])] == ["c", "a", "b", "d"]  # worst first


@pytest.mark.parametrize("num_classes", [8, 400])
def test_confusion_plot_is_written_for_few_and_many_classes(tmp_path, num_classes):
    import matplotlib.image as mpimg

    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(num_classes).repeat(3)
    pred = torch.where(torch.rand(labels.shape, generator=gen) < 0.7, labels,
                       torch.randint(0, num_classes, labels.shape, generator=gen))
    cm = confusion_matrix(pred, labels, num_classes)
    names = [f"class_{i:03d}" for i in range(num_classes)]
    plot_confusion(cm, names, tmp_path / "cm.png", "test")
    image = mpimg.imread(tmp_path / "cm.png")
    assert image.ndim == 3 and image.shape[0] >= 400 and image.shape[1] >= 400
    assert np.unique(image.reshape(-1, image.shape[-1]), axis=0).shape[0] > 10  # not blank


def test_eval_output_files_from_hand_made_results(tmp_path):
    names = ["a", "b", "c", "d", "e", "f"]
    probs = torch.tensor([
        [0.6, 0.2, 0.1, 0.05, 0.03, 0.02],
        [0.5, 0.3, 0.1, 0.05, 0.03, 0.02],
        [0.1, 0.7, 0.1, 0.05, 0.03, 0.02],
    ])
    labels = torch.tensor([0, 1, 1])
    module = SimpleNamespace(test_results={"index": [0, 2, 3], "probs": probs, "labels": labels,
                                           "metrics": video_metrics(probs, labels, 6)},
                             skipped={"test": [(1, "v1", "corrupt")]})
    spec = DataSpec.from_config({"name": "toy", "clip": {"frames": 8, "sample_rate": 2},
                                 "test": {"num_clips": 10, "num_crops": 3, "scale": 128, "crop_size": 112,
                                          "subset": "validation"}})
    dm = SimpleNamespace(labels=names, test_ids=lambda: ["v0", "v1", "v2", "v3"], missing={"test": ["v9"]}, spec=spec)
    results = write_eval_outputs(tmp_path, dm, module, "run/best.ckpt")
    saved = read_json(tmp_path / "results.json")
    assert saved == results
    assert saved["top1"] == pytest.approx(2 / 3) and saved["top5"] == 1.0 and saved["mean_class_acc"] == pytest.approx(0.75)
    assert saved["num_videos"] == 3 and saved["views_per_video"] == 30 and saved["skipped_videos"] == 2
    assert saved["checkpoint"] == "run/best.ckpt" and saved["level"] == "video"
    assert saved["protocol"]["num_clips"] == 10 and saved["protocol"]["clip_frames"] == 8
    with open(tmp_path / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["video_id"] for r in rows] == ["v0", "v2", "v3"] and [r["label"] for r in rows] == ["a", "b", "b"]
    assert [rows[1][f"pred{k}"] for k in range(1, 6)] == ["a", "b", "c", "d", "e"]
    assert float(rows[1]["score1"]) == pytest.approx(0.5) and float(rows[2]["score1"]) == pytest.approx(0.7)
    with open(tmp_path / "per_class.csv") as f:
        per_class = {r["class"]: r for r in csv.DictReader(f)}
    assert per_class["b"]["support"] == "2" and float(per_class["b"]["accuracy"]) == 0.5
    assert per_class["b"]["most_confused_with"] == "a"
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 1000


def test_confusion_matrix_of_a_many_class_run_shows_the_classes_present(tmp_path):
    """400 classes, 3 test videos: the figure shows the classes with videos or predictions, not a blank grid."""
    from PIL import Image

    names = [f"class {i}" for i in range(400)]
    probs = torch.zeros(3, 400)
    probs[0, 5], probs[1, 7], probs[2, 5] = 1.0, 1.0, 1.0
    labels = torch.tensor([5, 7, 9])
    module = SimpleNamespace(test_results={"index": [0, 1, 2], "probs": probs, "labels": labels,
                                           "metrics": video_metrics(probs, labels, 400)}, skipped={"test": []})
    spec = DataSpec.from_config({"name": "k400-part", "num_classes": 400})
    dm = SimpleNamespace(labels=names, test_ids=lambda: ["a", "b", "c"], missing={}, spec=spec)
    write_eval_outputs(tmp_path, dm, module, None)
    width, height = Image.open(tmp_path / "confusion_matrix.png").size
    assert width < 1500 and height < 700  # the named grid of 3 classes (5, 7, 9), not the 18 × 8 in 400-class panel

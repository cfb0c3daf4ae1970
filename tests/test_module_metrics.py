"""The module's metric collections (train, val) and the test stage report what their names say: top-5 is never
top-1 in disguise (torchmetrics' compute groups), and mean class accuracy is the mean over the classes that have
samples, at clip level as at video level."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from vidrec.module import VideoClassifier

torch.set_num_threads(1)
NUM_CLASSES = 6


class LogitsInInput(nn.Module):
    """A "network" whose input is its output: each batch carries the logits a test wants the module to see."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(1, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) + 0.0 * self.fc.weight.sum()  # a gradient path, so fit() has something to step


def ranked(labels: list[int], rank: int) -> torch.Tensor:
    """Logits where each sample's true class is ranked ``rank`` (1 = top)."""
    logits = torch.zeros(len(labels), NUM_CLASSES)
    for row, label in enumerate(labels):
        others = [c for c in range(NUM_CLASSES) if c != label]
        order = others[: rank - 1] + [label] + others[rank - 1:]
        logits[row, order] = torch.arange(NUM_CLASSES, 0, -1, dtype=torch.float32)
    return logits


def predicted(labels: list[int], predictions: list[int]) -> torch.Tensor:
    logits = torch.zeros(len(labels), NUM_CLASSES)
    logits[torch.arange(len(labels)), torch.tensor(predictions)] = 1.0
    return logits


#: a first batch with no top-5 hit, then one with every true class ranked 2nd: top-5 0.5, top-1 0
NO_HIT_THEN_SECOND = [(ranked([0, 1], NUM_CLASSES), [0, 1]), (ranked([2, 3], 2), [2, 3])]
#: class 5 appears only among the predictions: classes 0 and 1 score 1.0 and 0.5, mean 0.75 (not 0.5)
PREDICTION_ONLY_CLASS = [(predicted([0, 0, 1, 1], [0, 0, 1, 5]), [0, 0, 1, 1])]


def module() -> VideoClassifier:
    return VideoClassifier(LogitsInInput(), optimizer=lambda params: torch.optim.SGD(params, lr=0.0))


def loader(batches, views: int | None = None):
    out = []
    start = 0
    for logits, labels in batches:
        video = logits if views is None else logits[:, None].expand(-1, views, -1).contiguous()
        out.append({"video": video, "label": torch.tensor(labels), "index": torch.arange(start, start + len(labels))})
        start += len(labels)
    return torch.utils.data.DataLoader(out, batch_size=None)


def trainer() -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, num_sanity_val_steps=0, max_epochs=1)


@pytest.mark.parametrize("batches, key, expected", [(NO_HIT_THEN_SECOND, "top5", 0.5), (NO_HIT_THEN_SECOND, "top1", 0.0),
                                                   (PREDICTION_ONLY_CLASS, "mean_class_acc", 0.75)])
def test_validation_metrics(batches, key, expected):
    result = trainer().validate(module(), dataloaders=loader(batches), verbose=False)[0]
    assert result[f"val/{key}"] == pytest.approx(expected)


@pytest.mark.parametrize("batches, key, expected", [(NO_HIT_THEN_SECOND, "top5", 0.5), (NO_HIT_THEN_SECOND, "top1", 0.0),
                                                   (PREDICTION_ONLY_CLASS, "mean_class_acc", 0.75)])
def test_training_metrics(batches, key, expected):
    t = trainer()
    t.fit(module(), train_dataloaders=loader(batches))
    assert float(t.callback_metrics[f"train/{key}"]) == pytest.approx(expected)


@pytest.mark.parametrize("batches, key, expected", [(NO_HIT_THEN_SECOND, "top5", 0.5), (NO_HIT_THEN_SECOND, "top1", 0.0),
                                                   (PREDICTION_ONLY_CLASS, "mean_class_acc", 0.75)])
def test_test_stage_metrics_agree(batches, key, expected):
    m = module()
    trainer().test(m, dataloaders=loader(batches, views=3), verbose=False)
    assert m.test_results["metrics"][key] == pytest.approx(expected)

"""DataWait: the share of step time spent waiting for the loader, per epoch, with one warning when it is high;
present in every trainer train.py and eval.py build."""

import logging
import time

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from vidrec.callbacks import DataWait


class Clips(Dataset):
    """Random clips; each item takes ``delay`` seconds to "load" (a slow disk or decoder)."""

    def __init__(self, n: int, delay: float):
        self.n, self.delay = n, delay

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        time.sleep(self.delay)
        return {"video": torch.randn(3, 2, 8, 8), "label": i % 2}


class Tiny(pl.LightningModule):
    def __init__(self, compute_s: float):
        super().__init__()
        self.net, self.compute_s = torch.nn.Linear(3 * 2 * 8 * 8, 2), compute_s

    def training_step(self, batch, batch_idx):
        time.sleep(self.compute_s)  # a model step of known length
        return torch.nn.functional.cross_entropy(self.net(batch["video"].flatten(1)), batch["label"])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(delay: float, compute_s: float, tmp_path, epochs: int = 3) -> tuple[DataWait, pl.Trainer]:
    wait = DataWait()
    trainer = pl.Trainer(max_epochs=epochs, callbacks=[wait], logger=pl.loggers.CSVLogger(tmp_path, name="csv", version=""),
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                         accelerator="cpu", log_every_n_steps=1)
    trainer.fit(Tiny(compute_s), DataLoader(Clips(8, delay), batch_size=2, num_workers=0))
    return wait, trainer


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "vidrec.callbacks" and r.levelno == logging.WARNING]


def test_a_slow_loader_is_measured_and_warned_about_once(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="vidrec.callbacks"):
        _, trainer = fit(delay=0.06, compute_s=0.005, tmp_path=tmp_path)  # 120 ms loading, 5 ms model per step
    frac = float(trainer.callback_metrics["time/data_wait_frac"])
    assert 1 / 3 < frac < 1.0  # above the warning threshold (Lightning's own work per step counts as computing)
    assert float(trainer.callback_metrics["time/clips_per_s"]) > 0
    warned = warnings_of(caplog)
    assert len(warned) == 1, warned  # three slow epochs, one warning
    assert "reencode_videos.py" in warned[0] and "dataset.num_workers, now 0" in warned[0] and "local disk" in warned[0]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(lines) == 3 and "clips/s" in lines[0] and "waiting for data" in lines[0]
    rows = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()
    column = rows[0].split(",").index("time/data_wait_frac")
    values = [float(r.split(",")[column]) for r in rows[1:] if r.split(",")[column]]
    assert len(values) == 3 and all(0.0 <= v <= 1.0 for v in values)


def test_a_fast_loader_gives_a_small_share_and_no_warning(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="vidrec.callbacks"):
        _, trainer = fit(delay=0.0, compute_s=0.05, tmp_path=tmp_path, epochs=1)
    assert float(trainer.callback_metrics["time/data_wait_frac"]) < 1 / 3
    assert warnings_of(caplog) == []


@pytest.mark.parametrize("callbacks", ["default", "none"])
def test_every_trainer_has_one_data_wait(callbacks):
    from conftest import compose_resolved
    from vidrec.run import build_trainer

    cfg = compose_resolved([f"callbacks={callbacks}"])
    for with_callbacks in (True, False):  # train.py's trainer, eval.py's
        trainer = build_trainer(cfg, with_callbacks=with_callbacks)
        assert sum(isinstance(c, DataWait) for c in trainer.callbacks) == 1

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


class Scripted(Tiny):
    """Logs the given ``val/top1`` and ``val/loss`` at the end of each epoch's validation."""

    def __init__(self, top1: list[float], loss: list[float]):
        super().__init__(compute_s=0.0)
        self.top1, self.loss = top1, loss

    def validation_step(self, batch, batch_idx):
        e = self.current_epoch
        self.log_dict({"val/top1": self.top1[e], "val/loss": self.loss[e]}, on_epoch=True)


@pytest.mark.parametrize("tie_break,best_epoch", [("val/loss", 3), (None, 1)])
def test_equal_val_top1_goes_to_the_lower_val_loss_also_after_a_resume(tmp_path, tie_break, best_epoch):
    """Top-1 reaches 1.0 at epoch 1 and stays there; val loss is lowest at epoch 3. With the tie break the best
    checkpoint is epoch 3, without it epoch 1 (Lightning's rule: a tie does not replace) — also when the run is
    cut after epoch 2 and resumed."""
    from vidrec.callbacks import RunCheckpoint

    top1, loss = [0.5, 1.0, 1.0, 1.0, 1.0], [2.0, 0.8, 0.5, 0.3, 0.4]
    data = DataLoader(Clips(4, 0.0), batch_size=2)

    def run(epochs: int, ckpt_path: str | None = None) -> RunCheckpoint:
        best = RunCheckpoint(dirpath=tmp_path / "ckpt", filename="best-epoch{epoch:03d}", monitor="val/top1",
                             mode="max", save_top_k=1, tie_break=tie_break, auto_insert_metric_name=False)
        last = RunCheckpoint(dirpath=tmp_path / "ckpt", filename="last", save_top_k=-1, every_n_epochs=1,
                             auto_insert_metric_name=False, enable_version_counter=False)
        trainer = pl.Trainer(max_epochs=epochs, callbacks=[best, last], logger=False, enable_progress_bar=False,
                             enable_model_summary=False, accelerator="cpu")
        trainer.fit(Scripted(top1, loss), data, data, ckpt_path=ckpt_path)
        return best

    assert run(5).best_model_path.endswith(f"best-epoch{best_epoch:03d}.ckpt")
    for f in (tmp_path / "ckpt").iterdir():
        f.unlink()
    run(3)  # epochs 0-2, then resumed to 5
    resumed = run(5, ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    assert resumed.best_model_path.endswith(f"best-epoch{best_epoch:03d}.ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").glob("best-*")) == [f"best-epoch{best_epoch:03d}.ckpt"]

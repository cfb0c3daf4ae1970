"""EMA of the weights: the update rule, evaluation on the averaged weights, exact resume from a checkpoint."""

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vidrec.ema import EMA, ema_state_dict

torch.set_num_threads(1)


def test_update_rule_and_warmup():
    net = nn.Linear(2, 1, bias=False)
    ema = EMA(decay=0.5)
    with torch.no_grad():
        net.weight.fill_(4.0)
        ema.update(net, 1)  # the first step copies (decay 0)
        assert torch.equal(ema.shadow["weight"], torch.full((1, 2), 4.0))
        net.weight.fill_(0.0)
        ema.update(net, 2)
        assert torch.equal(ema.shadow["weight"], torch.full((1, 2), 2.0))
        ema.update(net, 3)
        assert torch.equal(ema.shadow["weight"], torch.full((1, 2), 1.0))
    warm = EMA(decay=0.9999, warmup=True)
    assert warm.decay_at(1) == 0.0
    assert warm.decay_at(2) == pytest.approx(1 - 2 ** (-2 / 3))  # timm ModelEmaV3.get_decay, step 1
    assert warm.decay_at(10**9) == 0.9999
    bn = nn.BatchNorm1d(3)
    ema_bn = EMA(decay=0.9)
    ema_bn.update(bn, 1)
    bn.num_batches_tracked += 5
    ema_bn.update(bn, 2)
    assert int(ema_bn.shadow["num_batches_tracked"]) == 5  # integer buffers are copied, not averaged


class Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
        self.val_weights: list[torch.Tensor] = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        self.val_weights.append(self.net[0].weight.detach().clone())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


def loader():
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(24, 4, generator=g), torch.randint(0, 3, (24,), generator=g))
    return DataLoader(data, batch_size=8, shuffle=False)


def fit(tmp_path, epochs, ckpt=None, ema=None, val=False):
    torch.manual_seed(0)
    model = Tiny()
    ema = ema or EMA(decay=0.8)
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[ema],
                         num_sanity_val_steps=0, limit_val_batches=1 if val else 0, default_root_dir=tmp_path)
    trainer.fit(model, loader(), loader() if val else None, ckpt_path=ckpt)
    return trainer, model, ema


def test_resumed_run_has_bit_identical_ema(tmp_path):
    _, whole_model, whole = fit(tmp_path / "a", 4)
    trainer, _, _ = fit(tmp_path / "b", 2)
    trainer.save_checkpoint(tmp_path / "half.ckpt")
    _, resumed_model, resumed = fit(tmp_path / "c", 4, ckpt=str(tmp_path / "half.ckpt"))
    assert whole.step == resumed.step == 12
    assert set(whole.shadow) == set(resumed.shadow)
    for k, v in whole.shadow.items():
        assert torch.equal(v, resumed.shadow[k]), k
    for k, v in whole_model.state_dict().items():  # and the trained weights too
        assert torch.equal(v, resumed_model.state_dict()[k]), k
    assert not torch.equal(whole.shadow["net.0.weight"], whole_model.net[0].weight)  # an average, not a copy


def test_validation_and_test_use_the_averaged_weights(tmp_path):
    trainer, model, ema = fit(tmp_path, 2, val=True)
    # validation ran on the average of the moment; the trained weights were put back after it
    assert len(model.val_weights) == 2
    assert torch.equal(model.val_weights[-1], ema.shadow["net.0.weight"])
    assert not torch.equal(model.net[0].weight, ema.shadow["net.0.weight"])
    trained = model.net[0].weight.detach().clone()
    model.test_step = model.validation_step
    model.val_weights.clear()
    trainer.test(model, loader(), verbose=False)
    assert torch.equal(model.val_weights[0], ema.shadow["net.0.weight"])
    assert torch.equal(model.net[0].weight, trained)
    path = tmp_path / "ema.ckpt"
    trainer.save_checkpoint(path)
    saved = ema_state_dict(torch.load(path, weights_only=True))
    assert torch.equal(saved["net.0.weight"], ema.shadow["net.0.weight"])


def test_a_test_run_from_a_checkpoint_restores_the_average(tmp_path):
    trainer, model, ema = fit(tmp_path, 1)
    trainer.save_checkpoint(tmp_path / "one.ckpt")
    fresh, fresh_ema = Tiny(), EMA(decay=0.8)
    fresh.test_step = fresh.validation_step
    pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
               callbacks=[fresh_ema]).test(fresh, loader(), ckpt_path=str(tmp_path / "one.ckpt"), verbose=False)
    assert torch.equal(fresh.val_weights[0], ema.shadow["net.0.weight"])

"""Precise BN: the running statistics become the exact statistics of the batches, and nothing else changes."""

import copy

import pytest
import torch
from torch import nn

from conftest import import_torchvision
from vidrec.precise_bn import bn_layers, update_bn_stats

torch.set_num_threads(1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv3d(3, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm3d(4)
        self.drop = nn.Dropout(0.5)
        self.conv = nn.Conv3d(4, 6, 1)
        self.bn2 = nn.BatchNorm3d(6, momentum=0.3)
        self.head = nn.Linear(6, 5)
        self.bn3 = nn.BatchNorm1d(5)

    def forward(self, x):
        x = self.drop(torch.relu(self.bn1(self.stem(x))))
        x = torch.relu(self.bn2(self.conv(x))).mean(dim=(2, 3, 4))
        return self.bn3(self.head(x))


def batches(n=5):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(b, 3, 2, 6, 6, generator=g) * 2 + 1 for b in (3, 4, 2, 5, 3)][:n]


def trained_net():
    torch.manual_seed(0)
    net = Net()
    net.train()
    for x in batches():  # running statistics that are not the precise ones
        net(x)
    return net


def expected_stats(net, data):
    """Each BN layer's inputs over the same batches (the same dropout draws), pooled: mean and biased variance."""
    ref = copy.deepcopy(net).train()
    seen = {name: [] for name, m in ref.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
    for name, m in ref.named_modules():
        if name in seen:
            m.register_forward_pre_hook(lambda mod, inp, name=name: seen[name].append(
                inp[0].double().transpose(0, 1).reshape(inp[0].shape[1], -1)))
    with torch.random.fork_rng():
        for x in data:
            ref(x)
    return {name: (torch.cat(v, 1).mean(1), torch.cat(v, 1).var(1, unbiased=False)) for name, v in seen.items()}


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_running_stats_become_the_exact_statistics(mode):
    net = trained_net()
    net.train(mode == "train")
    net.drop.train()  # a mixed set of flags, restored afterwards
    flags = {name: m.training for name, m in net.named_modules()}
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    expect = expected_stats(net, batches())
    assert update_bn_stats(net, iter(batches()), num_batches=5) == 5
    for name, m in net.named_modules():
        if name in expect:
            mean, var = expect[name]
            torch.testing.assert_close(m.running_mean.double(), mean, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(m.running_var.double(), var, rtol=1e-5, atol=1e-6)
            assert not torch.equal(m.running_mean, before[f"{name}.running_mean"])
    after = net.state_dict()
    for key, value in before.items():  # every other parameter and buffer bit-identical
        if not key.endswith(("running_mean", "running_var")):
            assert torch.equal(after[key], value), key
    assert {name: m.training for name, m in net.named_modules()} == flags
    assert net.bn2.momentum == 0.3 and net.bn1.momentum == 0.1
    assert torch.equal(torch.get_rng_state(), rng)  # dropout drew from a forked generator


def test_fewer_batches_frozen_layers_and_no_bn():
    net = trained_net()
    net.bn2.eval()  # frozen inside a model in training mode: kept as it is
    frozen = (net.bn2.running_mean.clone(), net.bn2.running_var.clone())
    expect = expected_stats(net, batches(2))
    assert update_bn_stats(net, iter(batches()), num_batches=2) == 2
    torch.testing.assert_close(net.bn1.running_mean.double(), expect["bn1"][0], rtol=1e-5, atol=1e-6)
    assert torch.equal(net.bn2.running_mean, frozen[0]) and torch.equal(net.bn2.running_var, frozen[1])
    assert not net.bn2.training and net.training
    assert update_bn_stats(net, iter(batches(3)), num_batches=10) == 3  # the loader ran out
    assert update_bn_stats(nn.Linear(2, 2), iter([torch.zeros(1, 2)]), 5) == 0
    assert len(bn_layers(net)) == 3


def test_matches_fvcore():
    precise = import_torchvision("fvcore.nn.precise_bn")
    net = trained_net()
    net.drop.p = 0.0  # fvcore draws dropout from the global generator: take it out of the comparison
    ours, theirs = copy.deepcopy(net), copy.deepcopy(net)
    update_bn_stats(ours, iter(batches()), 5)
    precise.update_bn_stats(theirs, iter(batches()), 5)
    for a, b in zip(bn_layers(ours), bn_layers(theirs)):
        torch.testing.assert_close(a.running_mean, b.running_mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(a.running_var, b.running_var, rtol=1e-5, atol=1e-6)


def test_callback_recomputes_at_the_end_of_the_epoch(tmp_path):
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader, TensorDataset

    from vidrec.precise_bn import PreciseBN

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))

        def training_step(self, batch, batch_idx):
            return nn.functional.cross_entropy(self.model(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.5)

    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(40, 4, generator=g) * 3, torch.randint(0, 3, (40,), generator=g))
    loader = DataLoader(data, batch_size=8)
    module = Module()
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[PreciseBN(num_batches=3)],
                         default_root_dir=tmp_path)
    trainer.fit(module, loader)
    # the final weights' statistics over the loader's first 3 batches: the callback ran after the last step
    x = module.model[0](data.tensors[0][:24]).double()
    torch.testing.assert_close(module.model[1].running_mean.double(), x.mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(module.model[1].running_var.double(), x.var(0, unbiased=False), rtol=1e-5, atol=1e-6)

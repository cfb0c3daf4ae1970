"""Fine-tuning helpers: head replacement, freezing modes, frozen BatchNorm, parameter groups."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from vidrec.errors import ConfigError
from vidrec.models import build_model, list_models
from vidrec.models.finetune import (
    backbone_parameters,
    freeze,
    get_head,
    head_parameters,
    keep_frozen_bn_eval,
    replace_head,
    stage_of,
)

torch.set_num_threads(1)
CLIP = torch.randn(2, 3, 8, 64, 64)


def bn_stats(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: m.running_mean.clone() for n, m in model.named_modules() if isinstance(m, nn.BatchNorm3d)}


def changed(before: dict[str, torch.Tensor], model: nn.Module) -> set[str]:
    return {n for n, v in bn_stats(model).items() if not torch.equal(v, before[n])}


@pytest.mark.parametrize("name", list_models())
def test_replace_head_every_model(name: str) -> None:
    with torch.device("meta"):
        model = build_model(name, 400)
        in_features = get_head(model).in_features
        assert replace_head(model, 51) is model
    assert isinstance(model.fc, nn.Linear)
    assert (model.fc.in_features, model.fc.out_features) == (in_features, 51)
    assert {stage_of(n, model) for n, _ in model.named_parameters()} == {0, 1, 2, 3, 4, 5}


def test_replaced_head_runs() -> None:
    model = replace_head(build_model("i3d_inception", 400), 7).eval()
    assert model(CLIP[:1]).shape == (1, 7)
    assert not model.fc.bias.any()


def test_stage_names() -> None:
    assert stage_of("stem.0.weight") == 0 and stage_of("conv1.weight") == 0 and stage_of("bn1.bias") == 0
    assert stage_of("layer3.1.conv1.0.0.weight") == 3
    assert stage_of("nonlocal_blocks.layer2_1.theta.weight") == 2
    assert stage_of("Conv3d_1a_7x7.conv3d.weight") == 0 and stage_of("Conv3d_2c_3x3.bn.bias") == 1
    assert stage_of("Mixed_3c.b0.conv3d.weight") == 2 and stage_of("Mixed_5b.b3b.bn.bias") == 4
    assert stage_of("fc.weight") == 5


def test_freeze_backbone_trains_only_the_head() -> None:
    model = freeze(build_model("r3d_tiny", 5), "backbone")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}
    before = bn_stats(model)
    model.train()
    model(CLIP).sum().backward()
    assert not changed(before, model)  # frozen BN keeps its statistics in train mode
    assert all(p.grad is None for n, p in model.named_parameters() if not n.startswith("fc."))


def test_freeze_until_layer2() -> None:
    model = freeze(build_model("r2plus1d_tiny", 5), "until_layer2")
    for name, param in model.named_parameters():
        assert param.requires_grad == (stage_of(name) > 2), name
    before = bn_stats(model)
    model.train()(CLIP)
    moved = changed(before, model)
    assert moved and all(stage_of(n) > 2 for n in moved)
    assert any(n.startswith("layer3") for n in moved)


def test_freeze_bn_only_and_unfreeze() -> None:
    model = freeze(build_model("resnet3d_10", 5), "bn")
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm3d):
            assert not module.weight.requires_grad, name
        elif isinstance(module, nn.Conv3d):
            assert module.weight.requires_grad, name
    before = bn_stats(model)
    model.train()(CLIP)
    assert not changed(before, model)
    freeze(model, "none")
    assert all(p.requires_grad for p in model.parameters())
    model.train()(CLIP)
    assert changed(before, model) == set(before)


def test_keep_frozen_bn_eval_after_train() -> None:
    model = freeze(build_model("i3d_inception", 5), "until_layer1")
    model.train()
    keep_frozen_bn_eval(model)
    assert not model.Conv3d_1a_7x7.bn.training and not model.Conv3d_2c_3x3.bn.training
    assert model.Mixed_3b.b0.bn.training


def test_frozen_model_survives_deepcopy() -> None:
    model = copy.deepcopy(freeze(build_model("r3d_tiny", 5), "backbone"))
    before = bn_stats(model)
    model.train()(CLIP)
    assert not changed(before, model)


def test_unknown_freeze_mode() -> None:
    with pytest.raises(ConfigError, match="until_layer4"):
        freeze(build_model("r3d_tiny", 5), "until_layer7")


def test_parameter_groups_for_head_lr() -> None:
    model = freeze(build_model("i3d_r50", 5), "until_layer1")
    head, backbone = head_parameters(model), backbone_parameters(model)
    assert {id(p) for p in head}.isdisjoint(id(p) for p in backbone)
    assert len(head) + len(backbone) == len(list(model.parameters()))
    trainable = backbone_parameters(model, trainable_only=True)
    assert trainable and all(p.requires_grad for p in trainable) and len(trainable) < len(backbone)
    optimizer = torch.optim.SGD([{"params": trainable, "lr": 0.01},
                                 {"params": head_parameters(model, trainable_only=True), "lr": 0.1}], lr=0.01)
    assert [g["lr"] for g in optimizer.param_groups] == [0.01, 0.1]

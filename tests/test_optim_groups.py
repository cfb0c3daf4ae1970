"""Optimizer parameter groups: no weight decay on 1-D parameters and embeddings, VideoMAE's layer-wise lr decay."""

import pytest
import torch
from torch import nn

from vidrec.errors import ConfigError
from vidrec.optim import param_groups, vit_layer_id, warmup_cosine

torch.set_num_threads(1)
D, DEPTH = 8, 4


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(D)
        self.attn = nn.Linear(D, 3 * D)
        self.mlp = nn.Sequential(nn.Linear(D, 2 * D), nn.GELU(), nn.Linear(2 * D, D))


class TinyViT(nn.Module):
    """The parameter names of a VideoMAE / timm ViT: patch_embed, cls_token, pos_embed, blocks.<i>, norm, fc."""

    def __init__(self):
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(3, D, (2, 4, 4), (2, 4, 4))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, 9, D))
        self.blocks = nn.ModuleList(Block() for _ in range(DEPTH))
        self.norm = nn.LayerNorm(D)
        self.fc = nn.Linear(D, 5)


def expected_layer(name):
    """VideoMAE get_num_layer_for_vit, written out for this model: 0, block + 1, or DEPTH + 1."""
    if name in ("cls_token", "pos_embed") or name.startswith("patch_embed"):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return DEPTH + 1


def group_of(groups, param):
    found = [g for g in groups if any(p is param for p in g["params"])]
    assert len(found) == 1
    return found[0]


def test_every_parameter_gets_the_videomae_factor():
    model = TinyViT()
    groups = param_groups(model, lr=1e-3, weight_decay=0.05, layer_decay=0.75)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    for name, p in model.named_parameters():
        g = group_of(groups, p)
        scale = 0.75 ** (DEPTH + 1 - expected_layer(name))  # run_class_finetuning.py:417
        assert g["lr_scale"] == pytest.approx(scale) and g["lr"] == pytest.approx(1e-3 * scale), name
        no_decay = p.ndim == 1 or name in ("cls_token", "pos_embed")
        assert g["weight_decay"] == (0.0 if no_decay else 0.05), name
    names = {g["name"] for g in groups}
    assert {"layer_0_no_decay", "layer_0_decay", "layer_1_decay", "layer_4_no_decay", "layer_5_decay"} <= names
    pe = group_of(groups, model.patch_embed.proj.weight)
    assert pe["lr_scale"] == pytest.approx(0.75 ** 5) and pe["weight_decay"] == 0.05
    head = group_of(groups, model.fc.weight)
    assert head["lr_scale"] == 1.0


@pytest.mark.parametrize("name,layer", [("cls_token", 0), ("pos_embed_spatial", 0), ("patch_embed.proj.weight", 0),
                                        ("blocks.0.attn.qkv.weight", 1), ("blocks.11.mlp.fc2.bias", 12),
                                        ("norm.weight", 13), ("fc.weight", 13), ("fc_norm.bias", 13),
                                        ("time_embed", 0), ("conv_proj.weight", 0), ("pos_encoding.spatial_pos", 0)])
def test_name_rule(name, layer):
    assert vit_layer_id(name, 12) == layer


def test_without_layer_decay_two_groups_and_frozen_left_out():
    model = TinyViT()
    model.blocks[0].requires_grad_(False)
    groups = param_groups(model, lr=0.1, weight_decay=1e-4)
    assert sorted(g["name"] for g in groups) == ["decay", "no_decay"]
    assert all(g["lr"] == 0.1 and g["lr_scale"] == 1.0 for g in groups)
    frozen = {id(p) for p in model.blocks[0].parameters()}
    assert not frozen & {id(p) for g in groups for p in g["params"]}
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert sum(len(g["params"]) for g in groups) == len(trainable)


def test_head_lr_mult_and_no_weight_decay_method():
    model = TinyViT()
    model.no_weight_decay = lambda: {"blocks.1.attn.weight"}
    groups = param_groups(model, lr=1.0, weight_decay=0.1, layer_decay=0.5, head_lr_mult=10.0)
    assert group_of(groups, model.fc.weight)["lr"] == pytest.approx(10.0)
    assert group_of(groups, model.norm.weight)["lr"] == pytest.approx(1.0)
    assert group_of(groups, model.blocks[1].attn.weight)["weight_decay"] == 0.0
    assert group_of(groups, model.blocks[2].attn.weight)["weight_decay"] == 0.1


class TinySwin(nn.Module):
    """A hierarchical model states its own layers: ``num_layers`` and ``layer_id(name)``."""

    num_layers = 3

    def __init__(self):
        super().__init__()
        self.patch_embed = nn.Linear(4, D)
        self.layers = nn.ModuleList(nn.ModuleList(nn.Linear(D, D) for _ in range(n)) for n in (1, 2))
        self.fc = nn.Linear(D, 5)

    def layer_id(self, name):
        if name.startswith("layers."):
            stage, block = int(name.split(".")[1]), int(name.split(".")[2])
            return (0, 1)[stage] + block + 1
        return 0 if name.startswith("patch_embed") else self.num_layers + 1


def test_model_layer_id_interface():
    model = TinySwin()
    groups = param_groups(model, lr=1.0, weight_decay=0.0, layer_decay=0.5)
    assert group_of(groups, model.patch_embed.weight)["lr"] == pytest.approx(0.5 ** 4)
    assert group_of(groups, model.layers[0][0].weight)["lr"] == pytest.approx(0.5 ** 3)
    assert group_of(groups, model.layers[1][1].weight)["lr"] == pytest.approx(0.5 ** 1)
    assert group_of(groups, model.fc.weight)["lr"] == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="layer_decay"):
        param_groups(nn.Sequential(nn.Linear(2, 2)), 1.0, 0.0, layer_decay=0.75)


def test_schedulers_keep_the_layer_ratios():
    model = TinyViT()
    opt = torch.optim.AdamW(param_groups(model, lr=1e-3, weight_decay=0.05, layer_decay=0.75), lr=123.0)
    sched = warmup_cosine(opt, warmup_epochs=1, max_epochs=4, steps_per_epoch=2)
    for _ in range(3):
        opt.step()
        sched.step()
    first = opt.param_groups[0]["lr"] / opt.param_groups[0]["lr_scale"]
    assert all(g["lr"] == pytest.approx(first * g["lr_scale"]) for g in opt.param_groups)


def test_embedding_names_of_other_families_skip_weight_decay():
    model = TinyViT()
    model.time_embed = nn.Parameter(torch.zeros(1, 4, D))        # TimeSformer
    model.pos_encoding = nn.Module()                             # vidrec's MViT (torchvision names)
    model.pos_encoding.spatial_pos = nn.Parameter(torch.zeros(9, D))
    model.blocks[0].relative_position_bias_table = nn.Parameter(torch.zeros(7, 2))  # Swin
    groups = param_groups(model, lr=1.0, weight_decay=0.05, layer_decay=0.75)
    for p in (model.time_embed, model.pos_encoding.spatial_pos, model.blocks[0].relative_position_bias_table):
        assert group_of(groups, p)["weight_decay"] == 0.0
    assert group_of(groups, model.time_embed)["lr_scale"] == pytest.approx(0.75 ** 5)


def test_video_resnet_stages_are_its_layers_for_layer_decay():
    """The 3D-ResNet family: stem layer 0, layerK layer K, the classifier layer 5, so ``model.layer_decay`` scales
    the stem's lr by decay**5 and the classifier's by 1."""
    from vidrec.models import build_model

    model = build_model("r2plus1d_tiny", 8)
    groups = param_groups(model, lr=1.0, weight_decay=0.05, layer_decay=0.5)
    by_name = {n: g["lr"] for g in groups for n, p in model.named_parameters() if any(p is q for q in g["params"])}
    assert by_name["stem.0.weight"] == 0.5**5 and by_name["layer3.0.conv1.0.0.weight"] == 0.5**2
    assert by_name["fc.weight"] == by_name["fc.bias"] == 1.0
    assert {n.split(".")[0] for n in by_name} == {"stem", "layer1", "layer2", "layer3", "layer4", "fc"}

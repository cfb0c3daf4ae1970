"""The presets that are the authors' recipes: videomae_vit_b_kinetics_finetune (MCG-NJU/VideoMAE), swin3d_t_kinetics
(SwinTransformer/Video-Swin-Transformer) and tsm_r50_something_v2 (open-mmlab/mmaction2's TSM config).

Each cited value of a preset is compared with a table written here (key -> value -> the authors' file and line), so
that a changed preset fails; each preset's run objects are built without training (the network with its optimizer
parameter groups and schedule, the data spec and transforms), and what vidrec loads as the preset's initialisation is
checked with files written in the authors' layouts.
"""

from __future__ import annotations

import copy
import functools
import re
from types import SimpleNamespace

import pytest
import torch

from conftest import compose_resolved
from vidrec.compute import scaled_lr
from vidrec.data.spec import DataSpec
from vidrec.data.transforms import ClipTransform
from vidrec.models import model_info
from vidrec.run import build_module

torch.set_num_threads(1)

VM = "MCG-NJU/VideoMAE"
FT = f"{VM} scripts/kinetics/videomae_vit_base_patch16_224_tubemasking_ratio_0.9_epoch_1600/finetune.sh@dd87594"
RCF = f"{VM} run_class_finetuning.py@1d5cc4f"
UT = f"{VM} utils.py@ed5ce1f"
KIN = f"{VM} kinetics.py@ed5ce1f"
VS = "SwinTransformer/Video-Swin-Transformer"
SW = f"{VS} configs/recognition/swin/swin_tiny_patch244_window877_kinetics400_1k.py@db018fb"
SWB = f"{VS} configs/_base_/models/swin/swin_tiny.py@37a4ade"
MM = "open-mmlab/mmaction2"
TSM = f"{MM} configs/recognition/tsm/tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb.py@d312248"
TSMB = f"{MM} configs/_base_/models/tsm_r50.py@3149f38"
TSMC = f"{MM} mmaction/engine/optimizers/tsm_optim_wrapper_constructor.py@51a7d27"

# preset -> [(key, value, where the authors set it)]
CITED = {
    "videomae_vit_b_kinetics_finetune": [
        ("model.net.name", "videomae_vit_b", f"{FT}:16 --model vit_base_patch16_224"),
        ("model.pretrained", "${paths.data_dir}/pretrained/k400_videomae_pretrain_base_patch16_224_frame_16x4_tube_"
         "mask_ratio_0.9_e1600/checkpoint-1599.pth", f"{FT}:6 MODEL_PATH"),
        ("model.net.dropout", 0.0, f"{RCF}:41 --fc_drop_rate"),
        ("model.net.drop_path", 0.1, f"{RCF}:47 --drop_path"),
        ("model.layer_decay", 0.75, f"{RCF}:74 --layer_decay"),
        ("model.no_weight_decay", True, f"{VM} optim_factory.py@ed5ce1f:56-61; {RCF}:424"),
        ("model.label_smoothing", 0.0, f"{RCF}:461-463 SoftTargetCrossEntropy with mixup"),
        ("model.mixup.enabled", True, f"{RCF}:295"),
        ("model.mixup.alpha", 0.8, f"{RCF}:115 --mixup"),
        ("model.mixup.cutmix_alpha", 1.0, f"{RCF}:117 --cutmix"),
        ("model.mixup.prob", 1.0, f"{RCF}:121 --mixup_prob"),
        ("model.mixup.switch_prob", 0.5, f"{RCF}:123 --mixup_switch_prob"),
        ("model.mixup.label_smoothing", 0.1, f"{RCF}:93 --smoothing, {RCF}:298-301"),
        ("dataset.name", "kinetics", f"{FT}:17 --data_set Kinetics-400"),
        ("dataset.clip.frames", 16, f"{FT}:28 --num_frames"),
        ("dataset.clip.sample_rate", 4, f"{FT}:29 --sampling_rate"),
        ("dataset.clip.sampling", "clip", f"{KIN}:252-265 one clip of consecutive sampled frames"),
        ("dataset.train.crop_size", 224, f"{FT}:25 --input_size"),
        ("dataset.train.flip", True, f"{KIN}:200"),
        ("dataset.train.augment.crop", "random_resized", f"{KIN}:189-205"),
        ("dataset.train.augment.scale", [0.08, 1.0], f"{KIN}:190"),
        ("dataset.train.augment.ratio", [0.75, 1.3333], f"{KIN}:191"),
        ("dataset.train.augment.rand_augment", "rand-m7-n4-mstd0.5-inc1", f"{RCF}:91 --aa; {KIN}:166-176"),
        ("dataset.train.augment.interpolation", "bicubic", f"{RCF}:95 --train_interpolation"),
        ("dataset.train.augment.erase_prob", 0.25, f"{RCF}:105 --reprob"),
        ("dataset.train.augment.erase_mode", "pixel", f"{RCF}:107 --remode"),
        ("dataset.train.augment.erase_count", 1, f"{RCF}:109 --recount"),
        ("dataset.train.repeats", 2, f"{FT}:24 --num_sample 2"),
        ("dataset.test.scale", 224, f"{FT}:26 --short_side_size; {KIN}:63-65"),
        ("dataset.test.crop_size", 224, f"{KIN}:141-152"),
        ("dataset.test.num_clips", 5, f"{FT}:36 --test_num_segment"),
        ("dataset.test.num_crops", 3, f"{FT}:37 --test_num_crop"),
        ("dataset.test.clip_selection", "uniform", f"{KIN}:143-145 starts from 0 to the end, evenly"),
        ("dataset.batch_size", 12, f"{FT}:23 --batch_size 6 videos × {FT}:24 2 samples"),
        ("optimizer._target_", "torch.optim.AdamW", f"{FT}:30 --opt adamw; {UT}:489-491"),
        ("optimizer.lr", 5.0e-4, f"{FT}:31 --lr (per 256 videos, {RCF}:406)"),
        ("optimizer.betas", [0.9, 0.999], f"{FT}:32; {UT}:496-499"),
        ("optimizer.eps", 1.0e-8, f"{UT}:500"),
        ("optimizer.weight_decay", 0.05, f"{FT}:33"),
        ("optimizer_scaling.rule", "linear", f"{RCF}:404-408"),
        ("optimizer_scaling.base_batch_size", 512, f"{RCF}:406 per 256 videos = 512 clips with 2 samples"),
        ("scheduler._target_", "vidrec.optim.warmup_cosine", f"{RCF}:451-454; {UT}:385-402"),
        ("scheduler.warmup_epochs", 5, f"{RCF}:81 --warmup_epochs"),
        ("scheduler.min_lr_ratio", 0.002, f"{RCF}:78 --min_lr 1e-6 / 5e-4"),
        ("scheduler.warmup_start_ratio", 0.002, f"{RCF}:76 --warmup_lr 1e-6 / 5e-4"),
        ("trainer.max_epochs", 75, f"{FT}:34 --epochs"),
        ("trainer.accumulate_grad_batches", 1, f"{RCF}:31 --update_freq 1"),
        ("trainer.gradient_clip_val", None, f"{RCF}:62 --clip_grad None; {UT}:485-509"),
        ("trainer.check_val_every_n_epoch", 1, f"{RCF}:511-512"),
        ("checkpoint.every_n_epochs", 10, f"{FT}:27 --save_ckpt_freq"),
    ],
    "swin3d_t_kinetics": [
        ("model.net.name", "swin3d_t", f"{SWB}:5-9"),
        ("model.pretrained", "${paths.data_dir}/pretrained/swin_tiny_patch4_window7_224.pth",
         f"{VS} README.md@d13b5a3:47, 85-87"),
        ("model.net.dropout", 0.5, f"{SWB}:23 dropout_ratio"),
        ("model.net.drop_path", 0.1, f"{SW}:4 drop_path_rate"),
        ("model.head_lr_mult", 10.0, f"{SW}:96 backbone lr_mult 0.1"),
        ("model.no_weight_decay", False, f"{SW}:93-95 as mmcv's first-matching custom key applies them"),
        ("model.mixup.enabled", False, f"{SW}:15-27 no mixup"),
        ("dataset.name", "kinetics", f"{SW}:7-12"),
        ("dataset.clip.frames", 32, f"{SW}:17 clip_len"),
        ("dataset.clip.sample_rate", 2, f"{SW}:17 frame_interval"),
        ("dataset.clip.sampling", "clip", f"{SW}:17 num_clips=1"),
        ("dataset.train.crop_size", 224, f"{SW}:21"),
        ("dataset.train.flip", True, f"{SW}:22"),
        ("dataset.train.augment.crop", "random_resized", f"{SW}:20"),
        ("dataset.train.augment.scale", [0.08, 1.0], f"{VS} mmaction/datasets/pipelines/augmentations.py@37a4ade:739"),
        ("dataset.train.augment.ratio", [0.75, 1.3333], f"{VS} augmentations.py@37a4ade:740"),
        ("dataset.train.augment.short_side", 256, f"{SW}:19"),
        ("dataset.train.augment.rand_augment", None, f"{SW}:15-27"),
        ("dataset.train.augment.erase_prob", 0.0, f"{SW}:15-27"),
        ("dataset.train.repeats", 1, f"{SW}:15-27"),
        ("dataset.test.scale", 224, f"{SW}:54"),
        ("dataset.test.crop_size", 224, f"{SW}:55"),
        ("dataset.test.num_clips", 4, f"{SW}:51"),
        ("dataset.test.num_crops", 3, f"{SW}:55"),
        ("dataset.test.views_per_batch", 4, f"{SW}:4 max_testing_views"),
        ("dataset.batch_size", 2, f"{SW}:63 8 // {SW}:117 4 ({VS} mmaction/apis/train.py@37a4ade:53)"),
        ("optimizer._target_", "torch.optim.AdamW", f"{SW}:92"),
        ("optimizer.lr", 1.0e-4, f"{SW}:92 lr=1e-3 × {SW}:96 lr_mult 0.1"),
        ("optimizer.betas", [0.9, 0.999], f"{SW}:92"),
        ("optimizer.weight_decay", 0.02, f"{SW}:92"),
        ("optimizer_scaling.rule", "linear", "8 GPUs × 2 × 4 accumulated"),
        ("optimizer_scaling.base_batch_size", 64, f"{VS} README.md@d13b5a3:85-88; {SW}:63, 117"),
        ("scheduler._target_", "vidrec.optim.warmup_cosine", f"{SW}:98-104 CosineAnnealing, linear warm-up"),
        ("scheduler.warmup_epochs", 2.5, f"{SW}:101-103"),
        ("scheduler.min_lr_ratio", 0.0, f"{SW}:100 min_lr=0"),
        ("scheduler.warmup_start_ratio", 0.1, "mmcv 1.x LrUpdaterHook warmup_ratio default"),
        ("trainer.max_epochs", 30, f"{SW}:105"),
        ("trainer.accumulate_grad_batches", 4, f"{SW}:117 update_interval"),
        ("trainer.gradient_clip_val", None, f"{SW}:118 grad_clip=None"),
        ("trainer.check_val_every_n_epoch", 1, f"{SW}:88-89 has 5: a departure (checkpoints follow validation)"),
        ("checkpoint.every_n_epochs", 1, f"{SW}:108"),
    ],
    "tsm_r50_something_v2": [
        ("model.net.name", "tsm_r50", f"{TSMB}:7-11 ResNetTSM depth 50"),
        ("model.pretrained", "${paths.data_dir}/pretrained/resnet50-0676ba61.pth", f"{TSMB}:8 torchvision://resnet50"),
        ("model.net.dropout", 0.5, f"{TSM}:4"),
        ("model.net.partial_bn", False, f"{TSMB}:10; {MM} mmaction/models/backbones/resnet.py@9adb5d8:372-373"),
        ("model.head_lr_mult", 5.0, f"{TSM}:118 fc_lr5; {TSMC}:104-108"),
        ("model.no_weight_decay", True, f"{TSMC}:88-92, 98-103"),
        ("dataset.name", "something_v2", f"{TSM}:7-10"),
        ("dataset.num_classes", 174, f"{TSM}:4"),
        ("dataset.clip.frames", 8, f"{TSM}:17 num_clips=8"),
        ("dataset.clip.sample_rate", 1, f"{TSM}:17 frame_interval=1"),
        ("dataset.clip.sampling", "segments", f"{TSM}:17 clip_len=1"),
        ("dataset.train.crop_size", 224, f"{TSM}:22, 27"),
        ("dataset.train.flip", True, f"{TSM}:14, 28 Flip with flip_label_map"),
        ("dataset.train.augment.crop", "multi_scale", f"{TSM}:20-26"),
        ("dataset.train.augment.multi_scales", [1.0, 0.875, 0.75, 0.66], f"{TSM}:23"),
        ("dataset.train.augment.max_distort", 1, f"{TSM}:25 max_wh_scale_gap"),
        ("dataset.train.augment.short_side", 256, f"{TSM}:19"),
        ("dataset.test.clip_selection", "segments", f"{TSM}:48-54"),
        ("dataset.test.num_clips", 2, f"{TSM}:54 twice_sample"),
        ("dataset.test.scale", 256, f"{TSM}:56"),
        ("dataset.test.crop_size", 256, f"{TSM}:57"),
        ("dataset.test.num_crops", 3, f"{TSM}:57"),
        ("dataset.batch_size", 16, f"{TSM}:63"),
        ("optimizer._target_", "torch.optim.SGD", f"{TSM}:119"),
        ("optimizer.lr", 0.02, f"{TSM}:119"),
        ("optimizer.momentum", 0.9, f"{TSM}:119"),
        ("optimizer.weight_decay", 5.0e-4, f"{TSM}:119"),
        ("optimizer.nesterov", False, f"{TSM}:119 (SGD default)"),
        ("optimizer_scaling.rule", "linear", f"{TSM}:122-126; {MM} configs/recognition/tsm/README.md@2ddf4b5:43"),
        ("optimizer_scaling.base_batch_size", 128, f"{TSM}:126"),
        ("scheduler._target_", "torch.optim.lr_scheduler.MultiStepLR", f"{TSM}:107-113"),
        ("scheduler.milestones", [25, 45], f"{TSM}:112"),
        ("scheduler.gamma", 0.1, f"{TSM}:113"),
        ("trainer.max_epochs", 50, f"{TSM}:100-101"),
        ("trainer.gradient_clip_val", 20, f"{TSM}:120 max_norm=20"),
        ("trainer.gradient_clip_algorithm", "norm", f"{TSM}:120 norm_type=2"),
        ("trainer.check_val_every_n_epoch", 1, f"{TSM}:101"),
        ("trainer.sync_batchnorm", False, f"{MM} mmaction/models/backbones/resnet.py@9adb5d8:370 BN2d"),
        ("checkpoint.every_n_epochs", 3, f"{TSM}:98"),
    ],
}

# the authors' setup: processes, and the learning rates they trained with (backbone, classifier)
AUTHORS_RUN = {
    "videomae_vit_b_kinetics_finetune": (64, 7.5e-4, 7.5e-4),  # FT:12-14 64 GPUs; RCF:406 5e-4 × 384 / 256
    "swin3d_t_kinetics": (8, 1e-4, 1e-3),                   # README.md:85-88; CFG:92, 96
    "tsm_r50_something_v2": (8, 0.02, 0.1),                  # CFG:119; TSMC:104-108 fc.weight × 5
}


@functools.cache
def _composed(overrides: tuple[str, ...]) -> dict:
    return compose_resolved(list(overrides))


def preset(name: str, *overrides: str) -> dict:
    """The resolved config of ``experiment=<name>`` with ``overrides`` (a fresh copy: callers may change it)."""
    return copy.deepcopy(_composed((f"experiment={name}", *overrides)))


def select(cfg: dict, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def written(name: str) -> str:
    from conftest import REPO

    return (REPO / "configs" / "experiment" / f"{name}.yaml").read_text()


@pytest.mark.parametrize("name,key,value,source",
                         [(n, k, v, s) for n, rows in CITED.items() for k, v, s in rows],
                         ids=[f"{n}:{k}" for n, rows in CITED.items() for k, _, _ in rows])
def test_preset_value_is_the_authors(name, key, value, source):
    cfg = preset(name)
    if isinstance(value, str) and value.startswith("${paths.data_dir}"):
        value = value.replace("${paths.data_dir}", cfg["paths"]["data_dir"])
    got = select(cfg, key)
    if isinstance(value, float) and got is not None:
        assert got == pytest.approx(value, rel=1e-9), f"{name}: {key}={got}, the authors' {value} ({source})"
    else:
        assert got == value, f"{name}: {key}={got}, the authors' {value} ({source})"


@pytest.mark.parametrize("name", sorted(CITED))
def test_preset_header_states_source_target_and_departures(name):
    text = written(name)
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert "Target:" in header and "Departures" in header and "python train.py experiment=" + name in header
    # every value line cites where it comes from, on the line or in the comment line above it (vidrec's own knobs
    # aside: the test's views per forward pass, SGD's dampening, the scaling rule's name)
    lines = text.splitlines()
    for above, line in zip(["", *lines], lines):
        own = line.strip().startswith(("views_per_batch:", "dampening:", "rule: linear"))
        if re.match(r"^\s+\w+: \S", line) and not own:
            assert "#" in line or above.strip().startswith("#"), f"{name}: uncited value line {line.strip()!r}"


@pytest.mark.parametrize("name", sorted(CITED))
def test_linear_rule_gives_the_authors_lr_on_their_setup(name):
    """On the authors' number of processes the linear rule gives the lr they trained with (VideoMAE: their per-256
    rule, counted in clips); the classifier's lr follows model.head_lr_mult."""
    cfg = preset(name)
    world, backbone, head = AUTHORS_RUN[name]
    lr, _ = scaled_lr(cfg, world)
    assert lr == pytest.approx(backbone, rel=1e-9)
    assert lr * cfg["model"]["head_lr_mult"] == pytest.approx(head, rel=1e-9)


def test_videomae_lr_follows_the_authors_rule_on_other_setups():
    """RCF:404-406: lr = 5e-4 × videos per step / 256, a video being 2 clips (repeated augmentation)."""
    cfg = preset("videomae_vit_b_kinetics_finetune")
    for world in (1, 8, 16, 64):
        videos = cfg["dataset"]["batch_size"] * world // cfg["dataset"]["train"]["repeats"]
        assert scaled_lr(cfg, world)[0] == pytest.approx(5e-4 * videos / 256, rel=1e-9)


# ------------------------------------------------------------------ the run's objects, built without training
class _Steps(SimpleNamespace):
    """What configure_optimizers asks of a trainer: no datamodule, so steps per epoch = stepping batches / epochs."""


def build(name: str, steps_per_epoch: int = 10, *overrides: str):
    cfg = preset(name, "model.pretrained=null", *overrides)
    spec = DataSpec.from_config(cfg["dataset"], cfg["data"])
    module = build_module(cfg, spec)
    epochs = cfg["trainer"]["max_epochs"]
    module._trainer = _Steps(datamodule=None, estimated_stepping_batches=steps_per_epoch * epochs, max_epochs=epochs)
    config = module.configure_optimizers()
    optimizer = config["optimizer"] if isinstance(config, dict) else config
    scheduler = config["lr_scheduler"]["scheduler"] if isinstance(config, dict) else None
    return cfg, spec, module, optimizer, scheduler


def groups_by_param(module, optimizer) -> dict[str, dict]:
    """Each parameter's group, ``lr`` the group's lr before the schedule's first factor (its ``initial_lr``)."""
    names = {id(p): n for n, p in module.model.named_parameters()}
    return {names[id(p)]: {**g, "lr": g.get("initial_lr", g["lr"])} for g in optimizer.param_groups for p in g["params"]}


def transform(cfg, spec):
    info = model_info(cfg["model"]["net"]["name"])
    return ClipTransform.from_spec(spec, info.mean, info.std)


def test_videomae_run_objects():
    cfg, spec, module, optimizer, scheduler = build("videomae_vit_b_kinetics_finetune", 10,
                                                    "model.net.num_classes=10")
    groups = groups_by_param(module, optimizer)
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["betas"] == (0.9, 0.999)
    # layer decay 0.75 over 12 blocks: layer 0 (patch embedding) 0.75^13, block i 0.75^(12 - i), head 1 (RCF:415-417)
    assert groups["patch_embed.proj.weight"]["lr_scale"] == pytest.approx(0.75 ** 13)
    assert groups["blocks.0.attn.qkv.weight"]["lr_scale"] == pytest.approx(0.75 ** 12)
    assert groups["blocks.11.mlp.fc1.weight"]["lr_scale"] == pytest.approx(0.75)
    assert groups["fc.weight"]["lr_scale"] == groups["fc_norm.weight"]["lr_scale"] == 1.0
    # no decay on 1-D parameters and biases (optim_factory.py@ed5ce1f:56-61)
    for name in ("blocks.0.norm1.weight", "blocks.0.attn.q_bias", "blocks.0.attn.v_bias", "blocks.3.mlp.fc2.bias",
                 "fc_norm.bias", "fc.bias", "patch_embed.proj.bias"):
        assert groups[name]["weight_decay"] == 0.0, name
    for name in ("blocks.0.attn.qkv.weight", "patch_embed.proj.weight", "fc.weight"):
        assert groups[name]["weight_decay"] == 0.05, name
    # warm-up from 0.002 × lr over 5 epochs, cosine down to 0.002 × lr at epoch 75 (UT:385-402)
    factor = scheduler.lr_lambdas[0]
    assert factor(0) == pytest.approx(0.002) and factor(50) == pytest.approx(1.0)
    assert factor(749) == pytest.approx(0.002, abs=1e-4) and factor(749) >= 0.002
    assert module.mixup is not None and module.mixup.label_smoothing == 0.1
    assert sum(p.numel() for p in module.model.parameters()) > 85e6  # ViT-B/16
    # data: 5 × 3 views of 16 frames; RandAugment, relative crop and erasing on each clip, 2 copies per video
    assert spec.views_per_video == 15 and spec.dataset.train.repeats == 2
    t = transform(cfg, spec)
    a = t.augment
    assert (a.crop, a.scale, a.ratio, a.rand_augment, a.erase_prob) == (
        "random_resized", (0.08, 1.0), (0.75, 1.3333), "rand-m7-n4-mstd0.5-inc1", 0.25)
    frames = torch.randint(0, 256, (16, 60, 80, 3), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    assert t.train(frames, flip=True, generator=g).shape == (3, 16, 224, 224)
    assert t.eval(frames).shape == (3, 3, 16, 224, 224)


def test_swin3d_run_objects():
    cfg, spec, module, optimizer, scheduler = build("swin3d_t_kinetics", 10, "model.net.num_classes=10")
    groups = groups_by_param(module, optimizer)
    assert isinstance(optimizer, torch.optim.AdamW)
    # backbone at optimizer.lr (the authors' 1e-3 × lr_mult 0.1), the classifier at 10 × that; decay 0.02 on all
    for name in ("patch_embed.proj.weight", "features.0.0.norm1.weight", "features.0.0.attn.relative_position_bias_table",
                 "features.6.1.mlp.3.bias", "norm.weight"):
        assert groups[name]["lr"] == pytest.approx(1e-4) and groups[name]["weight_decay"] == 0.02, name
    for name in ("fc.weight", "fc.bias"):
        assert groups[name]["lr"] == pytest.approx(1e-3) and groups[name]["weight_decay"] == 0.02, name
    # warm-up from 0.1 × lr over 2.5 epochs, cosine to 0 at epoch 30
    factor = scheduler.lr_lambdas[0]
    assert factor(0) == pytest.approx(0.1) and factor(25) == pytest.approx(1.0)
    assert factor(299) == pytest.approx(0.0, abs=1e-3)
    assert module.model.dropout.p == 0.5
    rates = [m.drop_rate for m in module.model.modules() if hasattr(m, "drop_rate")]
    assert len(rates) == 12 and max(rates) == pytest.approx(0.1)  # linear to 0.1 over the 12 blocks
    assert spec.views_per_video == 12
    t = transform(cfg, spec)
    assert (t.augment.crop, t.augment.short_side, t.augment.rand_augment, t.augment.erase_prob) == (
        "random_resized", 256, None, 0.0)
    frames = torch.randint(0, 256, (32, 60, 80, 3), dtype=torch.uint8)
    assert t.train(frames, flip=True, generator=torch.Generator().manual_seed(0)).shape == (3, 32, 224, 224)
    assert t.eval(frames).shape == (3, 3, 32, 224, 224)


def test_tsm_run_objects():
    cfg, spec, module, optimizer, scheduler = build("tsm_r50_something_v2")
    groups = groups_by_param(module, optimizer)
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["momentum"] == 0.9
    # TSMC:83-113: convolutions decay at lr; BatchNorm without decay at lr; the classifier at 5 × lr
    assert groups["conv1.weight"]["lr"] == pytest.approx(0.02) and groups["conv1.weight"]["weight_decay"] == 5e-4
    assert groups["layer1.0.conv1.net.weight"]["weight_decay"] == 5e-4  # the shifted conv
    assert groups["bn1.weight"]["weight_decay"] == 0.0 and groups["layer4.2.bn3.bias"]["lr"] == pytest.approx(0.02)
    assert groups["fc.weight"]["lr"] == pytest.approx(0.1) and groups["fc.weight"]["weight_decay"] == 5e-4
    assert groups["fc.bias"]["lr"] == pytest.approx(0.1) and groups["fc.bias"]["weight_decay"] == 0.0
    assert isinstance(scheduler, torch.optim.lr_scheduler.MultiStepLR)
    assert sorted(scheduler.milestones) == [25, 45] and scheduler.gamma == 0.1
    assert module.num_classes == 174 and spec.views_per_video == 6
    t = transform(cfg, spec)
    assert (t.augment.crop, t.augment.multi_scales, t.augment.max_distort, t.augment.short_side) == (
        "multi_scale", (1.0, 0.875, 0.75, 0.66), 1, 256)
    assert len(spec.dataset.train.flip_label_map) == 6  # the left/right pairs mmaction2 swaps (CFG:14)
    frames = torch.randint(0, 256, (8, 60, 80, 3), dtype=torch.uint8)
    assert t.train(frames, flip=False, generator=torch.Generator().manual_seed(0)).shape == (3, 8, 224, 224)
    assert t.eval(frames).shape == (3, 3, 8, 256, 256)


# ------------------------------------------------------------------ what vidrec loads as each preset's initialisation
def test_tsm_preset_loads_torchvision_resnet50(tmp_path):
    """The ImageNet ResNet-50 in torchvision's layout (1000-way fc, no shift wrapper) loads into the TSM network
    (format imagenet_2d): every backbone tensor, the model's own 174-way fc kept."""
    from vidrec.models import build_model

    reference = build_model("tsm_r50", num_classes=174)
    state = {re.sub(r"\.conv1\.net\.", ".conv1.", k): torch.randn_like(v) if v.is_floating_point() else v
             for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)
    path = tmp_path / "resnet50-0676ba61.pth"
    torch.save(state, path)
    cfg = preset("tsm_r50_something_v2", f"model.pretrained={path}")
    module = build_module(cfg, DataSpec.from_config(cfg["dataset"], cfg["data"]))
    loaded = module.model.state_dict()
    assert torch.equal(loaded["layer1.0.conv1.net.weight"], state["layer1.0.conv1.weight"])
    assert torch.equal(loaded["bn1.running_var"], state["bn1.running_var"])
    assert loaded["fc.weight"].shape == (174, 2048)


def videomae_pretraining_state(model) -> dict:
    """The authors' pre-training checkpoint of a fine-tuning ViT: modeling_pretrain.py@5cefe18 names (``encoder.``
    before the fine-tuning names, the encoder's own final ``norm``, a decoder), no fc_norm and no classifier."""
    width = model.fc_norm.weight.shape[0]
    state = {f"encoder.{k}": v.clone() for k, v in model.state_dict().items() if not k.startswith(("fc_norm", "fc."))}
    state.update({"encoder.norm.weight": torch.ones(width), "encoder.norm.bias": torch.zeros(width),
                  "encoder_to_decoder.weight": torch.zeros(384, width), "mask_token": torch.zeros(1, 1, 384),
                  "decoder.norm.weight": torch.ones(384), "decoder.norm.bias": torch.zeros(384),
                  "decoder.head.weight": torch.zeros(1536, 384), "decoder.head.bias": torch.zeros(1536)})
    return {"model": state, "epoch": 1599}


def test_videomae_preset_loads_the_pretraining_checkpoint(tmp_path):
    """What the authors load (RCF:346-355, 385): the encoder without ``encoder.``, its ``norm`` and the decoder
    dropped, fc_norm and the classifier left at their initialisation. ViT-S stands in for ViT-B (the layout is the
    same at every width)."""
    from vidrec.models import build_model

    source = build_model("videomae_vit_s", num_classes=400)
    for p in source.parameters():
        p.data.normal_()
    path = tmp_path / "checkpoint-1599.pth"
    torch.save(videomae_pretraining_state(source), path)
    cfg = preset("videomae_vit_b_kinetics_finetune", "model.variant=s", f"model.pretrained={path}")
    module = build_module(cfg, DataSpec.from_config(cfg["dataset"], cfg["data"]))
    assert torch.equal(module.model.state_dict()["blocks.3.attn.qkv.weight"], source.state_dict()["blocks.3.attn.qkv.weight"])


def swin2d_imagenet_state(model) -> dict:
    """microsoft/Swin-Transformer's ImageNet Swin-T file (``{'model': ...}``, 2D shapes) written from the names of
    vidrec's video Swin-T (the inverse of the authors' inflation, swin_transformer.py@37a4ade:563-614):
    ``layers.<i>.blocks.<j>`` / ``layers.<i>.downsample``, ``mlp.fc1`` / ``mlp.fc2``, 2D patch kernels, 13×13 bias
    tables, 49×49 relative_position_index, attn_mask buffers of the shifted blocks, a 1000-way ``head``."""
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("fc."):
            continue
        name = re.sub(r"^features\.(\d+)\.", lambda m: (f"layers.{int(m[1]) // 2}.blocks." if int(m[1]) % 2 == 0
                                                        else f"layers.{int(m[1]) // 2}.downsample."), key)
        name = name.replace(".mlp.0.", ".mlp.fc1.").replace(".mlp.3.", ".mlp.fc2.")
        if name == "patch_embed.proj.weight":
            value = value[:, :, 0] * 2
        elif name.endswith("relative_position_bias_table"):
            value = value[:169]
        elif name.endswith("relative_position_index"):
            value = torch.arange(49 * 49).reshape(49, 49) % 169
        state[name] = value.clone()
    for stage, windows in enumerate((64, 16, 4)):  # the shifted blocks of stages 1-3 (stage 4: one 7×7 window)
        for block in range(1, (2, 2, 6)[stage], 2):
            state[f"layers.{stage}.blocks.{block}.attn_mask"] = torch.zeros(windows, 49, 49)
    state["head.weight"], state["head.bias"] = torch.zeros(1000, 768), torch.zeros(1000)
    return {"model": state}


def test_swin3d_preset_loads_the_imagenet_swin_t(tmp_path):
    """The authors inflate the ImageNet Swin-T (swin_transformer.py@37a4ade:575-610): the patch kernel repeated over
    its 2 frames and halved, each bias table repeated over the 15 temporal offsets."""
    from vidrec.models import build_model

    source = build_model("swin3d_t", num_classes=400)
    path = tmp_path / "swin_tiny_patch4_window7_224.pth"
    torch.save(swin2d_imagenet_state(source), path)
    cfg = preset("swin3d_t_kinetics", f"model.pretrained={path}")
    module = build_module(cfg, DataSpec.from_config(cfg["dataset"], cfg["data"]))
    table = module.model.state_dict()["features.0.0.attn.relative_position_bias_table"]
    assert torch.equal(table, source.state_dict()["features.0.0.attn.relative_position_bias_table"][:169].repeat(15, 1))

"""The PySlowFast presets (configs/experiment/mvitv2_s_kinetics.yaml, slowfast_r50_8x8_kinetics.yaml,
x3d_m_kinetics.yaml) hold the authors' values: every cited value is compared with a table written here (key,
value, the file and line of facebookresearch/SlowFast it comes from), so a changed preset fails; where a local mirror
of the authors' repository exists, each cited line is read back from it. The run's objects are built from each
preset without training: the LightningModule, the data spec and its transforms, the optimizer's parameter groups
(against the authors' grouping rule), the learning-rate curve (against the authors' lr_policy.py) and the lr scaling.
"""

from __future__ import annotations

import math
import os
import subprocess
from functools import cache
from pathlib import Path

import pytest
import torch

from conftest import REPO, compose_resolved

# The authors' files, as the presets' headers tag them (facebookresearch/SlowFast, path@commit).
SOURCES = {
    "M": "configs/Kinetics/MVITv2_S_16x4.yaml@1aebd71",
    "S": "configs/Kinetics/SLOWFAST_8x8_R50.yaml@bda0053",
    "S2": "configs/Kinetics/c2/SLOWFAST_8x8_R50.yaml@bda0053",
    "X": "configs/Kinetics/X3D_M.yaml@c22c7c9",
    "D": "slowfast/config/defaults.py@287ec00",
    "Z": "MODEL_ZOO.md@64f8d7e",
}
ABSENT = "<absent>"

# (key, value, source tag, line, text on that line)
MVIT = [
    ("model.net.name", "mvit_v2_s", "M", 80, "MODEL_NAME: MViT"),
    ("model.variant", "v2_s", "M", 25, "DEPTH: 16"),
    ("model.net.dropout", 0.5, "M", 82, "DROPOUT_RATE: 0.5"),
    ("model.net.drop_path", 0.2, "M", 33, "DROPPATH_RATE: 0.2"),
    ("model.no_weight_decay", True, "M", 63, "ZERO_WD_1D_PARAM: True"),
    ("model.pretrained", None, "D", 156, '_C.TRAIN.CHECKPOINT_FILE_PATH = ""'),  # from scratch
    ("model.mixup.enabled", True, "M", 56, "ENABLE: True"),
    ("model.mixup.alpha", 0.8, "M", 57, "ALPHA: 0.8"),
    ("model.mixup.cutmix_alpha", 1.0, "M", 58, "CUTMIX_ALPHA: 1.0"),
    ("model.mixup.prob", 1.0, "M", 59, "PROB: 1.0"),
    ("model.mixup.switch_prob", 0.5, "M", 60, "SWITCH_PROB: 0.5"),
    ("model.mixup.label_smoothing", 0.1, "M", 61, "LABEL_SMOOTH_VALUE: 0.1"),
    ("dataset.name", "kinetics", "M", 3, "DATASET: kinetics"),
    ("dataset.source", "video", "M", 10, "DECODING_BACKEND: torchvision"),
    ("dataset.mean", [0.45, 0.45, 0.45], "D", 687, "_C.DATA.MEAN = [0.45, 0.45, 0.45]"),
    ("dataset.std", [0.225, 0.225, 0.225], "D", 693, "_C.DATA.STD = [0.225, 0.225, 0.225]"),
    ("dataset.clip.frames", 16, "M", 11, "NUM_FRAMES: 16"),
    ("dataset.clip.sample_rate", 4, "M", 12, "SAMPLING_RATE: 4"),
    ("dataset.train.crop_size", 224, "M", 14, "TRAIN_CROP_SIZE: 224"),
    ("dataset.train.scale", [256, 320], "M", 13, "TRAIN_JITTER_SCALES: [256, 320]"),
    ("dataset.train.flip", True, "D", 737, "_C.DATA.RANDOM_FLIP = True"),
    ("dataset.train.repeats", 2, "M", 46, "NUM_SAMPLE: 2"),
    ("dataset.train.augment.crop", "random_resized", "D", 699, "TRAIN_JITTER_SCALES above is ignored"),
    ("dataset.train.augment.scale", [0.08, 1.0], "M", 18, "TRAIN_JITTER_SCALES_RELATIVE: [0.08, 1.0]"),
    ("dataset.train.augment.ratio", [0.75, 1.3333], "M", 19, "TRAIN_JITTER_ASPECT_RELATIVE: [0.75, 1.3333]"),
    ("dataset.train.augment.short_side", 256, "M", 13, "TRAIN_JITTER_SCALES: [256, 320]"),
    ("dataset.train.augment.rand_augment", "rand-m7-n4-mstd0.5-inc1", "M", 49, "AA_TYPE: rand-m7-n4-mstd0.5-inc1"),
    ("dataset.train.augment.interpolation", "bicubic", "M", 50, "INTERPOLATION: bicubic"),
    ("dataset.train.augment.color_jitter", None, "M", 48, "COLOR_JITTER: 0.4"),  # unused by the Kinetics loader
    ("dataset.train.augment.erase_prob", 0.25, "M", 51, "RE_PROB: 0.25"),
    ("dataset.train.augment.erase_mode", "pixel", "M", 52, "RE_MODE: pixel"),
    ("dataset.train.augment.erase_count", 1, "M", 53, "RE_COUNT: 1"),
    ("dataset.test.scale", 256, "M", 13, "TRAIN_JITTER_SCALES: [256, 320]"),
    ("dataset.test.crop_size", 224, "M", 15, "TEST_CROP_SIZE: 224"),
    ("dataset.test.num_clips", 5, "M", 88, "NUM_ENSEMBLE_VIEWS: 5"),
    ("dataset.test.num_crops", 1, "M", 87, "NUM_SPATIAL_CROPS: 1"),
    ("dataset.test.clip_selection", "uniform", "M", 9, "USE_OFFSET_SAMPLING: True"),
    ("dataset.test.fully_conv", False, "M", 80, "MODEL_NAME: MViT"),  # TransformerBasicHead: the class token
    ("dataset.batch_size", 4, "M", 4, "BATCH_SIZE: 16"),  # 16 / 8 GPUs × 2 samples
    ("dataset.num_workers", 8, "M", 90, "NUM_WORKERS: 8"),
    ("optimizer._target_", "torch.optim.AdamW", "M", 75, "OPTIMIZING_METHOD: adamw"),
    ("optimizer.lr", 1.0e-4, "M", 66, "BASE_LR: 0.0001"),
    ("optimizer.betas", [0.9, 0.999], "D", 881, "_C.SOLVER.BETAS = (0.9, 0.999)"),
    ("optimizer.weight_decay", 0.05, "M", 74, "WEIGHT_DECAY: 0.05"),
    ("optimizer_scaling.rule", "linear", "M", 64, "BASE_LR_SCALE_NUM_SHARDS: True"),
    ("optimizer_scaling.base_batch_size", 32, "M", 46, "NUM_SAMPLE: 2"),  # 16 videos × 2
    ("scheduler._target_", "vidrec.optim.warmup_cosine", "M", 71, "LR_POLICY: cosine"),
    ("scheduler.warmup_epochs", 30, "M", 70, "WARMUP_EPOCHS: 30.0"),
    ("scheduler.warmup_start_ratio", 0.01, "M", 69, "WARMUP_START_LR: 1e-6"),
    ("scheduler.min_lr_ratio", 0.01, "M", 68, "COSINE_END_LR: 1e-6"),
    ("scheduler.max_epochs", 200, "M", 72, "MAX_EPOCH: 200"),
    ("trainer.max_epochs", 200, "M", 72, "MAX_EPOCH: 200"),
    ("trainer.gradient_clip_val", 1.0, "M", 65, "CLIP_GRAD_L2NORM: 1.0"),
    ("trainer.gradient_clip_algorithm", "norm", "M", 65, "CLIP_GRAD_L2NORM: 1.0"),
    ("checkpoint.every_n_epochs", 10, "M", 6, "CHECKPOINT_PERIOD: 10"),
    ("callbacks.precise_bn", ABSENT, "D", 99, "_C.BN.USE_PRECISE_STATS = False"),
    ("seed", 0, "M", 94, "RNG_SEED: 0"),
]

SLOWFAST = [
    ("model.net.name", "slowfast_r50_8x8", "S", 49, "MODEL_NAME: SlowFast"),
    ("model.variant", "r50_8x8", "S", 16, "ALPHA: 4"),
    ("model.net.dropout", 0.5, "S", 51, "DROPOUT_RATE: 0.5"),
    ("model.no_weight_decay", True, "D", 105, "_C.BN.WEIGHT_DECAY = 0.0"),
    ("model.pretrained", None, "D", 156, '_C.TRAIN.CHECKPOINT_FILE_PATH = ""'),  # from scratch
    ("model.mixup.enabled", False, "S", 50, "LOSS_FUNC: cross_entropy"),
    ("dataset.name", "kinetics", "S", 3, "DATASET: kinetics"),
    ("dataset.source", "video", "D", 726, '_C.DATA.DECODING_BACKEND = "torchvision"'),
    ("dataset.mean", [0.45, 0.45, 0.45], "D", 687, "_C.DATA.MEAN = [0.45, 0.45, 0.45]"),
    ("dataset.std", [0.225, 0.225, 0.225], "D", 693, "_C.DATA.STD = [0.225, 0.225, 0.225]"),
    ("dataset.clip.frames", 32, "S", 9, "NUM_FRAMES: 32"),
    ("dataset.clip.sample_rate", 2, "S", 10, "SAMPLING_RATE: 2"),
    ("dataset.train.crop_size", 224, "S", 12, "TRAIN_CROP_SIZE: 224"),
    ("dataset.train.scale", [256, 320], "S", 11, "TRAIN_JITTER_SCALES: [256, 320]"),
    ("dataset.train.flip", True, "D", 737, "_C.DATA.RANDOM_FLIP = True"),
    ("dataset.train.repeats", 1, "D", 187, "_C.AUG.NUM_SAMPLE = 1"),
    ("dataset.train.augment.crop", None, "D", 182, "_C.AUG.ENABLE = False"),
    ("dataset.test.scale", 256, "S", 13, "TEST_CROP_SIZE: 256"),
    ("dataset.test.crop_size", 256, "S", 13, "TEST_CROP_SIZE: 256"),
    ("dataset.test.num_clips", 10, "D", 278, "_C.TEST.NUM_ENSEMBLE_VIEWS = 10"),
    ("dataset.test.num_crops", 3, "D", 282, "_C.TEST.NUM_SPATIAL_CROPS = 3"),
    ("dataset.test.clip_selection", "uniform", "D", 707, "_C.DATA.USE_OFFSET_SAMPLING = False"),
    ("dataset.test.fully_conv", True, "S", 12, "TRAIN_CROP_SIZE: 224"),  # the head's pool, TRAIN_CROP_SIZE // 32
    ("dataset.batch_size", 8, "S", 4, "BATCH_SIZE: 64"),  # 64 / 8 GPUs
    ("dataset.num_workers", 8, "S", 57, "NUM_WORKERS: 8"),
    ("optimizer._target_", "torch.optim.SGD", "S", 45, "OPTIMIZING_METHOD: sgd"),
    ("optimizer.lr", 0.1, "S", 38, "BASE_LR: 0.1"),
    ("optimizer.momentum", 0.9, "S", 41, "MOMENTUM: 0.9"),
    ("optimizer.dampening", 0.0, "D", 839, "_C.SOLVER.DAMPENING = 0.0"),
    ("optimizer.weight_decay", 1.0e-4, "S", 42, "WEIGHT_DECAY: 1e-4"),
    ("optimizer.nesterov", True, "D", 842, "_C.SOLVER.NESTEROV = True"),
    ("optimizer_scaling.rule", "linear", "S", 4, "BATCH_SIZE: 64"),
    ("optimizer_scaling.base_batch_size", 64, "S", 4, "BATCH_SIZE: 64"),
    ("scheduler._target_", "vidrec.optim.warmup_cosine", "S", 39, "LR_POLICY: cosine"),
    ("scheduler.warmup_epochs", 34, "S", 43, "WARMUP_EPOCHS: 34.0"),
    ("scheduler.warmup_start_ratio", 0.1, "S", 44, "WARMUP_START_LR: 0.01"),
    ("scheduler.min_lr_ratio", 0.0, "D", 818, "_C.SOLVER.COSINE_END_LR = 0.0"),
    ("scheduler.max_epochs", 196, "S", 40, "MAX_EPOCH: 196"),
    ("trainer.max_epochs", 196, "S", 40, "MAX_EPOCH: 196"),
    ("trainer.gradient_clip_val", None, "D", 872, "_C.SOLVER.CLIP_GRAD_L2NORM = None"),
    ("checkpoint.every_n_epochs", 1, "S", 6, "CHECKPOINT_PERIOD: 1"),
    ("callbacks.precise_bn._target_", "vidrec.precise_bn.PreciseBN", "S", 35, "USE_PRECISE_STATS: True"),
    ("callbacks.precise_bn.num_batches", 200, "S", 36, "NUM_BATCHES_PRECISE: 200"),
    ("callbacks.precise_bn.every_n_epochs", 1, "S", 6, "CHECKPOINT_PERIOD: 1"),
    ("seed", 0, "S", 61, "RNG_SEED: 0"),
]

X3D = [
    ("model.net.name", "x3d_m", "X", 50, "MODEL_NAME: X3D"),
    ("model.variant", "m", "X", 10, "DEPTH_FACTOR: 2.2"),
    ("model.net.dropout", 0.5, "X", 52, "DROPOUT_RATE: 0.5"),
    ("model.net.drop_path", 0.0, "D", 422, "_C.MODEL.DROPCONNECT_RATE = 0.0"),
    ("model.net.layer1_shortcut_bn", True, "X", 32, "TRANS_FUNC: x3d_transform"),  # PySlowFast's own network
    ("model.no_weight_decay", True, "X", 37, "WEIGHT_DECAY: 0.0"),
    ("model.pretrained", None, "D", 156, '_C.TRAIN.CHECKPOINT_FILE_PATH = ""'),  # from scratch
    ("model.mixup.enabled", False, "X", 51, "LOSS_FUNC: cross_entropy"),
    ("dataset.name", "kinetics", "X", 3, "DATASET: kinetics"),
    ("dataset.source", "video", "X", 29, "DECODING_BACKEND: torchvision"),
    ("dataset.mean", [0.45, 0.45, 0.45], "D", 687, "_C.DATA.MEAN = [0.45, 0.45, 0.45]"),
    ("dataset.std", [0.225, 0.225, 0.225], "D", 693, "_C.DATA.STD = [0.225, 0.225, 0.225]"),
    ("dataset.clip.frames", 16, "X", 22, "NUM_FRAMES: 16"),
    ("dataset.clip.sample_rate", 5, "X", 23, "SAMPLING_RATE: 5"),
    ("dataset.train.crop_size", 224, "X", 25, "TRAIN_CROP_SIZE: 224"),
    ("dataset.train.scale", [256, 320], "X", 24, "TRAIN_JITTER_SCALES: [256, 320]"),
    ("dataset.train.flip", True, "D", 737, "_C.DATA.RANDOM_FLIP = True"),
    ("dataset.train.repeats", 1, "D", 187, "_C.AUG.NUM_SAMPLE = 1"),
    ("dataset.train.augment.crop", None, "D", 182, "_C.AUG.ENABLE = False"),
    ("dataset.test.scale", 256, "X", 27, "TEST_CROP_SIZE: 256"),
    ("dataset.test.crop_size", 256, "X", 27, "TEST_CROP_SIZE: 256"),
    ("dataset.test.num_clips", 10, "D", 278, "_C.TEST.NUM_ENSEMBLE_VIEWS = 10"),
    ("dataset.test.num_crops", 3, "X", 20, "NUM_SPATIAL_CROPS: 3"),
    ("dataset.test.clip_selection", "uniform", "D", 707, "_C.DATA.USE_OFFSET_SAMPLING = False"),
    ("dataset.test.fully_conv", True, "X", 25, "TRAIN_CROP_SIZE: 224"),  # the head's pool, ceil(224 / 32)
    ("dataset.batch_size", 16, "X", 4, "BATCH_SIZE: 128"),  # 128 / 8 GPUs
    ("dataset.num_workers", 8, "X", 54, "NUM_WORKERS: 8"),
    ("optimizer._target_", "torch.optim.SGD", "X", 46, "OPTIMIZING_METHOD: sgd"),
    ("optimizer.lr", 0.1, "X", 39, "BASE_LR: 0.1 # 1 machine"),
    ("optimizer.momentum", 0.9, "D", 836, "_C.SOLVER.MOMENTUM = 0.9"),
    ("optimizer.dampening", 0.0, "D", 839, "_C.SOLVER.DAMPENING = 0.0"),
    ("optimizer.weight_decay", 5.0e-5, "X", 43, "WEIGHT_DECAY: 5e-5"),
    ("optimizer.nesterov", True, "D", 842, "_C.SOLVER.NESTEROV = True"),
    ("optimizer_scaling.rule", "linear", "X", 40, "BASE_LR_SCALE_NUM_SHARDS: True"),
    ("optimizer_scaling.base_batch_size", 128, "X", 4, "BATCH_SIZE: 128"),
    ("scheduler._target_", "vidrec.optim.warmup_cosine", "X", 41, "LR_POLICY: cosine"),
    ("scheduler.warmup_epochs", 35, "X", 44, "WARMUP_EPOCHS: 35.0"),
    ("scheduler.warmup_start_ratio", 0.1, "X", 45, "WARMUP_START_LR: 0.01"),
    ("scheduler.min_lr_ratio", 0.0, "D", 818, "_C.SOLVER.COSINE_END_LR = 0.0"),
    ("scheduler.max_epochs", 300, "X", 42, "MAX_EPOCH: 300"),
    ("trainer.max_epochs", 300, "X", 42, "MAX_EPOCH: 300"),
    ("trainer.gradient_clip_val", None, "D", 872, "_C.SOLVER.CLIP_GRAD_L2NORM = None"),
    ("checkpoint.every_n_epochs", 10, "X", 6, "CHECKPOINT_PERIOD: 10"),
    ("callbacks.precise_bn._target_", "vidrec.precise_bn.PreciseBN", "X", 35, "USE_PRECISE_STATS: True"),
    ("callbacks.precise_bn.num_batches", 200, "X", 36, "NUM_BATCHES_PRECISE: 200"),
    ("callbacks.precise_bn.every_n_epochs", 10, "X", 6, "CHECKPOINT_PERIOD: 10"),
    ("seed", 0, "X", 57, "RNG_SEED: 0"),
]

TABLES = {"mvitv2_s_kinetics": MVIT, "slowfast_r50_8x8_kinetics": SLOWFAST, "x3d_m_kinetics": X3D}

# The published figures the headers name, as the zoo lists them: (source, line, text).
TARGETS = {
    "mvitv2_s_kinetics": ("Z", 18, "| MViTv2 | S | 1 x 5 | 16 x 4 | 81.0 | 94.6 |"),
    "slowfast_r50_8x8_kinetics": ("Z", 13, "| SlowFast | R50 | 3 x 10 | 8 x 8 | 77.0 | 92.6 |"),
    "x3d_m_kinetics": ("Z", 27, "| X3D | M | - | 16 x 5 | 75.1 | 76.2 |"),
}

ROWS = [(preset, *row) for preset, table in TABLES.items() for row in table]


@cache
def _composed(preset: str, *extra: str) -> dict:
    return compose_resolved([f"experiment={preset}", *extra])


def composed(preset: str, *extra: str) -> dict:
    import copy

    return copy.deepcopy(_composed(preset, *extra))


def lookup(cfg: dict, key: str):
    node = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return ABSENT
        node = node[part]
    return node


def citation(tag: str, line: int, text: str) -> str:
    return f"facebookresearch/SlowFast {SOURCES[tag]}:{line} ({text})"


@pytest.mark.parametrize("preset,key,value,tag,line,text", ROWS,
                         ids=[f"{p}:{k}" for p, k, *_ in ROWS])
def test_preset_value(preset, key, value, tag, line, text):
    got = lookup(composed(preset), key)
    if isinstance(value, float):
        assert got == pytest.approx(value, rel=1e-12), f"{preset} {key}: {got!r}, the authors' {value!r} — " \
                                                       f"{citation(tag, line, text)}"
    else:
        assert got == value, f"{preset} {key}: {got!r}, the authors' {value!r} — {citation(tag, line, text)}"


@pytest.mark.parametrize("preset", TABLES)
def test_preset_header_names_its_sources_and_target(preset):
    """The header cites the files the table cites (path@commit) and the zoo's figure."""
    text = (REPO / "configs" / "experiment" / f"{preset}.yaml").read_text()
    for tag in {row[2] for row in TABLES[preset]} | {TARGETS[preset][0]}:
        assert SOURCES[tag] in text, (preset, SOURCES[tag])
    figures = {"mvitv2_s_kinetics": ("81.0", "94.6"), "slowfast_r50_8x8_kinetics": ("77.0", "92.6"),
               "x3d_m_kinetics": ("76.2", "75.1")}[preset]
    assert all(f in text for f in figures)
    assert f"python train.py experiment={preset}" in text


@pytest.mark.parametrize("preset", TABLES)
def test_preset_validates_every_epoch(preset):
    """A departure the headers state: the authors validate every 10 epochs (TRAIN.EVAL_PERIOD 10), but with
    trainer.check_val_every_n_epoch above 1 Lightning 2.6 writes checkpoints (last.ckpt included) only at validation
    epochs, so the presets keep vidrec's validation after every epoch."""
    cfg = composed(preset)
    assert cfg["trainer"]["check_val_every_n_epoch"] == 1
    assert "Evaluation period" in (REPO / "configs" / "experiment" / f"{preset}.yaml").read_text()


# ------------------------------------------------------------------ the citations, read back from the authors' repo
def _mirror() -> Path | None:
    for candidate in (os.environ.get("VIDREC_SLOWFAST_REPO"), REPO.parent / ".mirror/facebookresearch+SlowFast/repo"):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return None


@cache
def _authors_file(tag: str) -> list[str]:
    path, commit = SOURCES[tag].rsplit("@", 1)
    out = subprocess.run(["git", "-C", str(_mirror()), "show", f"{commit}:{path}"], capture_output=True, text=True,
                         check=True)
    return out.stdout.splitlines()


CITED = sorted({(tag, line, text) for table in TABLES.values() for *_, tag, line, text in table}
               | set(TARGETS.values()))


@pytest.mark.parametrize("tag,line,text", CITED, ids=[f"{t}:{n}" for t, n, _ in CITED])
def test_cited_line_holds_the_value(tag, line, text):
    """Each cited line of the authors' files says what the table says (needs a local mirror of
    facebookresearch/SlowFast: $VIDREC_SLOWFAST_REPO, or the workspace's .mirror; skipped without one)."""
    if _mirror() is None:
        pytest.skip("no local mirror of facebookresearch/SlowFast")
    lines = _authors_file(tag)
    assert text in lines[line - 1], f"{SOURCES[tag]}:{line} is {lines[line - 1]!r}, not {text!r}"


def test_c2_config_is_the_same_recipe():
    """The c2/ SlowFast config (the one the zoo's 77.0 model comes with) sets the same values as the training config,
    apart from TRAIN.ENABLE and the checkpoint type."""
    if _mirror() is None:
        pytest.skip("no local mirror of facebookresearch/SlowFast")
    from collections import Counter

    train, c2 = Counter(_authors_file("S")), Counter(_authors_file("S2"))
    assert c2 - train == Counter(["  ENABLE: False", "  # CHECKPOINT_FILE_PATH: path to the model to test",
                                  "  CHECKPOINT_TYPE: caffe2"])
    assert train - c2 == Counter(["  ENABLE: True"])


# ------------------------------------------------------------------ the run's objects
def pyslowfast_lr(epoch: float, base: float, warmup: float, start: float, end: float, max_epoch: float,
                  after_warmup: bool) -> float:
    """The authors' lr at a (fractional) epoch: slowfast/utils/lr_policy.py@bac7b67:9-49, LR_POLICY cosine."""
    offset = warmup if after_warmup else 0.0

    def cosine(e: float) -> float:
        return end + (base - end) * (math.cos(math.pi * (e - offset) / (max_epoch - offset)) + 1.0) * 0.5

    if epoch < warmup:
        return epoch * (cosine(warmup) - start) / warmup + start
    return cosine(epoch)


def pyslowfast_no_decay(net: torch.nn.Module, zero_wd_1d: bool) -> set[str]:
    """Names the authors train without weight decay: BatchNorm parameters (BN.WEIGHT_DECAY 0.0) and, with
    SOLVER.ZERO_WD_1D_PARAM, every 1-D parameter and bias (slowfast/models/optimizer.py@198bf9d:41-56)."""
    out = set()
    for module_name, module in net.named_modules():
        is_bn = isinstance(module, torch.nn.modules.batchnorm._NormBase)
        for param_name, p in module.named_parameters(recurse=False):
            name = f"{module_name}.{param_name}".strip(".")
            if is_bn or (zero_wd_1d and (p.ndim == 1 or name.endswith(".bias"))):
                out.add(name)
    return out


# per preset: the authors' lr curve (BASE_LR, WARMUP_EPOCHS, WARMUP_START_LR, COSINE_END_LR, MAX_EPOCH,
# COSINE_AFTER_WARMUP), the largest gap of vidrec's curve from it (a fraction of lr; the headers' departure), and
# the parameters vidrec keeps out of weight decay beyond the authors' rule
AUTHORS_SCHEDULE = {
    "mvitv2_s_kinetics": ((1e-4, 30, 1e-6, 1e-6, 200, True), 1e-9),
    "slowfast_r50_8x8_kinetics": ((0.1, 34, 0.01, 0.0, 196, False), 0.172),
    "x3d_m_kinetics": ((0.1, 35, 0.01, 0.0, 300, False), 0.113),
}


def _extra_no_decay(preset: str, names: set[str]) -> bool:
    # MVIT.ZERO_DECAY_POS_CLS False: the relative position tables decay there (and the class token, 1×1×96 there,
    # which vidrec's 1-D class token cannot show here: the header lists it)
    if preset == "mvitv2_s_kinetics":
        return len(names) == 48 and all(n.rsplit(".", 1)[-1] in ("rel_pos_h", "rel_pos_w", "rel_pos_t") for n in names)
    if preset == "slowfast_r50_8x8_kinetics":  # the classifier's bias
        return names == {"fc.bias"}
    # X3D: the classifier's bias and the squeeze-excitation biases
    se = {n for n in names if ".se." in n and n.endswith(".bias")}
    return names == se | {"fc.bias"} and len(se) == 30


@pytest.mark.parametrize("preset", TABLES)
def test_preset_builds_the_run(preset):
    """The module, data spec, transforms, optimizer groups, lr curve and lr scaling of a preset, without training
    (10 classes instead of 400)."""
    import hydra

    from vidrec.compute import scaled_lr
    from vidrec.data.spec import DataSpec
    from vidrec.data.transforms import ClipTransform
    from vidrec.precise_bn import PreciseBN
    from vidrec.run import build_module

    cfg = composed(preset, "model.net.num_classes=10")
    spec = DataSpec.from_config(cfg["dataset"], cfg["data"])
    module = build_module(cfg, spec)
    net, d = module.model, spec.dataset
    assert module.num_classes == 10

    # head options and mixup
    assert module.hparams.no_weight_decay is True
    assert module.hparams.fully_conv_test is d.test.fully_conv
    if d.test.fully_conv:
        assert hasattr(net, "fully_conv")
    if preset == "mvitv2_s_kinetics":
        assert module.mixup is not None
        assert (module.mixup.alpha, module.mixup.cutmix_alpha, module.mixup.label_smoothing) == (0.8, 1.0, 0.1)
    else:
        assert module.mixup is None
        callback = hydra.utils.instantiate(cfg["callbacks"]["precise_bn"])
        assert isinstance(callback, PreciseBN) and callback.num_batches == 200

    # transforms: one training clip and the test views of one clip
    transform = ClipTransform.from_spec(spec, d.mean, d.std)
    frames = torch.randint(0, 256, (d.clip.frames, 180, 240, 3), dtype=torch.uint8)
    clip = transform.train_clip(frames, flip=True, generator=torch.Generator().manual_seed(0))
    assert clip.shape == (3, d.clip.frames, 224, 224) and clip.dtype == torch.uint8
    views = transform.eval_views(frames)
    crop = d.test.crop_size
    assert views.shape == (d.test.num_crops, 3, d.clip.frames, crop, crop)
    assert spec.views_per_video == d.test.num_clips * d.test.num_crops
    if preset == "mvitv2_s_kinetics":
        a = transform.augment
        assert a is not None and a.crop == "random_resized" and a.short_side == 256
        assert a.rand_augment == "rand-m7-n4-mstd0.5-inc1" and a.erase_prob == 0.25 and a.color_jitter is None
    else:
        assert transform.augment is None and transform.scale_range == (256, 320)

    # optimizer groups (configure_optimizers needs a trainer only for the schedule's steps per epoch)
    schedule = module.scheduler_factory
    module.scheduler_factory = None
    optimizer = module.configure_optimizers()
    names = {id(p): n for n, p in net.named_parameters()}
    no_decay = {names[id(p)] for g in optimizer.param_groups if g["weight_decay"] == 0.0 for p in g["params"]}
    decays = {g["weight_decay"] for g in optimizer.param_groups} - {0.0}
    assert decays == {cfg["optimizer"]["weight_decay"]}
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(names)
    authors = pyslowfast_no_decay(net, zero_wd_1d=preset == "mvitv2_s_kinetics")
    assert authors <= no_decay, sorted(authors - no_decay)[:5]
    assert _extra_no_decay(preset, no_decay - authors), sorted(no_decay - authors)[:5]
    if preset == "mvitv2_s_kinetics":
        assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["betas"] == (0.9, 0.999)
    else:
        assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["nesterov"] is True

    # the lr curve against the authors' (lr_policy.py), per step at 20 steps per epoch
    (base, warmup, start, end, epochs, after), gap = AUTHORS_SCHEDULE[preset]
    steps_per_epoch = 20
    factor = schedule(optimizer, steps_per_epoch=steps_per_epoch).lr_lambdas[0]
    worst = 0.0
    for step in range(epochs * steps_per_epoch):
        ours = base * factor(step)
        theirs = pyslowfast_lr(step / steps_per_epoch, base, warmup, start, end, epochs, after)
        worst = max(worst, abs(ours - theirs) / base)
    assert worst <= gap, worst
    assert base * factor(0) == pytest.approx(start)
    assert base * factor(epochs * steps_per_epoch) == pytest.approx(end, abs=1e-12)

    # lr scaling: the authors' lr at their batch, linear in the effective batch
    authors_batch = cfg["optimizer_scaling"]["base_batch_size"]
    assert d.batch_size * 8 == authors_batch
    assert scaled_lr(cfg, 8)[0] == pytest.approx(base)
    assert scaled_lr(cfg, 16)[0] == pytest.approx(2 * base)

"""Released TSN/TSM weights: converters of the TSM authors', mmaction2's and torchvision's layouts; entries.

Layouts (into :mod:`vidrec.models.tsm`: torchvision's ResNet names, plus ``conv1.net`` for a shifted conv):

- ``tsm``: the TSM authors' ``.pth``, ``{'epoch', 'arch', 'state_dict', 'optimizer', 'best_prec1'}`` with the
  state dict of ``DataParallel(TSN)`` (main.py@f8182d7:210-216): ``module.base_model.<torchvision name>``,
  the shifted convs as ``...conv1.net.weight`` (ops/temporal_shift.py@51b29f3:12-24, 131), the classifier
  ``module.new_fc.*`` (ops/models.py@d6da93d:81-98; ``base_model.fc`` when trained without dropout).
- ``mmaction2``: ``{'meta', 'state_dict'}`` with ``backbone.*`` / ``cls_head.fc_cls.*`` and mmcv
  ``ConvModule`` names: ``conv1.conv`` / ``conv1.bn`` for torchvision's ``conv1`` / ``bn1``,
  ``downsample.conv`` / ``.bn`` for ``downsample.0`` / ``.1`` (the map mmaction2 applies to torchvision's
  weights, backbones/resnet_tsm.py@d36db71:328-350), the shift wrapper inside the conv:
  ``conv1.conv.net.weight`` (resnet_tsm.py:241-244, 308-309).
- ``imagenet_2d``: torchvision's ImageNet ResNet-50, loaded as it is (2D kernels) without its 1000-class head.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidrec.errors import CheckpointError
from vidrec.models.registry import IMAGENET_MEAN, IMAGENET_STD
from vidrec.models.weights.common import HEAD_PREFIX
from vidrec.models.weights.entries import KINETICS400, SOMETHING_V2, Published, WeightsEntry, add_entry
from vidrec.models.weights.formats import register_converter
from vidrec.models.weights.torch_state import unwrap_state_dict

SHIFTED = ".conv1.net."  # the key part of a shifted conv (TSM), absent from TSN
_MMACTION2_NAMES = (
    (r"^backbone\.conv1\.conv\.", "conv1."), (r"^backbone\.conv1\.bn\.", "bn1."),
    (r"\.conv(\d)\.conv\.", r".conv\1."), (r"\.conv(\d)\.bn\.", r".bn\1."),
    (r"\.downsample\.conv\.", ".downsample.0."), (r"\.downsample\.bn\.", ".downsample.1."),
    (r"^backbone\.", ""), (r"^cls_head\.fc_cls\.", HEAD_PREFIX),
)


def _is_shifted(model: nn.Module) -> bool:
    return any(SHIFTED in key for key in model.state_dict())


def _checked(state: dict[str, torch.Tensor], model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """``state``, after checking that the file and the model agree on the temporal shift (a clear message
    instead of a list of unmatched keys)."""
    shifted = any(SHIFTED in key for key in state)
    if shifted != _is_shifted(model):
        held, other = ("TSM (temporally shifted)", "tsm_r50") if shifted else ("TSN (no shift)", "tsn_r50")
        raise CheckpointError(f"{path}: holds a {held} network; build {other} to load it")
    return state


def convert_tsm(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """The TSM authors' file: ``module.`` dropped, ``base_model.`` dropped, ``new_fc.`` -> ``fc.``."""
    state = {}
    for key, value in unwrap_state_dict(obj, path).items():
        if key.startswith("new_fc."):
            key = HEAD_PREFIX + key.removeprefix("new_fc.")
        state[key.removeprefix("base_model.")] = value
    return _checked(state, model, path)


def convert_mmaction2(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """mmaction2's ``ResNetTSM`` / ``ResNet`` with ``TSMHead`` / ``TSNHead``: ConvModule names renamed."""
    state = {}
    for key, value in unwrap_state_dict(obj, path).items():
        for pattern, replacement in _MMACTION2_NAMES:
            key = re.sub(pattern, replacement, key)
        state[key] = value
    return _checked(state, model, path)


def convert_imagenet(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet ResNet-50: 2D kernels as they are, head dropped, block ``conv1`` under ``.net``
    when the model shifts."""
    shifted = _is_shifted(model)
    state = {}
    for key, value in unwrap_state_dict(obj, path).items():
        if not key.startswith(HEAD_PREFIX):
            state[re.sub(r"^(layer\d\.\d+\.conv1)\.", r"\1.net.", key) if shifted else key] = value
    return state


register_converter("tsm", "tsm", convert_tsm)
register_converter("mmaction2", "tsm", convert_mmaction2)
register_converter("imagenet_2d", "tsm", convert_imagenet)

# ------------------------------------------------------------------ entries
TSM_REPO = "mit-han-lab/temporal-shift-module"
TSM_LINK = "https://hanlab18.mit.edu/projects/tsm/models/"
MM_LINK = "https://download.openmmlab.com/mmaction/v1.0/recognition/tsm/"
_README = f"{TSM_REPO} README.md@1f6a834"
_MM_README = "open-mmlab/mmaction2 configs/recognition/tsm/README.md@2ddf4b5"
_TSM = {
    "mean/std (ImageNet), RGB scaled to [0, 1]": f"{TSM_REPO} ops/models.py@d6da93d:117-119; "
        "test_models.py@d6da93d:185-187 (ToTorchFormatTensor(div=True), GroupNormalize); RGB frames, "
        "ops/dataset.py@d6da93d:63",
    "frame-based (every frame ffmpeg extracts, no frame-rate resampling)":
        "tools/vid2img_kinetics.py@83c77b7:37 (K400 frames at height 331), tools/vid2img_sthv2.py@83c77b7:23 "
        "(SSv2 at height 256)",
    "test resize: short side 256 (scale_size = 224 * 256 // 224), PIL bilinear":
        "ops/models.py@d6da93d:377-379; ops/transforms.py@83c77b7:79-92 (GroupScale)",
    "centre crop 224 (test_crops=1); full_res: 3 crops of 256 (GroupFullResSample: left, right, centre, "
    "steps (w - 256) // 4)": "test_models.py@d6da93d:155-164; ops/transforms.py@83c77b7:134-177",
    "views averaged as logits (no --softmax); vidrec averages the softmax":
        "test_models.py@d6da93d:42, 239-244",
    "head: dropout and new_fc on every frame, segment average (avg consensus)":
        "ops/models.py@d6da93d:81-98, 263-287; ops/basic_ops.py@832a758:17-20",
    "train: multi-scale crop (1, .875, .75, .66) to 224, flip (not for Something)":
        "main.py@f8182d7:72; ops/models.py@d6da93d:381-388",
    "class order": "K400: tools/kinetics_label_map.txt@83c77b7 (sorted labels, line = index; tools/"
        "gen_label_kinetics.py@83c77b7:15-21); SSv2: labels.json index order (tools/gen_label_sthv2.py"
        "@fd76d13:14-19)",
}
_MM = {
    "mean/std (ImageNet x 255 on 0-255 RGB)":
        "open-mmlab/mmaction2 configs/_base_/models/tsm_r50.py@3149f38:1-2, 22",
    "frame-based (SampleFrames without target_fps)":
        "mmaction/datasets/transforms/loading.py@96d20d3:355-373",
    "segment centres int(tick/2 + tick*k); twice_sample adds int(tick*k)": "loading.py@96d20d3:289-295, 394",
    "test resize: short side 256 (Resize scale (-1, 256)), cv2 bilinear":
        "mmaction/datasets/transforms/processing.py@baf385e:598-648",
    "views: mean of softmax (average_clips='prob')": "configs/_base_/models/tsm_r50.py@3149f38:21; "
        "mmaction/models/heads/base.py@d18ca93:221-222",
    "train: resize 256, MultiScaleCrop (1, .875, .75, .66) to 224, flip": "the config's train_pipeline:12-28",
    "checkpoint layout": "backbones/resnet_tsm.py@d36db71:241-244, 308-350; heads/tsm_head.py@cc5612b:66",
    "class order": "tools/data/kinetics/label_map_k400.txt@430b0b6 (sorted); SSv2: tools/data/"
        "parse_file_list.py@cbd9d62:243-264 (labels.json index; = tools/data/sthv2/label_map.txt@430b0b6)",
}
_TSM_TRAIN = "multi-scale crop (1, .875, .75, .66 of the short side) resized to 224, flip"
_MM_INPUT = "RGB 0-255, (x - [123.675, 116.28, 103.53]) / [58.395, 57.12, 57.375]"


def _add(name: str, fmt: str, file: str, link: str, classes: str, published: Published, *, resize: int,
         crop: int, selection: str, clips: int, crops: int, sources: dict[str, str], sample_rate: int = 1,
         train: str = _TSM_TRAIN, fc_classes: int = 400) -> None:
    """An entry of 8 segments, ImageNet statistics, read frame by frame (no fps), a linear head."""
    add_entry(WeightsEntry(
        name=name, format=fmt, files=(file,), where=link, url=link, classes=classes,
        class_list="kinetics_csv" if classes == KINETICS400 else SOMETHING_V2, mean=IMAGENET_MEAN,
        std=IMAGENET_STD, frames=8, sample_rate=sample_rate, train_resize=train, test_resize=resize,
        input_note=_MM_INPUT if fmt == "mmaction2" else "RGB scaled to [0, 1], then (x - mean) / std",
        crop_size=crop, clip_selection=selection, num_clips=clips, num_crops=crops, head="fc",
        published=published, sources=sources, fc_classes=fc_classes, fps=None, fps_rule=None))


_FILE = "TSM_kinetics_RGB_resnet50_avg_segment5_e50.pth"
_add("tsn_r50.tsm_kinetics400", "tsm", _FILE, TSM_LINK + _FILE, KINETICS400,
     Published(68.8, None, "K400 val", "8 segment centres, 1 clip, centre crop 224 at short side 256, "
               "logits averaged", f"{_README}:122 (Uniform Sampling, acc (1-crop); the same file: 69.9 with "
               "10 crops, 70.6 with dense 8 x 10 clips x 3 full-res crops, :110)"),
     resize=256, crop=224, selection="segments", clips=1, crops=1,
     sources={**_TSM, "8 test segments (trained with 5)": "scripts/test_tsm_kinetics_rgb_8f.sh@83c77b7:2, "
              "6-9; scripts/train_tsn_kinetics_rgb_5f.sh@1846ca9:1-8",
              "file and accuracy": f"{_README}:116-122"})
_FILE = "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth"
_add("tsm_r50.tsm_kinetics400", "tsm", _FILE, TSM_LINK + _FILE, KINETICS400,
     Published(71.2, None, "K400 val", "8 segment centres, 1 clip, centre crop 224 at short side 256, "
               "logits averaged", f"{_README}:123 (Uniform Sampling, acc (1-crop); 72.8 with 10 crops)"),
     resize=256, crop=224, selection="segments", clips=1, crops=1,
     sources={**_TSM, "8 segments, 1 crop": "scripts/test_tsm_kinetics_rgb_8f.sh@83c77b7:3, 11-15; "
              "scripts/train_tsm_kinetics_rgb_8f.sh@1846ca9:1-6", "file and accuracy": f"{_README}:116-123"})
_FILE = "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e100_dense.pth"
_add("tsm_r50.tsm_kinetics400_dense", "tsm", _FILE, TSM_LINK + _FILE, KINETICS400,
     Published(74.1, None, "K400 val", "dense: 10 clips of 8 frames 8 apart, 3 crops of 256 at short side "
               "256 (full resolution), logits averaged", f"{_README}:111 (Dense Sample)"),
     resize=256, crop=256, selection="dense", clips=10, crops=3, sample_rate=8,
     train="dense 8 x 8 clips; " + _TSM_TRAIN,
     sources={**_TSM, "dense sample: 10 starts np.linspace(0, max(1, n - 63) - 1, 10), stride 64 // 8":
              "ops/dataset.py@d6da93d:145-152; test_models.py@d6da93d:221-222",
              "--test_crops=3 --dense_sample --full_res": f"{_README}:188-191",
              "file and accuracy": f"{_README}:106-111"})
_FILE = "TSM_somethingv2_RGB_resnet50_shift8_blockres_avg_segment8_e45.pth"
_add("tsm_r50.tsm_sthv2", "tsm", _FILE, TSM_LINK + _FILE, SOMETHING_V2,
     Published(61.2, None, "SSv2 val", "twice sample (2 clips of 8 segments) x 3 crops of 256 at short side "
               "256 (full resolution), logits averaged", f"{_README}:154"),
     resize=256, crop=256, selection="segments", clips=2, crops=3, fc_classes=174,
     train="multi-scale crop (1, .875, .75, .66 of the short side) resized to 224, no flip",
     sources={**_TSM, "twice sample: centres int(tick/2 + tick*k), then int(tick*k)":
              "ops/dataset.py@d6da93d:153-159",
              "full resolution x 2 clips, 3 crops (the V1 example command lacks --full_res; the README "
              "states full resolution for the V2 figure)": f"{_README}:138, 150, 210-213",
              "file and accuracy": f"{_README}:148-154"})
_MM_K400 = "tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb"
_add("tsm_r50.mmaction2_kinetics400", "mmaction2", f"{_MM_K400}_20220831-64d69186.pth",
     f"{MM_LINK}{_MM_K400}/{_MM_K400}_20220831-64d69186.pth", KINETICS400,
     Published(73.18, 90.56, "K400 val", "8 segment centres x TenCrop (224 corners + centre, flipped) at "
               "short side 256, mean of softmax", f"{_MM_README}:25"),
     resize=256, crop=224, selection="segments", clips=1, crops=10, sources={
         **_MM, "test: SampleFrames(clip_len=1, num_clips=8, test_mode=True), Resize(-1, 256), TenCrop(224)":
         f"configs/recognition/tsm/{_MM_K400}.py@588732b:43-56; processing.py@baf385e:1209-1265 (TenCrop)",
         "file and accuracy": f"{_MM_README}:25 (Kinetics-400 validation: 19796 videos, :44)"})
_MM_SSV2 = "tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb"
_add("tsm_r50.mmaction2_sthv2", "mmaction2", f"{_MM_SSV2}_20230317-be0fc26e.pth",
     f"{MM_LINK}{_MM_SSV2}/{_MM_SSV2}_20230317-be0fc26e.pth", SOMETHING_V2,
     Published(62.72, 87.70, "SSv2 val", "twice sample (2 x 8 segments) x 3 crops of 256 at short side 256, "
               "mean of softmax", f"{_MM_README}:39"),
     resize=256, crop=256, selection="segments", clips=2, crops=3, fc_classes=174,
     train="resize 256, multi-scale crop (1, .875, .75, .66) to 224, flip with the SSv2 label swaps",
     sources={
         **_MM, "test: SampleFrames(..., twice_sample=True), Resize(-1, 256), ThreeCrop(256)":
         f"configs/recognition/tsm/{_MM_SSV2}.py@d312248:46-60; processing.py@baf385e:1136-1183 (ThreeCrop)",
         "174 classes, dropout 0.5": f"configs/recognition/tsm/{_MM_SSV2}.py@d312248:4",
         "file and accuracy": f"{_MM_README}:39"})

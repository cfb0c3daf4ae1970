"""Released CSN weights (:mod:`vidrec.models.csn`): converters of each release layout, registry entries.

Names (``<c>`` = the block's global index, the ``comp`` count of VMZ's ``VideoModelBuilder``):

- ``vmz_caffe2``: VMZ ``.pkl`` blobs (``c2/lib/models/builder/video_model.py``): stem ``conv1_w``,
  ``conv1_spatbn_relu_*``; ir block ``comp_<c>_conv_{1,3,4}_w`` + ``comp_<c>_spatbn_{1,3,4}_*``
  (``3d-sep``: ``add_conv`` and ``add_channelwise_conv`` both count the channel-wise conv); ip block
  ``comp_<c>_conv_1``, ``comp_<c>_conv_2_middle`` + ``comp_<c>_spatbn_2_middle`` (``0.3d``),
  ``comp_<c>_conv_2``, ``comp_<c>_conv_3`` (each with its ``spatbn``); ``shortcut_projection_<c>[_spatbn]``;
  ``last_out_L<classes>_{w,b}``.
- ``state_dict``: VMZ pt ``.pth`` (torchvision ``VideoResNet`` names: ``stem.0``, ``layerL.i.conv1.0``,
  ``conv2.0[.0-2]``, ``conv3.1``, ``downsample.0/1``, ``fc``), or vidrec's own names.
- ``pytorchvideo``: ``{'model_state'}`` with ``blocks.0.conv``, ``blocks.<s>.res_blocks.<i>.branch2.conv_a``
  ... ``branch1_conv``, ``blocks.5.proj``.
- ``mmaction2``: ``{'state_dict'}`` with ``backbone.conv1.conv``, ``backbone.layerL.i.conv2.<j>.conv``,
  ``backbone.layerL.i.downsample.conv``, ``cls_head.fc_cls``.

Each converter sets the BatchNorm epsilon its framework trains with: 1e-3 (VMZ, mmaction2), 1e-5
(pytorchvideo).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidrec.models.registry import IMAGENET_MEAN, IMAGENET_STD
from vidrec.models.weights.caffe2_blobs import blobs_of, convert_blobs, param_blob
from vidrec.models.weights.caffe2_vmz import VMZ_BN_EPS
from vidrec.models.weights.entries import (
    _TV_MEAN,
    _TV_STD,
    _VMZ_SOURCES,
    KINETICS400,
    Published,
    WeightsEntry,
    add_entry,
)
from vidrec.models.weights.formats import register_converter
from vidrec.models.weights.torch_state import unwrap_state_dict

log = logging.getLogger(__name__)

PTV_BN_EPS = 1e-5  # pytorchvideo create_csn: nn.BatchNorm3d
_BLOCK = re.compile(r"layer(?P<layer>[1-4])\.(?P<index>\d+)\.(?P<module>.+)\.\w+")

# our module path in a block -> VMZ Caffe2 blob prefix (``{c}``: the block's global index), is-BatchNorm
_VMZ_SHORTCUT = {"downsample.0": ("shortcut_projection_{c}", False),
                 "downsample.1": ("shortcut_projection_{c}_spatbn", True)}
_VMZ_BLOBS = {
    "ir": {"conv1": ("comp_{c}_conv_1", False), "bn1": ("comp_{c}_spatbn_1", True),
           "conv2": ("comp_{c}_conv_3", False), "bn2": ("comp_{c}_spatbn_3", True),
           "conv3": ("comp_{c}_conv_4", False), "bn3": ("comp_{c}_spatbn_4", True), **_VMZ_SHORTCUT},
    "ip": {"conv1": ("comp_{c}_conv_1", False), "bn1": ("comp_{c}_spatbn_1", True),
           "conv2.0": ("comp_{c}_conv_2_middle", False), "conv2.1": ("comp_{c}_spatbn_2_middle", True),
           "conv2.2": ("comp_{c}_conv_2", False), "bn2": ("comp_{c}_spatbn_2", True),
           "conv3": ("comp_{c}_conv_3", False), "bn3": ("comp_{c}_spatbn_3", True), **_VMZ_SHORTCUT},
}
# VMZ pt (torchvision VideoResNet + VMZ's Conv3DDepthwise / IPConv3DDepthwise, pt/vmz/models/utils.py)
_VMZ_PT_STEM = {"stem.0": "conv1", "stem.1": "bn1", "fc": "fc"}
_VMZ_PT_BLOCK = {"conv1.0": "conv1", "conv1.1": "bn1", "conv2.0": "conv2", "conv2.0.0": "conv2.0",
                 "conv2.0.1": "conv2.1", "conv2.0.2": "conv2.2", "conv2.1": "bn2", "conv3.0": "conv3",
                 "conv3.1": "bn3", "downsample.0": "downsample.0", "downsample.1": "downsample.1"}
# pytorchvideo (models/resnet.py create_bottleneck_block, ResBlock; models/stem.py; models/head.py)
_PTV_STEM = {"blocks.0.conv": "conv1", "blocks.0.norm": "bn1", "blocks.5.proj": "fc"}
_PTV_BLOCK_KEY = re.compile(r"blocks\.(?P<layer>[1-4])\.res_blocks\.(?P<index>\d+)\.(?P<module>.+)\.\w+")
_PTV_BLOCK = {"branch2.conv_a": "conv1", "branch2.norm_a": "bn1", "branch2.conv_b": "conv2",
              "branch2.norm_b": "bn2", "branch2.conv_c": "conv3", "branch2.norm_c": "bn3",
              "branch1_conv": "downsample.0", "branch1_norm": "downsample.1"}
# mmaction2 (backbones/resnet3d_csn.py CSNBottleneck3d: conv2 = [1x1x1 ConvModule (ip)] + channel-wise one)
_MMA_STEM = {"backbone.conv1.conv": "conv1", "backbone.conv1.bn": "bn1", "cls_head.fc_cls": "fc"}
_MMA_BLOCK_KEY = re.compile(r"backbone\.layer(?P<layer>[1-4])\.(?P<index>\d+)\.(?P<module>.+)\.\w+")
_MMA_COMMON = {"conv1.conv": "conv1", "conv1.bn": "bn1", "conv3.conv": "conv3", "conv3.bn": "bn3",
               "downsample.conv": "downsample.0", "downsample.bn": "downsample.1"}
_MMA_BLOCK = {"ir": {**_MMA_COMMON, "conv2.0.conv": "conv2", "conv2.0.bn": "bn2"},
              "ip": {**_MMA_COMMON, "conv2.0.conv": "conv2.0", "conv2.0.bn": "conv2.1",
                     "conv2.1.conv": "conv2.2", "conv2.1.bn": "bn2"}}


def _set_bn_eps(model: nn.Module, eps: float, path: str | Path) -> None:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.eps = eps
    log.info("%s: BatchNorm eps set to %g as in the file's framework", path, eps)


def _translate(state: dict[str, torch.Tensor], stem: dict[str, str], block_key: re.Pattern,
               block: dict[str, str]) -> dict[str, torch.Tensor]:
    """Our key for each key of ``state``: module paths of ``stem`` (stem and head) and, in keys matching
    ``block_key`` (groups layer, index, module), module paths of ``block``; any other key is kept as it is, so
    that the load reports it."""
    out = {}
    for key, value in state.items():
        module, attr = key.rsplit(".", 1)
        match = block_key.fullmatch(key)
        if module in stem:
            key = f"{stem[module]}.{attr}"
        elif match and match["module"] in block:
            key = f"layer{match['layer']}.{match['index']}.{block[match['module']]}.{attr}"
        out[key] = value
    return out


def convert_vmz_caffe2(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """VMZ Caffe2 blobs -> :class:`vidrec.models.csn.CSN` state dict (blocks counted across the stages)."""
    offsets = {1: 0}
    for i in range(2, 5):
        offsets[i] = offsets[i - 1] + len(getattr(model, f"layer{i - 1}"))
    heads = [k[:-2] for k in blobs_of(obj) or {} if re.fullmatch(r"last_out_L\d+_w", k)]
    stem = {"conv1": ("conv1", False), "bn1": ("conv1_spatbn_relu", True),
            "fc": (heads[0] if heads else f"last_out_L{model.fc.out_features}", False)}
    names = _VMZ_BLOBS[model.mode]

    def blob_name(key: str) -> str | None:
        module, attr = key.rsplit(".", 1)
        match = _BLOCK.fullmatch(key)
        if module in stem:
            prefix, is_bn = stem[module]
            return param_blob(prefix, attr, is_bn)
        if match is None or match["module"] not in names:
            return None
        prefix, is_bn = names[match["module"]]
        return param_blob(prefix.format(c=offsets[int(match["layer"])] + int(match["index"])), attr, is_bn)

    converted = convert_blobs(obj, model, path, blob_name)
    _set_bn_eps(model, VMZ_BN_EPS, path)
    return converted


def convert_state_dict(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """VMZ pt's names (recognised by ``stem.0.weight``) renamed, BatchNorm eps 1e-3; vidrec's own kept."""
    state = unwrap_state_dict(obj, path)
    if "stem.0.weight" not in state:
        return state
    _set_bn_eps(model, VMZ_BN_EPS, path)
    return _translate(state, _VMZ_PT_STEM, _BLOCK, _VMZ_PT_BLOCK)


def convert_pytorchvideo(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """pytorchvideo ``create_csn`` keys (``model_state``) -> ours; BatchNorm eps 1e-5."""
    _set_bn_eps(model, PTV_BN_EPS, path)
    return _translate(unwrap_state_dict(obj, path), _PTV_STEM, _PTV_BLOCK_KEY, _PTV_BLOCK)


def convert_mmaction2(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """mmaction2 ``ResNet3dCSN`` + ``I3DHead`` keys -> ours (the data preprocessor's mean/std dropped)."""
    state = unwrap_state_dict(obj, path)
    state = {k: v for k, v in state.items() if not k.startswith("data_preprocessor.")}
    _set_bn_eps(model, VMZ_BN_EPS, path)  # ResNet3dCSN norm_cfg eps=1e-3
    return _translate(state, _MMA_STEM, _MMA_BLOCK_KEY, _MMA_BLOCK[model.mode])


register_converter("vmz_caffe2", "csn", convert_vmz_caffe2)
register_converter("state_dict", "csn", convert_state_dict)
register_converter("pytorchvideo", "csn", convert_pytorchvideo)
register_converter("mmaction2", "csn", convert_mmaction2)

# ------------------------------------------------------------------ VMZ (Caffe2 .pkl and VMZ pt .pth)
VMZ = "facebookresearch/VMZ"
CAFFE2 = "pytorch/pytorch caffe2/video"
_VMZ_PROTOCOL = "video-level, 32×2, 10 clips × 3 crops of 256 at short side 256, fully convolutional"
_VMZ_CSN_SOURCES = {
    **{k: v for k, v in _VMZ_SOURCES.items() if k.startswith("mean/std")},
    "32 frames, rate 2, 10 clips × 3 crops of 256, fully convolutional, pool1":
        f"{VMZ} c2/scripts/test_irCSN_152_kinetics.sh@75c7d98:17-23 (--clip_length_rgb=32 "
        "--sampling_rate_rgb=2 --crop_size=256 --use_convolutional_pred=1 --crop_per_clip=3 "
        "--clip_per_video=10 --use_pool1=1)",
    "short side 256 (video_res_type=1: short_edge = min(scale_h, scale_w); scale_w=342 unused), bilinear":
        f"{VMZ} c2/tools/test_net_large.py@75c7d98:78, 464-466; {CAFFE2}/video_decoder.cc@0c2ebf3 "
        "ResizeAndKeepAspectRatio, sws_getContext(SWS_FAST_BILINEAR)",
    "clips start at floor(k·(n − span)/(K − 1)), every source frame":
        f"{CAFFE2}/video_decoder.cc@0c2ebf3 DecodeMultipleClipsFromVideo "
        "(clip_start = floor(i * sample_stepsz))",
    "3 crops along the long side: 0, (w − c)/2, w − c":
        f"{CAFFE2}/video_input_op.h@fb168a5 DecodeAndTransform (w_off = j * (width - crop_size_) / 2)",
    "head: AveragePool (T/8, 7, 7) stride 1, 1x1x1 classifier, softmax per position, mean":
        f"{VMZ} c2/lib/models/r3d_model.py@75c7d98:155-156, 379-409; "
        "c2/lib/models/loss/loss_creator.py@de050d8:102-106",
    "mean of softmax over the 30 views": f"{VMZ} c2/tools/test_net_large.py@75c7d98:40-42, 318",
    "the figures' protocol": "the zoo names the 32×224×224 training input and no test protocol; the repo's "
    "test script for these files (it loads irCSN_152_ft_kinetics_from_URU_f126851907.pkl, IG-65M) is taken",
}
_VMZ_COMMON = dict(
    classes=KINETICS400, class_list="kinetics_csv", mean=_TV_MEAN, std=_TV_STD,
    input_note="RGB 0-255, (x - mean) / std with VMZ's Kinetics statistics (= torchvision's × 255)",
    frames=32, sample_rate=2, train_resize="no CSN training script in VMZ (train_net.py: random crop, flip)",
    test_resize=256, crop_size=256, clip_selection="uniform", num_clips=10, num_crops=3, head="fully_conv",
    fps=None, fps_rule=None)
# tag -> (Dropbox id, c2 file, VMZ pt file or None, accuracy, model_zoo.md line), per mode
_VMZ_FILES = {
    "ir": {"kinetics400": ("46gcm7up60ssx5c", "irCSN_152_kinetics_from_scratch_f98268019", None,
                           (76.5, 92.1), 35),
           "sports1m_ft_kinetics400": ("zuoj1aqouh6bo6k", "irCSN_152_ft_kinetics_from_sports1m_f101599884",
                                       "irCSN_152_ft_kinetics_from_Sports1M_f101599884", (78.2, 93.0), 36),
           "ig65m_ft_kinetics400": ("gmd8r87l3wmkn3h", "irCSN_152_ft_kinetics_from_ig65m_f126851907",
                                    "irCSN_152_ft_kinetics_from_ig65m_f126851907", (82.6, 95.3), 37)},
    "ip": {"kinetics400": ("3fihu6ti60047mu", "ipCSN_152_kinetics_from_scratch_f129594342", None,
                           (77.8, 92.8), 42),
           "sports1m_ft_kinetics400": ("ir7cr0hda36knux", "ipCSN_152_ft_kinetics_from_sports1m_f111279053",
                                       "ipCSN_152_ft_kinetics_from_Sports1M_f111279053", (78.8, 93.5), 43),
           "ig65m_ft_kinetics400": ("zpp3p0vn2i7bibl", "ipCSN_152_ft_kinetics_from_ig65m_f133090949",
                                    "ipCSN_152_ft_kinetics_from_ig65m_f133090949", (82.5, 95.3), 44)},
}
for _mode, _rows in _VMZ_FILES.items():
    for _tag, (_box, _c2, _pt, _acc, _line) in _rows.items():
        _zoo = (f"{VMZ} c2/tutorials/model_zoo.md@4cc542d:{_line} ({_mode}-CSN-152: Video@1 {_acc[0]}, "
                f"Video@5 {_acc[1]})")
        _published = Published(_acc[0], _acc[1], "K400 val", _VMZ_PROTOCOL, _zoo)
        add_entry(WeightsEntry(
            name=f"{_mode}_csn_152.vmz_{_tag}", format="vmz_caffe2", files=(f"{_c2}.pkl",),
            where=f"https://www.dropbox.com/s/{_box}/{_c2}.pkl?dl=0", url=None, published=_published,
            sources={**_VMZ_CSN_SOURCES, "file and accuracy": _zoo}, **_VMZ_COMMON))
        if _pt:
            _link = f"https://github.com/bjuncek/VMZ/releases/download/test_models/{_pt}.pth"
            _key = f"{_mode}_csn_152_{_tag.split('_')[0].replace('ig65m', 'ig')}_ft_kinetics_32frms"
            add_entry(WeightsEntry(
                name=f"{_mode}_csn_152.vmz_pt_{_tag}", format="state_dict", files=(f"{_pt}.pth",),
                where=_link, url=_link, published=_published, **_VMZ_COMMON,
                sources={**_VMZ_CSN_SOURCES, "accuracy (the Caffe2 model of the same f-number, ported)": _zoo,
                         "file": f"{VMZ} pt/vmz/models/utils.py@03cd95f:16-23 model_urls['{_key}']",
                         "BatchNorm eps 1e-3": f"{VMZ} pt/vmz/models/utils.py@03cd95f:30-34"}))

# ------------------------------------------------------------------ pytorchvideo CSN_32x2_R101
PTV, SLOWFAST = "facebookresearch/pytorchvideo", "facebookresearch/SlowFast"
_PTV_LINK = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/CSN_32x2_R101.pyth"
_PTV_ZOO = f"{PTV} docs/source/model_zoo.md@9d0ca90:20 (CSN R101 32x2: top 1 77.00, top 5 92.90, 3×10 views)"
add_entry(WeightsEntry(
    name="csn_r101.pytorchvideo_kinetics400", format="pytorchvideo", files=("CSN_32x2_R101.pyth",),
    where=_PTV_LINK, url=_PTV_LINK, classes=KINETICS400, class_list="kinetics_csv", mean=(0.45, 0.45, 0.45),
    std=(0.225, 0.225, 0.225), input_note="RGB scaled to [0, 1], then (x - 0.45) / 0.225", frames=32,
    sample_rate=2, train_resize="short side in [256, 320], random 224 crop, flip", test_resize=256,
    crop_size=256, clip_selection="uniform", num_clips=10, num_crops=3, head="fully_conv", fps=30,
    fps_rule="pyslowfast",
    published=Published(77.00, 92.90, "K400 val", "video-level, 32×2 at 30 fps, 10 clips × 3 crops of 256 at "
                        "short side 256, fully convolutional", _PTV_ZOO),
    sources={
        "file": f"{PTV} pytorchvideo/models/hub/csn.py@9a220b6:14-17", "accuracy": _PTV_ZOO,
        "32 frames, rate 2, train scales [256, 320], crop 224, test crop 256, 3 crops":
            f"{SLOWFAST} configs/Kinetics/pytorchvideo/CSN_32x2_R101.yaml@298cd16:9-14, 45-49",
        "mean/std 0.45 / 0.225, 10 clips, 30 fps, softmax head":
            f"{SLOWFAST} slowfast/config/defaults.py@287ec00:278, 282, 428, 687, 693, 720",
        "test: short side 256 (TRAIN_JITTER_SCALES[0]), 3 crops of 256, 64/30 s clips at k·(D − d)/(K − 1) s":
            f"{SLOWFAST} slowfast/datasets/ptv_datasets.py@198bf9d:163, 212-237; {PTV} "
            "pytorchvideo/data/clip_sampling.py@ae9cfc6:375-379 (ConstantClipsPerVideoSampler)",
        "bilinear resize": f"{PTV} pytorchvideo/transforms/functional.py@7da857b:92-95 short_side_scale",
        "head: AvgPool3d (T/8, 7, 7) stride 1, softmax per position, mean":
            f"{SLOWFAST} slowfast/models/ptv_model_builder.py@198bf9d:556-574 (PTVCSN); {PTV} "
            "pytorchvideo/models/head.py@ff7c55d:48 (pool_stride (1, 1, 1))"}))

# ------------------------------------------------------------------ mmaction2 (its own and VMZ's, ported)
MMA = "open-mmlab/mmaction2"
_MMA_CONFIGS = f"{MMA} configs/recognition/csn"
_MMA_BASE = "configs/_base_/models/ircsn_r152.py@ebb54cff:21-25"
_MMA_TEST = {
    "32 frames, rate 2, 10 clips, short side 256, ThreeCrop 256": f"{_MMA_CONFIGS}/"
    "ircsn_ig65m-pretrained-r152-bnfrozen_8xb12-32x2x1-58e_kinetics400-rgb.py@8da05663:55-68",
    "clips start at round(k·(n − span)/(K − 1)), every source frame":
        f"{MMA} mmaction/datasets/transforms/loading.py@96d20d38:297-311 (SampleFrames test_mode, no "
        "target_fps)",
    "3 crops: 0, (w − c)//2, 2·((w − c)//2)":
        f"{MMA} mmaction/datasets/transforms/processing.py@baf385ee:1166-1182 (ThreeCrop)",
    "bilinear resize": f"{MMA} mmaction/datasets/transforms/processing.py@baf385ee:625 (Resize)",
    "head: global average, fc_cls; mean of softmax (average_clips='prob')":
        f"{MMA} configs/_base_/models/ircsn_r152.py@ebb54cff:13-20; "
        "mmaction/models/heads/i3d_head.py@51a7d271:43-47",
}
_MMA_VMZ_STATS = ("VMZ's statistics (110.2008, 100.63983, 95.99475 / 58.14765, 56.46975, 55.332195)",
                  _TV_MEAN, _TV_STD)
_MMA_IN_STATS = ("ImageNet statistics (123.675, 116.28, 103.53 / 58.395, 57.12, 57.375)", IMAGENET_MEAN,
                 IMAGENET_STD)
_MMA_V1 = "https://download.openmmlab.com/mmaction/v1.0/recognition/csn"
_MMA_VMZ = "https://download.openmmlab.com/mmaction/recognition/csn/vmz/vmz_"
_IG_IR = "ircsn_ig65m-pretrained-r152_8xb12-32x2x1-58e_kinetics400-rgb"
_IG_IR_BNF = "ircsn_ig65m-pretrained-r152-bnfrozen_8xb12-32x2x1-58e_kinetics400-rgb"
# name -> (config with its mean/std lines, statistics, link, accuracy, README line)
_MMA_FILES = {
    "ir_csn_152.mmaction2_ig65m_ft_kinetics400": (
        f"{_IG_IR}.py@4279be30, base {_MMA_BASE}", _MMA_IN_STATS,
        f"{_MMA_V1}/{_IG_IR}/{_IG_IR}_20220811-c7a3cc5b.pth", (82.87, 95.90), 25),
    "ir_csn_152.mmaction2_ig65m_bnfrozen_ft_kinetics400": (
        f"{_IG_IR_BNF}.py@8da05663, base {_MMA_BASE}", _MMA_IN_STATS,
        f"{_MMA_V1}/{_IG_IR_BNF}/{_IG_IR_BNF}_20220811-7d1dacde.pth", (82.84, 95.92), 26),
    "ip_csn_152.mmaction2_vmz_kinetics400": (
        "ipcsn_r152_32x2x1-180e_kinetics400-rgb.py@4279be30:8-12", _MMA_VMZ_STATS,
        f"{_MMA_VMZ}ipcsn_from_scratch_r152_32x2x1_180e_kinetics400_rgb_20210617-d565828d.pth",
        (77.80, 93.10), 28),
    "ir_csn_152.mmaction2_vmz_kinetics400": (
        "ircsn_r152_32x2x1-180e_kinetics400-rgb.py@4279be30:8-12", _MMA_VMZ_STATS,
        f"{_MMA_VMZ}ircsn_from_scratch_r152_32x2x1_180e_kinetics400_rgb_20210617-5c933ae1.pth",
        (76.53, 92.28), 29),
    "ip_csn_152.mmaction2_vmz_ig65m_ft_kinetics400": (
        "ipcsn_ig65m-pretrained-r152-bnfrozen_32x2x1-58e_kinetics400-rgb.py@4279be30 (no "
        f"data_preprocessor), base {_MMA_BASE}", _MMA_IN_STATS,
        f"{_MMA_VMZ}ipcsn_ig65m_pretrained_r152_32x2x1_58e_kinetics400_rgb_20210617-c3be9793.pth",
        (82.68, 95.69), 30),
    "ip_csn_152.mmaction2_vmz_sports1m_ft_kinetics400": (
        "ipcsn_sports1m-pretrained-r152-bnfrozen_32x2x1-58e_kinetics400-rgb.py@4279be30:14-18",
        _MMA_VMZ_STATS,
        f"{_MMA_VMZ}ipcsn_sports1m_pretrained_r152_32x2x1_58e_kinetics400_rgb_20210617-3367437a.pth",
        (79.07, 93.82), 31),
    "ir_csn_152.mmaction2_vmz_sports1m_ft_kinetics400": (
        "ircsn_sports1m-pretrained-r152-bnfrozen_32x2x1-58e_kinetics400-rgb.py@4279be30:14-18",
        _MMA_VMZ_STATS,
        f"{_MMA_VMZ}ircsn_sports1m_pretrained_r152_32x2x1_58e_kinetics400_rgb_20210617-b9b10241.pth",
        (78.57, 93.44), 32),
}
for _name, (_config, (_note, _mean, _std), _link, _acc, _line) in _MMA_FILES.items():
    _readme = f"{_MMA_CONFIGS}/README.md@6cc912ba:{_line} (top1 {_acc[0]}, top5 {_acc[1]})"
    add_entry(WeightsEntry(
        name=_name, format="mmaction2", files=(_link.rsplit("/", 1)[1],), where=_link, url=_link,
        classes=KINETICS400, class_list="kinetics_csv", mean=_mean, std=_std,
        input_note=f"RGB 0-255, (x - mean) / std with {_note}", frames=32, sample_rate=2,
        train_resize="short side 256, RandomResizedCrop, resize to 224, flip", test_resize=256, crop_size=256,
        clip_selection="uniform", num_clips=10, num_crops=3, head="fc", fps=None, fps_rule=None,
        published=Published(_acc[0], _acc[1], "K400 val (mmaction2's 19796 videos)", "video-level, 32×2, "
                            "10 clips × 3 crops of 256 at short side 256, global average pooling", _readme),
        sources={**_MMA_TEST, "mean/std": f"{_MMA_CONFIGS}/{_config}", "file and accuracy": _readme}))

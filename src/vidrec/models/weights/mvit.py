"""Released MViT weights: converters of each release layout and the registry entries.

Layouts (key names read from each framework's code):

- ``state_dict`` (torchvision ``mvit_v1_b`` / ``mvit_v2_s``): vidrec's own names but the head ``head.1.*``
  (torchvision 0.29.1 models/video/mvit.py:525-528) -> ``fc.*``.
- ``pyslowfast`` (``{'model_state', 'optimizer_state', 'epoch', 'cfg'}``, slowfast/utils/checkpoint.py@281b819:133-138):
  ``patch_embed.proj`` (stem_helper.py@281b819:307), ``cls_token`` / ``pos_embed_spatial`` / ``pos_embed_temporal`` /
  ``pos_embed_class`` of shape (1, N, C) (video_model_builder.py@88bb4c9:887-901), ``blocks.N.attn.qkv``,
  ``attn.proj``, ``attn.pool_q`` + ``attn.norm_q`` (k, v), ``attn.rel_pos_h/w/t``, ``mlp.fc1`` / ``mlp.fc2``,
  ``blocks.N.proj`` (attention.py@198bf9d:188-289, 464-483), ``norm``, ``head.projection`` (head_helper.py@281b819:517).
- ``pytorchvideo`` (``{'model_state'}``, hub/utils.py ``checkpoint["model_state"]``): ``patch_embed.patch_model``,
  ``cls_positional_encoding.{cls_token, pos_embed_spatial, pos_embed_temporal, pos_embed_class}``, separate
  ``attn.q`` / ``attn.k`` / ``attn.v`` (concatenated into ``qkv``), PySlowFast's block names otherwise,
  ``norm_embed``, ``head.proj`` (pytorchvideo models/vision_transformers.py@f3142bb, layers/attention.py@28fe037,
  layers/positional_encoding.py@7da857b:80-96).
- ``mmaction2`` (``{'meta', 'state_dict'}``): ``backbone.patch_embed.projection``, ``backbone.cls_token``, PySlowFast's
  block names under ``backbone.blocks``, the last stage's norm ``backbone.norm3``, ``cls_head.fc_cls``
  (mmaction2 mmaction/models/backbones/mvit.py@cc5612b1:288-325, 429-470, 748-820; heads/mvit_head.py@b7af9d32:52).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidrec.models.mvit import MVIT_MEAN, MVIT_STD
from vidrec.models.weights.entries import KINETICS400, SOMETHING_V2, Published, WeightsEntry, add_entry
from vidrec.models.weights.formats import register_converter
from vidrec.models.weights.torch_state import unwrap_state_dict

# Renames of the whole-network keys, per layout (first matching prefix wins); block keys then go through _BLOCK.
_PREFIXES = {
    "state_dict": (("head.1.", "fc."),),
    "pyslowfast": (("patch_embed.proj.", "conv_proj."), ("cls_token", "pos_encoding.class_token"),
                   ("pos_embed_spatial", "pos_encoding.spatial_pos"), ("pos_embed_temporal", "pos_encoding.temporal_pos"),
                   ("pos_embed_class", "pos_encoding.class_pos"), ("head.projection.", "fc.")),
    "pytorchvideo": (("patch_embed.patch_model.", "conv_proj."), ("cls_positional_encoding.cls_token", "pos_encoding.class_token"),
                     ("cls_positional_encoding.pos_embed_spatial", "pos_encoding.spatial_pos"),
                     ("cls_positional_encoding.pos_embed_temporal", "pos_encoding.temporal_pos"),
                     ("cls_positional_encoding.pos_embed_class", "pos_encoding.class_pos"),
                     ("norm_embed.", "norm."), ("head.proj.", "fc.")),
    "mmaction2": (("backbone.patch_embed.projection.", "conv_proj."), ("backbone.cls_token", "pos_encoding.class_token"),
                  ("backbone.norm3.", "norm."), ("backbone.blocks.", "blocks."), ("cls_head.fc_cls.", "fc.")),
}
# PySlowFast's block names (shared by pytorchvideo and mmaction2) -> torchvision's
_BLOCK = ((re.compile(r"^(blocks\.\d+\.attn)\.proj\."), r"\1.project.0."),
          (re.compile(r"^(blocks\.\d+\.attn)\.pool_([qkv])\.weight$"), r"\1.pool_\2.pool.weight"),
          (re.compile(r"^(blocks\.\d+\.attn)\.norm_([qkv])\."), r"\1.pool_\2.norm_act.0."),
          (re.compile(r"^(blocks\.\d+\.mlp)\.fc1\."), r"\1.0."),
          (re.compile(r"^(blocks\.\d+\.mlp)\.fc2\."), r"\1.3."),
          (re.compile(r"^(blocks\.\d+)\.proj\."), r"\1.project."))
_SEPARATE_QKV = re.compile(r"^(blocks\.\d+\.attn)\.([qkv])\.(weight|bias)$")


def _rename(key: str, fmt: str) -> str:
    for old, new in _PREFIXES[fmt]:
        if key.startswith(old):
            key = new + key[len(old):]
            break
    if fmt == "state_dict":
        return key
    for pattern, new in _BLOCK:
        key = pattern.sub(new, key)
    return key


def _convert(obj: Any, model: nn.Module, path: str | Path, fmt: str) -> dict[str, torch.Tensor]:
    """The file's tensors under vidrec's names: renamed, separate q/k/v concatenated, (1, N, C) tables flattened to
    the model's shapes; keys that map to nothing keep their names (the strict load reports them)."""
    state = unwrap_state_dict(obj, path)
    target = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key.startswith("data_preprocessor."):  # mmaction2's input statistics: not network weights
            continue
        key = _rename(key, fmt)
        qkv = _SEPARATE_QKV.match(key)
        if qkv:
            parts.setdefault(f"{qkv[1]}.qkv.{qkv[3]}", {})[qkv[2]] = value
            continue
        if key in target and value.shape != target[key].shape and value.numel() == target[key].numel():
            value = value.reshape(target[key].shape)
        out[key] = value
    for key, pieces in parts.items():
        if set(pieces) == {"q", "k", "v"}:
            out[key] = torch.cat([pieces["q"], pieces["k"], pieces["v"]])
        else:  # incomplete: leave the pieces under their own names
            out.update({key.replace(".qkv.", f".{p}."): v for p, v in pieces.items()})
    return out


for _fmt in _PREFIXES:
    register_converter(_fmt, "mvit", lambda obj, model, path, fmt=_fmt: _convert(obj, model, path, fmt))


# ------------------------------------------------------------------ entries
_PYSF_MEAN, _PYSF_STD = MVIT_MEAN, MVIT_STD  # PySlowFast DATA.MEAN / DATA.STD (vidrec.models.mvit cites them)
_MM_MEAN = (123.675 / 255, 116.28 / 255, 103.53 / 255)  # mmaction2 configs/_base_/models/mvit_small.py@f0f07de4:6
_MM_STD = (58.395 / 255, 57.12 / 255, 57.375 / 255)  # mvit_small.py@f0f07de4:7
_SSV2 = SOMETHING_V2
_SSV2_LABELS = SOMETHING_V2
_TV = "torchvision 0.29.1 (1f1a920) models/video/mvit.py"
_PYSF = "SlowFast"
_KINETICS_TEST = {
    "mean/std 0.45/0.225, [0, 1] RGB": "SlowFast slowfast/config/defaults.py@287ec00:687, 693; DATA.REVERSE_INPUT_CHANNEL "
                                       "False (:746)",
    "frames at 30 fps (DATA.TARGET_FPS)": "defaults.py@287ec00:720",
    "1 crop: short side TRAIN_JITTER_SCALES[0] = 256, centre crop TEST_CROP_SIZE 224": "slowfast/datasets/kinetics.py"
    "@198bf9d:224-234 (spatial index 1 = centre); resize bilinear, align_corners=False: datasets/transform.py@88bb4c9:91-95",
    "clips k·floor((n − span)/(K − 1)) (USE_OFFSET_SAMPLING True in the configs, :9)": "slowfast/datasets/decoder.py"
    "@198bf9d:64-70",
}


def _ssv2_test(cfg: str, views: str) -> dict[str, str]:
    """The PySlowFast SSv2 test protocol (``cfg``: the config file, ``views``: its TEST lines)."""
    return {
        "mean/std 0.45/0.225": "SlowFast defaults.py@287ec00:687, 693",
        "RGB: frames decoded BGR by cv2, reversed by DATA.REVERSE_INPUT_CHANNEL True": "slowfast/datasets/utils.py@198bf9d"
        f":40-41, 89-90; configs/SSv2/{cfg}:21",
        "frames: the middle of T equal segments of (n − 1)/T frames, 1 clip": "slowfast/datasets/ssv2.py@198bf9d:159-180",
        "3 crops of 224 at short side 224": f"ssv2.py@198bf9d:224-230; configs/SSv2/{cfg}:17, {views}",
        "classes: something-something-v2-labels.json (174)": "ssv2.py@198bf9d:89-112",
    }



def _entry(name: str, fmt: str, file: str, where: str, url: str | None, mean: tuple, std: tuple, note: str,
           frames: int, rate: int, fps: float | None, fps_rule: str | None, resize: int, clips: int, crops: int,
           selection: str, acc: tuple[float, float], split: str, protocol: str, source: str, sources: dict[str, str],
           classes: str = KINETICS400, class_list: str = "kinetics_csv", arch: dict | None = None) -> None:
    add_entry(WeightsEntry(
        name=name, format=fmt, files=(file,), where=where, url=url, classes=classes, class_list=class_list, mean=mean,
        std=std, input_note=note, frames=frames, sample_rate=rate, train_resize="random resized crop 224 (scale "
        "[0.08, 1]), RandAugment, mixup/cutmix, random erasing", test_resize=resize, crop_size=224,
        clip_selection=selection, num_clips=clips, num_crops=crops, head="fc",
        published=Published(acc[0], acc[1], split, protocol, source), sources=sources,
        fc_classes=174 if classes == _SSV2 else 400, fps=fps, fps_rule=fps_rule, arch=arch or {},
        test_interpolation="bilinear"))


# torchvision's ports (KINETICS400_V1)
for _model, _file, _acc, _lines in (("mvit_v1_b", "mvit_v1_b-dbeb1030.pth", (78.477, 93.582), (604, 607, 617, 622)),
                                    ("mvit_v2_s", "mvit_v2_s-ae3be167.pth", (80.757, 94.665), (637, 640, 650, 655))):
    _url = f"https://download.pytorch.org/models/{_file}"
    _entry(f"{_model}.tv_kinetics400", "state_dict", _file, _url, _url, _PYSF_MEAN, _PYSF_STD,
           "RGB scaled to [0, 1], then (x - 0.45) / 0.225", 16, 1, 7.5, "torchvision", 256, 5, 1, "uniform", _acc,
           "K400 val", "video-level, 5 clips × 1 centre crop, 16 frames at 7.5 fps, short side 256, crop 224",
           f"{_TV}:{_lines[3]}-{_lines[3] + 5} (_metrics, KINETICS400_V1)", {
               "file": f"{_TV}:{_lines[0]}",
               "mean/std 0.45/0.225; resize 256, crop 224": f"{_TV}:{_lines[1]}-{_lines[1] + 3}",
               "resize bilinear, antialias off": "torchvision transforms/_presets.py:94, 115 (VideoClassification)",
               "16 frames at 7.5 fps, 5 clips per video": f"{_TV}:{_lines[2]}-{_lines[2] + 3} (_docs)",
               "5 clips spread from the first to the last (UniformClipSampler)": "torchvision references/"
               "video_classification/train.py (seen in copies of the file, not at a revision: unverified)",
               "classes: _KINETICS400_CATEGORIES": f"{_TV}:{_lines[0] + 11}"}, class_list="torchvision")

# PySlowFast MViTv2 (projects/mvitv2/README.md@73c3ee6: Kinetics-400 rows 28-29, SSv2 rows 38-39)
for _model, _file, _frames, _rate, _acc, _row, _cfg in (
        ("mvit_v2_s", "MViTv2_S_16x4_k400_f302660347.pyth", 16, 4, (81.0, 94.6), 28, "MVITv2_S_16x4.yaml@1aebd71"),
        ("mvit_v2_b", "MViTv2_B_32x3_k400_f304025456.pyth", 32, 3, (82.9, 95.7), 29, "MVITv2_B_32x3.yaml@1aebd71")):
    _url = f"https://dl.fbaipublicfiles.com/pyslowfast/model_zoo/mvitv2/pysf_video_models/{_file}"
    _entry(f"{_model}.pyslowfast_kinetics400", "pyslowfast", _file, _url, _url, _PYSF_MEAN, _PYSF_STD,
           "RGB scaled to [0, 1], then (x - 0.45) / 0.225", _frames, _rate, 30, "pyslowfast", 256, 5, 1, "uniform", _acc,
           "K400 val", f"{_frames}×{_rate}, 5 clips × 1 centre crop 224 (short side 256)",
           f"SlowFast projects/mvitv2/README.md@73c3ee6:{_row}; MODEL_ZOO.md@64f8d7e:{_row - 10}", {
               **_KINETICS_TEST, "file and accuracy": f"SlowFast projects/mvitv2/README.md@73c3ee6:{_row}",
               "frames × rate, crop 224": f"SlowFast configs/Kinetics/{_cfg}:11-12, 15",
               "5 clips × 1 crop": f"configs/Kinetics/{_cfg}:87-88 (NUM_SPATIAL_CROPS 1, NUM_ENSEMBLE_VIEWS 5)"})
for _model, _file, _frames, _acc, _row, _cfg, _views in (
        ("mvit_v2_s", "MViTv2_S_16x4_ssv2_f308341823.pyth", 16, (68.2, 91.4), 38, "MVITv2_S_16x4.yaml@73c3ee6", "89-90"),
        ("mvit_v2_b", "MViTv2_B_32x3_ssv2_f305803282.pyth", 32, (70.5, 92.7), 39, "MVITv2_B_32x3.yaml@73c3ee6", "92-93")):
    _url = f"https://dl.fbaipublicfiles.com/pyslowfast/model_zoo/mvitv2/pysf_video_models/{_file}"
    _entry(f"{_model}.pyslowfast_ssv2", "pyslowfast", _file, _url, _url, _PYSF_MEAN, _PYSF_STD,
           "RGB scaled to [0, 1], then (x - 0.45) / 0.225", _frames, 1, None, None, 224, 1, 3, "segments", _acc,
           "SSv2 val", f"{_frames} segments (middle frame), 1 clip × 3 crops of 224 at short side 224, K400 pretrain",
           f"SlowFast projects/mvitv2/README.md@73c3ee6:{_row}", {
               **_ssv2_test(_cfg, _views), "file and accuracy": f"SlowFast projects/mvitv2/README.md@73c3ee6:{_row}",
               "frames (NUM_FRAMES; SAMPLING_RATE unused by ssv2.py)": f"SlowFast configs/SSv2/{_cfg}:13-14"},
           classes=_SSV2, class_list=_SSV2_LABELS)

# PySlowFast MViTv1-B 32×3 (the 16×4 file's Google Drive link is gone: SlowFast issues #576, #586)
_url = "https://dl.fbaipublicfiles.com/pyslowfast/model_zoo/mvit/k400.pyth"
_entry("mvit_v1_b.pyslowfast_kinetics400_32x3", "pyslowfast", "k400.pyth", _url, _url, _PYSF_MEAN, _PYSF_STD,
       "RGB scaled to [0, 1], then (x - 0.45) / 0.225", 32, 3, 30, "pyslowfast", 256, 5, 1, "uniform", (80.4, 94.8),
       "K400 val", "32×3, 1 × 5 views (MODEL_ZOO), centre crop 224 at short side 256",
       "SlowFast MODEL_ZOO.md@64f8d7e:16", {
           **_KINETICS_TEST, "file, accuracy, views 1 × 5": "SlowFast MODEL_ZOO.md@64f8d7e:16",
           "32×3, crop 224": "SlowFast configs/Kinetics/MVIT_B_32x3_CONV.yaml@a58a647:11-12, 15",
           "architecture: DEPTH 24 (given twice, :23 and :34; the later wins), stages at 2/5/21, no POOL_KVQ_KERNEL "
           "(kernels stride + 1), 32 frames": "MVIT_B_32x3_CONV.yaml@a58a647:23, 34-38; video_model_builder.py@88bb4c9"
           ":928-954 — read from the config the zoo names, not checked against the file",
           "views: the config leaves TEST.NUM_ENSEMBLE_VIEWS at its default 10": "defaults.py@287ec00:278; the zoo's "
           "1 × 5 is used here"},
       arch={"depths": (2, 3, 16, 3), "kvq_kernel": None, "temporal_size": 32})

# pytorchvideo MViT-B (docs/source/model_zoo.md@9d0ca90:26-27; evaluated with PySlowFast, 1 crop × 5 clips)
for _tag, _file, _frames, _rate, _acc, _row in (
        ("ptv_kinetics400", "MVIT_B_16x4.pyth", 16, 4, (78.85, 93.85), 26),
        ("ptv_kinetics400_32x3", "MVIT_B_32x3_f294077834.pyth", 32, 3, (80.30, 94.69), 27)):
    _url = f"https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/{_file}"
    _entry(f"mvit_v1_b.{_tag}", "pytorchvideo", _file, _url, _url, _PYSF_MEAN, _PYSF_STD,
           "RGB scaled to [0, 1], then (x - 0.45) / 0.225", _frames, _rate, 30, "pyslowfast", 256, 5, 1, "uniform", _acc,
           "K400 val", f"{_frames}×{_rate}, 1 crop × 5 clips", f"pytorchvideo docs/source/model_zoo.md@9d0ca90:{_row}", {
               **_KINETICS_TEST, "file, accuracy, 1 × 5 views": f"pytorchvideo docs/source/model_zoo.md@9d0ca90:{_row}, 63",
               "network (depth 16, temporal_size)": "pytorchvideo pytorchvideo/models/hub/vision_transformers.py@5afca5f "
               "(mvit_video_base_config, mvit_video_base_32x3_config)",
               "test protocol (PySlowFast's, PTVMViT)": "SlowFast configs/Kinetics/pytorchvideo/MVIT_B_16x4_CONV.yaml"
               "@e94b6fb:11-15, 78, 85 (TEST.NUM_ENSEMBLE_VIEWS left at its default 10; the zoo states 1 × 5)",
               "LayerNorm eps 1e-5 after q/k/v pooling (nn.LayerNorm), as the 2021 zoo's code built it":
               "pytorchvideo pytorchvideo/layers/attention.py@6a05090:521 (1e-6 only from c85fa64, 2022-02-15)"},
           arch={"pool_norm_eps": 1e-5, **({"temporal_size": 32} if _frames == 32 else {})})

# mmaction2: PySlowFast's MViTv2 converted (*) and its own trainings (configs/recognition/mvit/README.md@e28ec68b)
_MM = "mmaction2 configs/recognition/mvit"
_MM_URL = "https://download.openmmlab.com/mmaction/v1.0/recognition/mvit"
for _tag, _model, _file, _acc, _row, _cfg in (
        ("mmaction2_kinetics400", "mvit_v2_s", "converted/mvit-small-p244_16x4x1_kinetics400-rgb_20221021-9ebaaeed.pth",
         (81.1, 94.7), 35, "mvit-small-p244_32xb16-16x4x1-200e_kinetics400-rgb.py@25684457"),
        ("mmaction2_kinetics400", "mvit_v2_b", "converted/mvit-base-p244_32x3x1_kinetics400-rgb_20221021-f392cd2d.pth",
         (82.6, 95.8), 36, "mvit-base-p244_32x3x1_kinetics400-rgb.py@25684457"),
        ("mmaction2_trained_kinetics400", "mvit_v2_s", "mvit-small-p244_32xb16-16x4x1-200e_kinetics400-rgb/"
         "mvit-small-p244_32xb16-16x4x1-200e_kinetics400-rgb_20230201-23284ff3.pth", (80.6, 94.7), 53,
         "mvit-small-p244_32xb16-16x4x1-200e_kinetics400-rgb.py@25684457")):
    _frames, _rate = (32, 3) if _model == "mvit_v2_b" else (16, 4)
    _lines = "11-14, 64-77" if _model == "mvit_v2_b" else "6-9, 59-72"
    _entry(f"{_model}.{_tag}", "mmaction2", _file.rsplit("/", 1)[-1], f"{_MM_URL}/{_file}", f"{_MM_URL}/{_file}",
           _PYSF_MEAN, _PYSF_STD, "RGB 0-255, (x - 114.75) / 57.375", _frames, _rate, None, None, 224, 5, 1, "uniform",
           _acc, "K400 val (mmaction2's copy, 19,796 videos)", f"{_frames}×{_rate}x1, 5 clips × 1 crop, short side 224, "
           "centre crop 224", f"{_MM}/README.md@e28ec68b:{_row}", {
               "file and accuracy": f"{_MM}/README.md@e28ec68b:{_row} (19,796 val videos: :23)",
               "mean/std 114.75/57.375, frames, rate, 5 clips, short side 224, centre crop 224": f"{_MM}/{_cfg}:{_lines}",
               "clips round(k·(n − span)/(K − 1)) over the decoded frames (no fps resampling)":
               "mmaction2 mmaction/datasets/transforms/loading.py@96d20d38:296-313 (SampleFrames)",
               "resize bilinear": "mmaction2 Resize (mmcv imresize, interpolation 'bilinear' by default)",
               "classes: Kinetics-400 label map (sorted names)": "mmaction2 tools/data/kinetics/label_map_k400.txt "
               "(not in the stored sources: order assumed sorted)"})
for _tag, _model, _file, _acc, _row, _cfg, _mean in (
        ("mmaction2_ssv2", "mvit_v2_s", "converted/mvit-small-p244_u16_sthv2-rgb_20221021-65ecae7d.pth", (68.1, 91.0),
         43, "mvit-small-p244_k400-pre_16xb16-u16-100e_sthv2-rgb.py@25684457", "imagenet"),
        ("mmaction2_ssv2", "mvit_v2_b", "converted/mvit-base-p244_u32_sthv2-rgb_20221021-d5de5da6.pth", (70.8, 92.7), 44,
         "mvit-base-p244_u32_sthv2-rgb.py@25684457", "pyslowfast"),
        ("mmaction2_trained_ssv2", "mvit_v2_s", "mvit-small-p244_k400-pre_16xb16-u16-100e_sthv2-rgb/"
         "mvit-small-p244_k400-pre_16xb16-u16-100e_sthv2-rgb_20230201-4065c1b9.pth", (68.2, 91.3), 66,
         "mvit-small-p244_k400-pre_16xb16-u16-100e_sthv2-rgb.py@25684457", "imagenet")):
    _frames = 32 if _model == "mvit_v2_b" else 16
    _imagenet = _mean == "imagenet"
    _stats = ("configs/_base_/models/mvit_small.py@f0f07de4:6-7 (the config sets none)" if _imagenet
              else f"{_MM}/{_cfg}:13-14")
    _entry(f"{_model}.{_tag}", "mmaction2", _file.rsplit("/", 1)[-1], f"{_MM_URL}/{_file}", f"{_MM_URL}/{_file}",
           _MM_MEAN if _imagenet else _PYSF_MEAN, _MM_STD if _imagenet else _PYSF_STD,
           "RGB 0-255, (x - mean) / std with ImageNet statistics" if _imagenet else "RGB 0-255, (x - 114.75) / 57.375",
           _frames, 1, None, None, 224, 1, 3, "segments", _acc, "SSv2 val",
           f"uniform {_frames} (one frame per segment), 1 clip × 3 crops of 224 at short side 224",
           f"{_MM}/README.md@e28ec68b:{_row}", {
               "file and accuracy": f"{_MM}/README.md@e28ec68b:{_row}",
               "mean/std": _stats,
               "UniformSample clip_len, Resize (-1, 224), ThreeCrop 224":
               f"{_MM}/{_cfg}:" + ("48-56" if _frames == 16 else "58-66"),
               "frame of each segment: round(seg·i) + int(seg/2), seg = (n − 1)/T":
               "mmaction2 mmaction/datasets/transforms/loading.py@96d20d38:470-483 (UniformSample, 1 clip)"},
           classes=_SSV2, class_list=_SSV2_LABELS)

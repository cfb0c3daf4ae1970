"""Released Video Swin Transformer weights: the converters of their layouts and the registry entries.

Layouts (:mod:`vidrec.models.swin3d` keeps torchvision's module names):

- ``state_dict``: torchvision's ``swin3d_*`` files, our names but the classifier ``head.*`` (-> ``fc.*``).
- ``mmaction2``: ``{'meta', 'state_dict', ...}`` with ``backbone.*`` / ``cls_head.fc_cls.*`` keys, in two spellings —
  Video-Swin-Transformer's (mmaction/models/backbones/swin_transformer.py@37a4ade: ``layers.<i>.blocks.<j>``
  with ``mlp.fc1``/``mlp.fc2``, ``layers.<i>.downsample``, the final ``norm``) and mmaction2 1.x's port
  (mmaction/models/backbones/swin.py@ba489957: the same, but the final norm is ``norm3``, one per
  ``out_indices=(3,)``, :887). Both keep the ``relative_position_index`` buffers (register_buffer, persistent).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidrec.models.registry import IMAGENET_MEAN, IMAGENET_STD
from vidrec.models.weights.common import inflate
from vidrec.models.weights.entries import KINETICS400, SOMETHING_V2, Published, WeightsEntry, add_entry
from vidrec.models.weights.formats import register_converter
from vidrec.models.weights.torch_state import unwrap_state_dict

log = logging.getLogger(__name__)

# (authors' key part, ours), applied in turn; ``norm3`` is mmaction2 1.x's name of the final norm
_MMACTION2_RENAMES = [
    (r"^backbone\.layers\.(\d+)\.blocks\.", lambda m: f"features.{2 * int(m[1])}."),
    (r"^backbone\.layers\.(\d+)\.downsample\.", lambda m: f"features.{2 * int(m[1]) + 1}."),
    (r"^(features\.\d+\.\d+\.mlp)\.fc1\.", r"\1.0."),
    (r"^(features\.\d+\.\d+\.mlp)\.fc2\.", r"\1.3."),
    (r"^backbone\.norm3?\.", "norm."),
    (r"^backbone\.patch_embed\.", "patch_embed."),
    (r"^cls_head\.fc_cls\.", "fc."),
]


def mmaction2_key(key: str) -> str:
    """Our name of a Video-Swin-Transformer / mmaction2 1.x key (other keys keep their name)."""
    for pattern, ours in _MMACTION2_RENAMES:
        key = re.sub(pattern, ours, key)
    return key


def convert_mmaction2(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """Video-Swin-Transformer or mmaction2 1.x ``.pth`` -> our names."""
    return {mmaction2_key(k): v for k, v in unwrap_state_dict(obj, path).items()}


def convert_torchvision(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """torchvision's state dict (or ours): only the classifier is renamed, ``head.*`` -> ``fc.*``."""
    return {("fc." + k[5:] if k.startswith("head.") else k): v for k, v in unwrap_state_dict(obj, path).items()}


def convert_swin2d(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """A 2D ImageNet Swin inflated as Video Swin's ``inflate_weights`` does (Video-Swin-Transformer mmaction/models/
    backbones/swin_transformer.py@db018fb:563-614): the patch embedding repeated over its temporal size and divided by
    it; each relative-position bias table resized (bicubic) to the window's spatial extent when it differs, then
    repeated ``2·Wt - 1`` times; the index buffers and the classifier are the model's own (re-initialised there)."""
    own = model.state_dict()
    state = {}
    for key, value in unwrap_state_dict(obj, path).items():
        if "relative_position_index" in key or "attn_mask" in key or key.startswith("head."):
            continue
        state[mmaction2_key("backbone." + key)] = value
    proj = own["patch_embed.proj.weight"]
    state["patch_embed.proj.weight"] = inflate(state["patch_embed.proj.weight"], proj.shape[2])
    for key in [k for k in state if k.endswith("relative_position_bias_table")]:
        table, target = state[key], own.get(key)
        if target is None or table.shape[1] != target.shape[1]:
            continue  # reported by the strict load
        window = model.get_submodule(key.rsplit(".", 1)[0]).window_size
        spatial = (2 * window[1] - 1) * (2 * window[2] - 1)
        if table.shape[0] != spatial:
            side = int(table.shape[0] ** 0.5)
            grid = table.permute(1, 0).reshape(1, table.shape[1], side, side)
            grid = nn.functional.interpolate(grid, size=(2 * window[1] - 1, 2 * window[2] - 1), mode="bicubic")
            table = grid.reshape(table.shape[1], spatial).permute(1, 0)
        state[key] = table.repeat(2 * window[0] - 1, 1)
    kept = [k for k in own if "relative_position_index" in k or k.startswith("fc.")]
    state.update({k: own[k].clone() for k in kept})
    log.info("%s: a 2D ImageNet Swin inflated to %s; its classifier is not loaded", path, type(model).__name__)
    return state


register_converter("mmaction2", "swin3d", convert_mmaction2)
register_converter("state_dict", "swin3d", convert_torchvision)
register_converter("swin2d_imagenet", "swin3d", convert_swin2d)

# ------------------------------------------------------------------ torchvision (ported from the authors)
_TV = "torchvision 0.29.1 (git 1f1a920) torchvision/models/video/swin_transformer.py"
_TV_LINES = {  # model: (file, weights lines, url line, transforms lines, _docs lines, _metrics lines)
    "swin3d_t": ("swin3d_t-7615ae03.pth", "512-539", 514, "515-521", "525-528", "530-535"),
    "swin3d_s": ("swin3d_s-da41c237.pth", "543-570", 545, "546-552", "556-559", "561-566"),
    "swin3d_b": ("swin3d_b_1k-24f7c7c6.pth", "574-601", 576, "577-583", "587-590", "592-597"),
    "swin3d_b_22k": ("swin3d_b_22k-7c6ae6fa.pth", "602-628", 603, "604-610", "614-617", "619-624"),
}
for _model, _tag, _key, _acc in (("swin3d_t", "tv_kinetics400", "swin3d_t", (77.715, 93.519)),
                                 ("swin3d_s", "tv_kinetics400", "swin3d_s", (79.521, 94.158)),
                                 ("swin3d_b", "tv_kinetics400", "swin3d_b", (79.427, 94.386)),
                                 ("swin3d_b", "tv_in22k_kinetics400", "swin3d_b_22k", (81.643, 95.574))):
    _file, _lines, _url, _tf, _docs, _metrics = _TV_LINES[_key]
    _link = f"https://download.pytorch.org/models/{_file}"
    add_entry(WeightsEntry(
        name=f"{_model}.{_tag}", format="state_dict", files=(_file,), where=_link, url=_link,
        classes=KINETICS400, class_list="torchvision", mean=IMAGENET_MEAN, std=IMAGENET_STD,
        input_note="RGB scaled to [0, 1], then (x - mean) / std with the ImageNet statistics", frames=32,
        sample_rate=1, train_resize="ported from Video-Swin-Transformer (short side 256, random resized crop 224, flip)",
        test_resize=256, crop_size=224, clip_selection="uniform", num_clips=12, num_crops=1, head="fc",
        fps=15, fps_rule="torchvision", test_interpolation="bilinear",
        published=Published(_acc[0], _acc[1], "K400 val", "video-level, 12 clips × 1 centre crop, 32 consecutive "
                            "frames at 15 fps, short side 256, crop 224 (torchvision's estimate of the ported weights)",
                            f"{_TV}:{_metrics} (_metrics)"),
        sources={"file": f"{_TV}:{_url}",
                 "mean/std (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225), RGB in [0, 1]": f"{_TV}:{_tf}",
                 "resize (256,) = short side 256, bilinear, antialias off; centre crop 224":
                     f"{_TV}:{_tf}; torchvision/transforms/_presets.py:86-125 (VideoClassification)",
                 "32 frames at 15 fps, 12 clips per video, video-level": f"{_TV}:{_docs} (_docs: frame_rate=15, "
                 "clips_per_video=12, clip_len=32)",
                 "clips spread uniformly over the video (start k = floor(k·(n - 32)/11))": "vision "
                 "references/video_classification/train.py@07f0622 UniformClipSampler(..., args.clips_per_video)",
                 "accuracy": f"{_TV}:{_metrics}"}))

# ------------------------------------------------------------------ Video-Swin-Transformer (the authors)
_VS = "SwinTransformer/Video-Swin-Transformer"
_VS_LINK = "https://github.com/SwinTransformer/storage/releases/download/v1.0.4/"
_VS_NOTE = "RGB 0-255, (x - [123.675, 116.28, 103.53]) / [58.395, 57.12, 57.375] (the ImageNet statistics × 255)"
_VS_K400_PROTOCOL = "video-level, 4 clips × 3 crops of 224 at short side 224, 32×2 frames"


def _videoswin_sources(config: str, norm_lines: str, test_lines: str) -> dict[str, str]:
    return {
        "mean/std 0-255, RGB (to_bgr=False)": f"{_VS} {config}@db018fb:{norm_lines} img_norm_cfg",
        "test: SampleFrames clip_len=32, frame_interval=2, Resize(-1, 224), ThreeCrop(224)":
            f"{_VS} {config}@db018fb:{test_lines} test_pipeline",
        "short side 224, bilinear (mmcv imresize)": f"{_VS} mmaction/datasets/pipelines/augmentations.py@37a4ade:1061-1100 "
                                                    "Resize (np.inf long edge; interpolation='bilinear')",
        "3 crops along the long side": f"{_VS} mmaction/datasets/pipelines/augmentations.py@37a4ade:1759 ThreeCrop",
        "head: average pool, dropout, fc_cls; mean of the softmax over views": f"{_VS} mmaction/models/heads/"
        "i3d_head.py@56515c4:41-71; configs/_base_/models/swin/swin_tiny.py@37a4ade:18-24 (average_clips='prob')",
        "file layout {'meta', 'state_dict'[, 'optimizer', 'amp']}": f"{_VS} mmcv_custom/runner/checkpoint.py@37a4ade:39-53",
    }


_CLIPS_DEPARTURE = ("the authors start test clip k at int((k + 1/2)·(n - 63)/4) (mmaction/datasets/pipelines/"
                    "loading.py@37a4ade:164-184 _get_test_clips, looped :250); vidrec's 'uniform' starts at 0 and "
                    "ends on the last frame")
for _model, _tag, _file, _config, _acc, _line, _pretrain in (
    ("swin3d_t", "videoswin_kinetics400", "swin_tiny_patch244_window877_kinetics400_1k.pth",
     "configs/recognition/swin/swin_tiny_patch244_window877_kinetics400_1k.py", (78.8, 93.6), 28, "ImageNet-1K"),
    ("swin3d_s", "videoswin_kinetics400", "swin_small_patch244_window877_kinetics400_1k.pth",
     "configs/recognition/swin/swin_small_patch244_window877_kinetics400_1k.py", (80.6, 94.5), 29, "ImageNet-1K"),
    ("swin3d_b", "videoswin_kinetics400", "swin_base_patch244_window877_kinetics400_1k.pth",
     "configs/recognition/swin/swin_base_patch244_window877_kinetics400_1k.py", (80.6, 94.6), 30, "ImageNet-1K"),
    ("swin3d_b", "videoswin_in22k_kinetics400", "swin_base_patch244_window877_kinetics400_22k.pth",
     "configs/recognition/swin/swin_base_patch244_window877_kinetics400_22k.py", (82.7, 95.5), 31, "ImageNet-22K"),
):
    add_entry(WeightsEntry(
        name=f"{_model}.{_tag}", format="mmaction2", files=(_file,), where=_VS_LINK + _file, url=_VS_LINK + _file,
        classes=KINETICS400, class_list="kinetics_csv", mean=IMAGENET_MEAN, std=IMAGENET_STD, input_note=_VS_NOTE,
        frames=32, sample_rate=2, train_resize="short side 256, random resized crop, resize 224×224, flip",
        test_resize=224, crop_size=224, clip_selection="uniform", num_clips=4, num_crops=3, head="fc",
        fps=None, fps_rule=None, test_interpolation="bilinear",
        published=Published(_acc[0], _acc[1], "K400 val", f"{_VS_K400_PROTOCOL}; {_pretrain} pretraining",
                            f"{_VS} README.md@d13b5a3:{_line} (Kinetics 400)"),
        sources={**_videoswin_sources(_config, "13-14", "45-61"), "file and accuracy": f"{_VS} README.md@d13b5a3:{_line}",
                 "departure: clip starts": _CLIPS_DEPARTURE,
                 "classes: mmaction2's sorted Kinetics-400 label map": "open-mmlab/mmaction2 tools/data/kinetics/"
                 "label_map_k400.txt@b94df49f (sorted; the authors' own k400 lists are not mirrored here)"}))

_SSV2_CONFIG = "configs/recognition/swin/swin_base_patch244_window1677_sthv2.py"
add_entry(WeightsEntry(
    name="swin3d_b.videoswin_sthv2", format="mmaction2", files=("swin_base_patch244_window1677_sthv2.pth",),
    where=_VS_LINK + "swin_base_patch244_window1677_sthv2.pth", url=_VS_LINK + "swin_base_patch244_window1677_sthv2.pth",
    classes=SOMETHING_V2, class_list=SOMETHING_V2, mean=IMAGENET_MEAN, std=IMAGENET_STD, input_note=_VS_NOTE,
    frames=32, sample_rate=1, train_resize="short side 256, random resized crop, resize 224×224, RandAugment, "
    "random erasing, no flip", test_resize=224, crop_size=224, clip_selection="segments", num_clips=1, num_crops=3,
    head="fc", fps=None, fps_rule=None, test_interpolation="bilinear", fc_classes=174, arch={"window_size": (16, 7, 7)},
    published=Published(69.6, 92.7, "SSv2 val", "32 frames, one from each of 32 equal segments, 1 clip × 3 crops of 224 "
                        "at short side 224; Kinetics-400 (IN-22K) pretraining", f"{_VS} README.md@d13b5a3:43"),
    sources={**_videoswin_sources(_SSV2_CONFIG, "12-13", "47-64"), "file and accuracy": f"{_VS} README.md@d13b5a3:43",
             "window 16×7×7, 174 classes": f"{_VS} {_SSV2_CONFIG}@db018fb:127-128",
             "32 segments, test frame (round(s·i) + round(s·(i+1))) // 2 with s = (n - 1)/32 (frame_interval unused)":
                 f"{_VS} mmaction/datasets/pipelines/loading.py@37a4ade:205-236 get_seq_frames (frame_uniform=True)",
             "classes: the official something-something-v2-labels.json ids": "open-mmlab/mmaction2 "
             "tools/data/parse_file_list.py@cbd9d622:231-247 parse_sthv2_splits"}))

# ------------------------------------------------------------------ mmaction2 1.x (re-trained ports)
_MM = "open-mmlab/mmaction2"
_MM_LINK = "https://download.openmmlab.com/mmaction/v1.0/recognition/swin/"
for _model, _variant, _stamp, _acc, _line, _test_lines in (
    ("swin3d_t", "tiny", "20220930-241016b2", (78.90, 93.77), 25, "45-58"),
    ("swin3d_s", "small", "20220930-e91ab986", (80.54, 94.46), 26, "47-60"),
    ("swin3d_b", "base", "20220930-182ec6cc", (80.57, 94.49), 27, "48-61"),
):
    _stem = f"swin-{_variant}-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_kinetics400-rgb"
    _file = f"{_stem}_{_stamp}.pth"
    add_entry(WeightsEntry(
        name=f"{_model}.mmaction2_kinetics400", format="mmaction2", files=(_file,), where=f"{_MM_LINK}{_stem}/{_file}",
        url=f"{_MM_LINK}{_stem}/{_file}", classes=KINETICS400, class_list="kinetics_csv", mean=IMAGENET_MEAN,
        std=IMAGENET_STD, input_note=_VS_NOTE, frames=32, sample_rate=2,
        train_resize="short side 256, random resized crop, resize 224×224, flip", test_resize=224, crop_size=224,
        clip_selection="uniform", num_clips=4, num_crops=3, head="fc", fps=None, fps_rule=None,
        test_interpolation="bilinear",
        published=Published(_acc[0], _acc[1], "K400 val (mmaction2's copy, 19,796 videos)",
                            f"{_VS_K400_PROTOCOL}; ImageNet-1K pretraining",
                            f"{_MM} configs/recognition/swin/README.md@9dc33d98:{_line}"),
        sources={"mean/std 0-255 (ActionDataPreprocessor), RGB": f"{_MM} configs/_base_/models/swin_tiny.py@4c2be20a:17-21",
                 "test: SampleFrames 32×2, num_clips=4, Resize(-1, 224), ThreeCrop(224)":
                     f"{_MM} configs/recognition/swin/{_stem}.py@465d7deb:{_test_lines}",
                 "clip k starts at round(k·(n - 63)/3), looped": f"{_MM} mmaction/datasets/transforms/loading.py@96d20d38:"
                 "296-312, 343 (_get_test_clips, _get_ori_clip_len; numpy rounds half to even)",
                 "file layout {'meta', 'state_dict'} (message_hub, optimizer, schedulers removed)":
                     f"{_MM} tools/deployment/publish_model.py@908af8a1:20-33",
                 "final norm saved as backbone.norm3": f"{_MM} mmaction/models/backbones/swin.py@ba489957:880-887",
                 "file and accuracy": f"{_MM} configs/recognition/swin/README.md@9dc33d98:{_line}",
                 "classes: sorted Kinetics-400 label map": f"{_MM} tools/data/kinetics/label_map_k400.txt@b94df49f"}))

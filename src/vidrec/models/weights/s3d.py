"""Released S3D weights: torchvision's state dict (``s3d-d76dad2f.pth``) and its registry entry.

torchvision's keys are :mod:`vidrec.models.s3d`'s except the classifier: ``classifier.1`` (a 1x1x1 ``Conv3d``,
weight (K, 1024, 1, 1, 1), after ``classifier.0``, the dropout) becomes ``fc`` (weight (K, 1024)).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidrec.models.registry import KINETICS_MEAN, KINETICS_STD
from vidrec.models.weights.common import HEAD_PREFIX
from vidrec.models.weights.entries import KINETICS400, Published, WeightsEntry, add_entry
from vidrec.models.weights.formats import register_converter
from vidrec.models.weights.torch_state import unwrap_state_dict

_CLASSIFIER = "classifier.1."


def convert(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """torchvision's (or vidrec's own) S3D state dict: the 1x1x1 conv classifier as ``fc``."""
    state = {}
    for key, value in unwrap_state_dict(obj, path).items():
        if key.startswith(_CLASSIFIER):
            key = HEAD_PREFIX + key.removeprefix(_CLASSIFIER)
            value = value.flatten(1) if value.ndim == 5 else value
        state[key] = value
    return state


register_converter("state_dict", "s3d", convert)

_TV = "torchvision 0.29.1 models/video/s3d.py"
_REFS = "pytorch/vision references/video_classification"
_FILE = "s3d-d76dad2f.pth"
_LINK = f"https://download.pytorch.org/models/{_FILE}"
add_entry(WeightsEntry(
    name="s3d.tv_kinetics400", format="state_dict", files=(_FILE,), where=_LINK, url=_LINK,
    classes=KINETICS400, class_list="torchvision", mean=KINETICS_MEAN, std=KINETICS_STD,
    input_note="RGB scaled to [0, 1], then (x - mean) / std", frames=128, sample_rate=1,
    train_resize="fixed 256×256, random 224 crop, flip (64-frame clips)", test_resize=(256, 256),
    crop_size=224,
    clip_selection="offset", num_clips=1, num_crops=1, head="fc", fps=15, fps_rule="torchvision",
    published=Published(68.368, 88.050, "K400 val", "clip-level: the first 128-frame clip at 15 fps of each "
                        "video, resize 256×256, centre crop 224", f"{_TV}:172-177 (KINETICS400_V1 _metrics)"),
    sources={
        "file": f"{_TV}:156",
        "mean/std, [0, 1] RGB, bilinear resize without antialias, centre crop":
            "torchvision 0.29.1 transforms/_presets.py:92-94, 115-118 (VideoClassification)",
        "resize 256×256, crop 224": f"{_TV}:157-161",
        "128 frames at 15 fps, 1 clip per video, clip-level": f"{_TV}:167-170 (_docs); "
            f"{_REFS}/README.md@5b13205 (S3D: --clip-len 128 --clips-per-video 1, val resize 256 256, "
            "crop 224)",
        "1 clip = the video's first clip (UniformClipSampler: linspace(first, last, steps=1) = first; videos "
        "shorter than the clip are skipped, vidrec loops them)": "torchvision 0.29.1 datasets/samplers/"
            f"clip_sampler.py:123-136; {_REFS}/train.py@1337569 (test_sampler, frame_rate 15)",
        "training: 64-frame clips, 5 per video, fixed 256×256 resize, random 224 crop":
            f"{_REFS}/README.md@5b13205 (S3D)",
        "parameters 8,320,048": f"{_TV}:171",
    }))

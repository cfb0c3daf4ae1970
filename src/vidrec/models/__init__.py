"""Model zoo: ``build_model(name, num_classes)`` for every registered video network.

>>> from vidrec.models import build_model, list_models, load_pretrained, model_info
"""

from __future__ import annotations

# Importing the family modules registers their models.
from vidrec.models import (  # noqa: F401
    csn,
    i3d,
    inception_i3d,
    mvit,
    resnet3d,
    s3d,
    slowfast,
    swin3d,
    timesformer,
    tsm,
    video_resnet,
    videomae,
    x3d,
)
from vidrec.models.registry import ModelInfo, build_model, list_models, model_info, register_model
from vidrec.models.weights import LoadReport, load_pretrained

__all__ = [
    "LoadReport",
    "ModelInfo",
    "build_model",
    "list_models",
    "load_pretrained",
    "model_info",
    "register_model",
]

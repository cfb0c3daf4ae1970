"""Fine-tuning helpers: replace the classifier, freeze parts of a model, split parameters for a head LR.

Every vidrec model keeps its classifier in the ``nn.Linear`` attribute ``fc`` (Inception-I3D's 1x1x1
logits conv included, see :mod:`vidrec.models.inception_i3d`). Stages, for ``freeze("until_layerN")``:
stem (0), layer1..layer4 (1-4), head ``fc`` (5). Non-local blocks belong to the layer they follow.
Inception-I3D's stages are matched by output stride: Conv3d_1a (stem), Conv3d_2b/2c (1), Mixed_3x (2),
Mixed_4x (3), Mixed_5x (4).

Frozen BatchNorm layers stay in eval mode (running statistics fixed) even after ``model.train()``:
:func:`freeze` installs a pre-forward hook that does it; :func:`keep_frozen_bn_eval` does the same
explicitly (call it after ``model.train()`` if you prefer not to rely on the hook).
"""

from __future__ import annotations

import re

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from vidrec.errors import ConfigError

HEAD_STAGE = 5
_INCEPTION_STAGES = {"Conv3d_1a_7x7": 0, "Conv3d_2b_1x1": 1, "Conv3d_2c_3x3": 1, "Mixed_3": 2, "Mixed_4": 3,
                     "Mixed_5": 4}
_LAYER = re.compile(r"(?:nonlocal_blocks\.)?layer(\d)")
FREEZE_MODES = ("none", "bn", "backbone", "until_layer1", "until_layer2", "until_layer3", "until_layer4")


def get_head(model: nn.Module) -> nn.Linear:
    """The classifier ``fc`` of a vidrec model."""
    head = getattr(model, "fc", None)
    if not isinstance(head, nn.Linear):
        raise ConfigError(f"{type(model).__name__} has no nn.Linear classifier 'fc'")
    return head


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Give ``model`` a fresh classifier for ``num_classes`` (N(0, 0.01) weights, zero bias); returns it."""
    old = get_head(model)
    model.fc = nn.Linear(old.in_features, num_classes, device=old.weight.device, dtype=old.weight.dtype)
    nn.init.normal_(model.fc.weight, std=0.01)
    nn.init.zeros_(model.fc.bias)
    return model


def stage_of(name: str, model: nn.Module | None = None) -> int:
    """Stage index of a parameter or module name: 0 stem, 1-4 layer1-4, 5 head.

    A network whose parts are not named ``layer1..4`` says itself: its method ``stage_of(name) -> 0..4`` (the
    head is always ``fc``, stage 5).
    """
    if name == "fc" or name.startswith("fc."):
        return HEAD_STAGE
    own = getattr(model, "stage_of", None)
    if own is not None:
        return int(own(name))
    match = _LAYER.match(name)
    if match:
        return int(match[1])
    top = name.split(".", 1)[0]
    return next((s for prefix, s in _INCEPTION_STAGES.items() if top.startswith(prefix)), 0)


def _frozen_bn_pre_hook(module: nn.Module, args: tuple) -> None:
    if getattr(module, "vidrec_frozen", False):
        module.training = False


def freeze(model: nn.Module, mode: str = "none") -> nn.Module:
    """Freeze parameters for fine-tuning; returns ``model``.

    Modes: ``none`` (all trainable), ``bn`` (BatchNorm affine parameters and statistics fixed),
    ``backbone`` (everything but ``fc``), ``until_layerN`` (stem and layer1..layerN, N = 1..4).
    Frozen BatchNorm layers are kept in eval mode.
    """
    if mode not in FREEZE_MODES:
        raise ConfigError(f"unknown freeze mode {mode!r}; choose one of {', '.join(FREEZE_MODES)}")
    if mode.startswith("until_layer"):
        last = int(mode[-1])
    else:
        last = {"none": -1, "bn": -1, "backbone": HEAD_STAGE - 1}[mode]
    for name, param in model.named_parameters():
        param.requires_grad_(stage_of(name, model) > last)
    for name, module in model.named_modules():
        if not isinstance(module, _BatchNorm):
            continue
        frozen = mode == "bn" or stage_of(name, model) <= last
        if not hasattr(module, "vidrec_frozen"):
            module.register_forward_pre_hook(_frozen_bn_pre_hook)
        module.vidrec_frozen = frozen
        for param in module.parameters():
            param.requires_grad_(not frozen)
    keep_frozen_bn_eval(model)
    return model


def keep_frozen_bn_eval(model: nn.Module) -> nn.Module:
    """Put the BatchNorm layers frozen by :func:`freeze` back in eval mode (e.g. after ``model.train()``)."""
    for module in model.modules():
        if isinstance(module, _BatchNorm) and getattr(module, "vidrec_frozen", False):
            module.eval()
    return model


def head_parameters(model: nn.Module, trainable_only: bool = False) -> list[nn.Parameter]:
    """Parameters of the classifier ``fc`` (for a separate learning rate)."""
    return [p for p in get_head(model).parameters() if p.requires_grad or not trainable_only]


def backbone_parameters(model: nn.Module, trainable_only: bool = False) -> list[nn.Parameter]:
    """Every parameter outside the classifier ``fc``."""
    head = {id(p) for p in get_head(model).parameters()}
    return [p for p in model.parameters() if id(p) not in head and (p.requires_grad or not trainable_only)]

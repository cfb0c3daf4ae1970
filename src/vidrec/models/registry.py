"""Model registry: ``register_model`` / ``build_model`` / ``list_models`` / ``model_info``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from vidrec.errors import ConfigError

# Per-channel statistics for inputs scaled to [0, 1].
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)  # torchvision video models, VMZ (110.201/255 ...)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KENSHOHARA_MEAN = (0.4345, 0.4051, 0.3775)  # 3D-ResNets-PyTorch (2020) get_mean_std('kinetics')
KENSHOHARA_STD = (0.2768, 0.2713, 0.2737)
SYMMETRIC_MEAN = (0.5, 0.5, 0.5)  # DeepMind I3D: inputs rescaled to [-1, 1]
SYMMETRIC_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class ModelInfo:
    """What a model expects: default clip (frames, crop size), input normalisation, provenance."""

    name: str
    default_frames: int
    default_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    family: str
    reference: str


_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
_INFOS: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    *,
    family: str,
    reference: str,
    frames: int = 16,
    size: int = 112,
    mean: tuple[float, float, float] = KINETICS_MEAN,
    std: tuple[float, float, float] = KINETICS_STD,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering ``builder(num_classes, **kwargs) -> nn.Module`` under ``name``."""

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _BUILDERS:
            raise ConfigError(f"model {name!r} is registered twice")
        _BUILDERS[name] = builder
        _INFOS[name] = ModelInfo(name, frames, size, tuple(mean), tuple(std), family, reference)
        return builder

    return decorator


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    return sorted(_BUILDERS)


def _check_name(name: str) -> None:
    if name not in _BUILDERS:
        raise ConfigError(f"unknown model {name!r}; available models: {', '.join(list_models())}")


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered model."""
    _check_name(name)
    return _INFOS[name]


def build_model(name: str, num_classes: int | None = None, **kwargs: object) -> nn.Module:
    """Build a registered model: float input (B, 3, T, H, W) -> logits (B, num_classes).

    ``name`` is a registry name (``x3d_m``) or a released checkpoint's entry (``x3d_m.pyslowfast_kinetics400``,
    ``python -m vidrec.weights list``): the network that entry's file needs — its class count (the default of
    ``num_classes``) and architecture arguments (``WeightsEntry.arch``; ``kwargs`` still win). Every model accepts
    ``dropout`` (probability before the classifier ``fc``); unknown keyword arguments raise :class:`ConfigError`
    naming the accepted ones.
    """
    if "." in name:
        from vidrec.models.weights.entries import get_weights

        entry = get_weights(name)
        name, kwargs = entry.model, {**entry.arch, **kwargs}
        num_classes = entry.fc_classes if num_classes is None else num_classes
    _check_name(name)
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r} (model {name!r})")
    builder = _BUILDERS[name]
    accepted = [p for p in inspect.signature(builder).parameters if p != "num_classes"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ConfigError(
            f"model {name!r} got unknown argument(s) {unknown}; accepted: {', '.join(accepted)}"
        )
    try:
        model = builder(num_classes=num_classes, **kwargs)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"model {name!r}: invalid argument(s) {kwargs}: {err}") from err
    model.vidrec_name = name  # which registry entry built it (load_pretrained matches released weights by it)
    return model

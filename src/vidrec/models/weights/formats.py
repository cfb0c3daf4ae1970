"""Release layouts and the converters that read them into each model family.

A *format* is how a released file is laid out (a Caffe2 blob pickle, PySlowFast's ``.pyth``, mmaction2's ``.pth``,
...); one layout can hold networks of several families. Each format has one detector (on the raw object read from
the file); each (format, family) pair has one converter, registered by the family's weights module
(``vidrec/models/weights/<family>.py``). A converter registered with ``family=None`` serves every family that has
none of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidrec.errors import CheckpointError

Detector = Callable[[Any], bool]
Converter = Callable[[Any, nn.Module, "str | Path"], dict[str, torch.Tensor]]

#: format name -> detector, in detection order (the catch-all ``state_dict`` is always tried last)
DETECTORS: dict[str, Detector] = {}
_CONVERTERS: dict[tuple[str, str | None], Converter] = {}
FALLBACK = "state_dict"


def register_format(name: str, detect: Detector) -> None:
    """Add a layout; detection tries layouts in registration order, :data:`FALLBACK` last."""
    if name in DETECTORS:
        raise ValueError(f"format {name!r} is registered twice")
    DETECTORS[name] = detect


def register_converter(fmt: str, family: str | None, convert: Converter) -> None:
    """The converter of ``fmt`` files into networks of ``family`` (``None``: any family without its own)."""
    if (fmt, family) in _CONVERTERS:
        raise ValueError(f"a converter of {fmt!r} into {family!r} is registered twice")
    _CONVERTERS[(fmt, family)] = convert


def formats() -> list[str]:
    """Every format name, in detection order."""
    return [name for name in DETECTORS if name != FALLBACK] + [FALLBACK]


def detect_format(obj: Any) -> str:
    """Name of the first format whose detector accepts the raw checkpoint object."""
    return next(name for name in formats() if DETECTORS[name](obj))


def families_of(fmt: str) -> list[str]:
    """The families with a converter of their own for ``fmt``."""
    return sorted(family for f, family in _CONVERTERS if f == fmt and family is not None)


def converter(fmt: str, family: str | None, path: str | Path) -> Converter:
    """The converter of ``fmt`` for ``family``: the family's own, else the generic one; a clear error else."""
    found = _CONVERTERS.get((fmt, family)) or _CONVERTERS.get((fmt, None))
    if found is None:
        readers = families_of(fmt)
        raise CheckpointError(f"{path}: a {fmt} file cannot be read into a {family or 'this'} network; {fmt} files "
                              f"hold {', '.join(readers) or 'other'} networks — build the model the file was "
                              "released for (python -m vidrec.weights list)")
    return found

"""How the configs compose: the schemas registered with Hydra's ConfigStore before any config is composed
(``dataset_schema`` and ``data_schema`` from :mod:`vidrec.data.spec`, and ``model_schema``, the arguments of the
LightningModule every ``configs/model/*.yaml`` instantiates), so a misspelt key fails at composition with its
name; and the experiment a bare ``python train.py`` runs."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidrec.data.spec import DataConfig, DatasetConfig
from vidrec.errors import ConfigError


@dataclass
class MixupConfig:
    """``model.mixup``: batch-level mixup / cutmix with soft targets (vidrec.mixup.Mixup; defaults PySlowFast's)."""

    enabled: bool = False
    alpha: float = 0.8
    cutmix_alpha: float = 1.0
    prob: float = 1.0
    switch_prob: float = 0.5
    label_smoothing: float = 0.1


@dataclass
class ModuleConfig:
    """Schema of ``model``: :class:`vidrec.module.VideoClassifier` and its network ``net`` (instantiated first)."""

    _target_: str = "vidrec.module.VideoClassifier"
    net: Any = None  # the network: vidrec.models.build_model(name, num_classes, dropout, ...)
    depth: Any = None  # the depth net.name is built from (an int, or tiny); recorded, not used by the module
    variant: Any = None  # the variant net.name is built from (x3d: xs | s | m | l ...); recorded, not used
    pretrained: str | None = None  # a released checkpoint or exported weights to start from
    freeze: str = "none"  # none | bn | backbone | until_layer1..4
    head_lr_mult: float = 1.0  # learning-rate multiplier of the classifier
    label_smoothing: float = 0.0
    channels_last: bool = False  # channels_last_3d weights and clips (GPU + mixed precision)
    compile: Any = False  # true, or torch.compile arguments ({mode: max-autotune}); checkpoints keep plain keys
    mixup: MixupConfig = field(default_factory=MixupConfig)
    layer_decay: float = 1.0  # layer-wise lr decay (VideoMAE fine-tuning: 0.75); models name their layers (vidrec.optim)
    no_weight_decay: bool = False  # true: no weight decay on 1-D parameters, biases, position/class embeddings


_registered = False


def register_configs() -> None:
    """Register every schema once (the entry points and the data check call it before composing), and the
    ``vidrec.cwd`` resolver: the directory a command was started from, which ``paths.root_dir`` defaults to.
    (Hydra's own ``${hydra:runtime.cwd}`` cannot serve: a multirun resolves ``hydra.sweep.dir`` before Hydra's
    config exists.)"""
    global _registered
    if _registered:
        return
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("vidrec.cwd", os.getcwd, replace=True)

    store = ConfigStore.instance()
    # outside any group (``- /model_schema@_here_`` in each model config), so that --help offers them neither
    # as a group nor as a model or a dataset
    store.store(name="dataset_schema", node=DatasetConfig)
    store.store(name="model_schema", node=ModuleConfig)
    store.store(name="data_schema", node=DataConfig, package="data")
    _registered = True


#: The recipe a bare ``python train.py`` runs: the synthetic dataset's quick CPU recipe.
DEFAULT_EXPERIMENT = "synthetic"


def with_default_experiment(overrides: Sequence[str]) -> list[str]:
    """``overrides`` plus ``experiment=synthetic`` when they choose neither an experiment nor a dataset other than
    the synthetic one (the default): ``python train.py`` and ``python train.py model=r3d`` run the synthetic
    recipe, ``python train.py model=r2plus1d dataset=kinetics`` the group defaults alone."""
    keys = {o.split("=", 1)[0].lstrip("+~") for o in overrides if "=" in o and not o.startswith("-")}
    dataset = next((o.split("=", 1)[1] for o in overrides if o.lstrip("+").startswith("dataset=")), DEFAULT_EXPERIMENT)
    if "experiment" in keys or dataset != DEFAULT_EXPERIMENT:
        return list(overrides)
    return insert_override(overrides, f"experiment={DEFAULT_EXPERIMENT}")


def insert_override(args: Sequence[str], override: str) -> list[str]:
    """``args`` with ``override`` before their first override (argparse takes no option between two overrides:
    ``-m a=1``, ``a=1 --cfg job`` and ``--cfg job`` all stay valid)."""
    args = list(args)
    first = next((i for i, o in enumerate(args) if "=" in o and not o.startswith("-")), len(args))
    return [*args[:first], override, *args[first:]]


def config_dir(given: str | os.PathLike | None = None) -> Path:
    """The ``configs/`` folder train.py uses: ``given``, else ``$VIDREC_CONFIG_DIR``, else ``./configs`` (a checkout,
    where train.py runs from), else the one beside an editable install's source tree."""
    candidates = [given, os.environ.get("VIDREC_CONFIG_DIR"), Path.cwd() / "configs",
                  Path(__file__).resolve().parents[2] / "configs"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "train.yaml").is_file():
            return Path(candidate).resolve()
    raise ConfigError("configs/train.yaml not found: run from your vidrec checkout (the folder holding train.py), "
                      "or set VIDREC_CONFIG_DIR=<checkout>/configs (the data check: --config-dir)")


def model_overrides(net_name: str, configs: str | os.PathLike | None = None) -> str:
    """The command-line choice that builds a registry network: ``r2plus1d_18`` → ``model=r2plus1d model.depth=18``
    (read from the ``net.name`` of each ``configs/model/*.yaml``); ``model=<group>`` when none does."""
    for path in sorted((config_dir(configs) / "model").glob("*.yaml")):
        text = path.read_text()
        name = re.search(r"^  name: (\S+)$", text, re.M)
        if not name:
            continue
        pattern = (re.escape(name[1]).replace(re.escape("${model.depth}"), r"(?P<depth>[0-9]+|tiny)")
                   .replace(re.escape("${model.variant}"), r"(?P<variant>[0-9a-z_]+)") + "$")
        match = re.match(pattern, net_name)
        if match:
            extra = ""
            for key, value in match.groupdict().items():
                default = re.search(rf"^{key}: (\S+)$", text, re.M)
                if value and (not default or default[1] != value):
                    extra += f" model.{key}={value}"
            return f"model={path.stem}{extra}"
    return "model=<group>"


#: Keys whose values are paths: a value Hydra's override grammar cannot take bare (parentheses, brackets,
#: commas, spaces, quotes, non-ASCII letters — nine Kinetics labels have parentheses) is quoted for the user.
PATH_KEYS = ("video", "videos", "ckpt_path", "labels", "output", "model.pretrained", "data.exclude", "data.coverage",
             "dataset.root", "dataset.annotation_path", "dataset.data_dir", "hydra.run.dir", "hydra.sweep.dir")
_BARE = re.compile(r"^[\w\-+/.\\:@%^&*~]*$", re.ASCII)


def quote_paths(overrides: Sequence[str]) -> list[str]:
    """``video=/data/juggling (soccer)/v.mp4`` → ``video='/data/juggling (soccer)/v.mp4'`` for :data:`PATH_KEYS`
    (and ``paths.*``, ``dataset.dirs.*``): the value reaches vidrec as typed."""
    out = []
    for override in overrides:
        key, sep, value = override.partition("=")
        bare_key = key.lstrip("+~")
        is_path = bare_key in PATH_KEYS or bare_key.startswith(("paths.", "dataset.dirs."))
        if sep and is_path and value and value[0] not in "'\"" and not _BARE.match(value):
            value = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        out.append(f"{key}{sep}{value}")
    return out


def command_line(argv: Sequence[str], default_experiment: bool = False) -> list[str]:
    """An entry point's arguments as Hydra should read them: path values quoted (:func:`quote_paths`), and for
    train.py the default experiment (:func:`with_default_experiment`)."""
    args = quote_paths(argv)
    return with_default_experiment(args) if default_experiment else args


def check_arguments(node: Any, group: str) -> None:
    """A ``_target_`` node's keys must be arguments of its target (``optimizer.lrr`` of AdamW is refused at
    start-up, with the closest valid names, instead of a TypeError when the optimizer is built)."""
    import difflib
    import inspect

    from hydra.utils import get_method

    keys = [k for k in (node or {}) if not str(k).startswith("_")]
    if not keys or not (node or {}).get("_target_"):
        return
    target = get_method(str(node["_target_"]))
    params = inspect.signature(target).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    valid = [name for name in params if name not in ("self", "params", "optimizer")]
    unknown = [k for k in keys if k not in params]
    if unknown:
        hints = [f"{group}.{k}" + (f" (did you mean {' or '.join(f'{group}.{c}' for c in close)}?)"
                                   if (close := difflib.get_close_matches(k, valid, n=3, cutoff=0.5)) else "")
                 for k in unknown]
        raise ConfigError(f"unknown key {', '.join(hints)}: {node['_target_']} takes {', '.join(valid)}")


def unknown_override(config_name: str, overrides: Sequence[str], configs: str | os.PathLike | None = None) -> str | None:
    """The message for a command-line key the composed config lacks (``optimizer.lrr=0.1``), naming the closest
    valid keys; None when the overrides compose (sweep values are checked by their first choice)."""
    import difflib

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import ConfigCompositionException
    from omegaconf import OmegaConf

    def first_choice(override: str) -> str:
        key, sep, value = override.partition("=")
        if sep and "," in value and not value.strip().startswith(("[", "{", "'", '"')):
            value = value.split(",", 1)[0]
        return f"{key}{sep}{value}"

    plain = [first_choice(o) for o in overrides if "=" in o and not o.startswith("-") and not o.startswith("hydra")]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(config_dir(configs)), version_base="1.3"):
            try:
                compose(config_name, overrides=plain)
                return None
            except ConfigCompositionException as exc:
                text = str(exc)
                bad = next((o for o in plain if f"'{o.split('=', 1)[0].lstrip('+~')}'" in text), None)
                if bad is None or not re.search(r"not in struct|Key .* not in", f"{text} {exc.__cause__}"):
                    return None
                key = bad.split("=", 1)[0].lstrip("+~")
                parent, _, leaf = key.rpartition(".")
                cfg = compose(config_name, overrides=[o for o in plain if o != bad])
                node = OmegaConf.select(cfg, parent) if parent else cfg
                valid = [str(k) for k in node] if hasattr(node, "keys") else []
                close = difflib.get_close_matches(leaf, valid, n=3, cutoff=0.5)
                where = f"{parent}." if parent else ""
                if close:
                    hint = f"did you mean {' or '.join(where + c for c in close)}?"
                elif valid:
                    hint = f"the keys of {parent or 'the config'}: {', '.join(valid)}"
                else:
                    hint = f"there is no {parent} here; choose its group first, e.g. {parent}=<name>"
                return f"unknown key {key} ({hint}); python {config_name}.py --cfg job lists every key"
    except Exception:  # the check itself cannot run: Hydra's own handling follows
        return None
    finally:
        GlobalHydra.instance().clear()

"""Released SlowFast / SlowOnly weights: the converters of their four release layouts and the registry entries.

- ``pyslowfast`` (``{'epoch', 'model_state', 'optimizer_state', 'cfg'}``: ``s1.pathway0_stem.conv.weight``,
  ``s2.pathway1_res0.branch2.a_bn.running_var``, ``s1_fuse.conv_f2s.weight``, ``head.projection.weight``),
  ``pytorchvideo`` (``{'model_state'}``: ``blocks.1.multipathway_blocks.0.res_blocks.0.branch2.conv_a.weight``,
  ``blocks.0.multipathway_fusion.conv_fast_to_slow.weight``, ``blocks.6.proj.weight``) and ``mmaction2``
  (``{'meta', 'state_dict'}``: ``backbone.slow_path.layer1.0.conv1.bn.weight``,
  ``backbone.slow_path.conv1_lateral.conv.weight``, ``cls_head.fc_cls.weight`` over [fast, slow] features): the
  name templates of :data:`_TEMPLATES`.
- ``detectron_caffe2``, PySlowFast's Caffe2 ``.pkl`` (blob names of slowfast/utils/c2_model_loading.py
  ``get_name_convert_func``): the slow pathway and SlowOnly as video-nonlocal-net (``conv1_w``, ``res_conv1_bn_s``,
  ``res2_0_branch2a_w``, ``pred_w``: :mod:`vidrec.models.weights.caffe2_nonlocal`), the fast pathway with a ``t_``
  prefix, laterals ``t_pool1_subsample[_bn]_*`` and ``t_res{s}_{last block}_branch2c_bn_subsample[_bn]_*``.
  PySlowFast's loader (checkpoint.py ``load_checkpoint``, ``convert_from_caffe2``) reshapes a blob with fewer dims
  than its parameter and tiles BN blobs into sub-batch-norm layers; neither happens for these networks (``pred_w``
  is already the (classes, features) matrix; :func:`vidrec.models.weights.caffe2_blobs.convert_blobs` fits a
  conv-shaped classifier the same way).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from vidrec.models.registry import IMAGENET_MEAN, IMAGENET_STD
from vidrec.models.slowfast import PYSLOWFAST_MEAN, PYSLOWFAST_STD, SlowFast
from vidrec.models.weights import caffe2_nonlocal
from vidrec.models.weights.caffe2_blobs import convert_blobs, param_blob
from vidrec.models.weights.entries import KINETICS400, Published, WeightsEntry, add_entry
from vidrec.models.weights.formats import register_converter
from vidrec.models.weights.torch_state import unwrap_state_dict

NameOf = Callable[[str], "str | None"]

_STEM = re.compile(r"(conv|bn)1\.(\w+)$")
_BLOCK = re.compile(r"layer(\d)\.(\d+)\.(?:(conv|bn)(\d)|downsample\.([01]))\.(\w+)$")
_LATERAL = re.compile(r"lateral\.(\d)\.(conv|bn)\.(\w+)$")


class Part(NamedTuple):
    """A key inside one pathway: ``key`` (e.g. ``layer2.0.bn1.weight``), ``stage`` (0 stem, 1..4 our layer1..4 =
    res2..res5), ``block``, ``branch`` ('a', 'b', 'c', '1' for the shortcut, '' in the stem), ``is_bn``, ``attr``."""

    key: str
    stage: int
    block: int
    branch: str
    is_bn: bool
    attr: str


def _part(key: str) -> Part | None:
    stem = _STEM.match(key)
    if stem:
        return Part(key, 0, 0, "", stem[1] == "bn", stem[2])
    block = _BLOCK.match(key)
    if block is None:
        return None
    if block[5] is not None:
        return Part(key, int(block[1]), int(block[2]), "1", block[5] == "1", block[6])
    return Part(key, int(block[1]), int(block[2]), "abc"[int(block[4]) - 1], block[3] == "bn", block[6])


def _namer(model: nn.Module, pathway_name: Callable[[int, Part], str | None],
           lateral_name: Callable[[int, bool, str], str], fc_name: Callable[[str], str]) -> NameOf:
    """Our key -> theirs, from namers of a pathway's keys ``(pathway 0 slow | 1 fast, part)``, of the laterals
    ``(index, is_bn, attr)`` and of the classifier ``(attr)``."""
    two_pathways = isinstance(model, SlowFast)

    def name_of(key: str) -> str | None:
        if key.startswith("fc."):
            return fc_name(key[3:])
        lateral = _LATERAL.match(key)
        if lateral:
            return lateral_name(int(lateral[1]), lateral[2] == "bn", lateral[3])
        pathway, rest = (0, key) if not two_pathways else ({"slow": 0, "fast": 1}.get(key.split(".")[0]),
                                                             key.partition(".")[2])
        part = _part(rest) if pathway is not None else None
        return None if part is None else pathway_name(pathway, part)

    return name_of


def _rename(state: Mapping[str, torch.Tensor], model: nn.Module, name_of: NameOf) -> dict[str, torch.Tensor]:
    """``state`` under our key names (via ``name_of``); tensors no key asked for keep their own names."""
    converted, used = {}, set()
    for key in model.state_dict():
        theirs = name_of(key)
        if theirs is not None and theirs in state:
            converted[key] = state[theirs]
            used.add(theirs)
    converted.update({k: v for k, v in state.items() if k not in used})
    return converted


#: The torch layouts as name templates: a pathway's prefix (two pathways / SlowOnly), its stem, shortcut and branch
#: layers, the words for conv and BN, the laterals and the classifier. Fields: p (0 slow, 1 fast), path (slow | fast),
#: s (res stage 1..5 = our stage + 1), stage (ours, 0..4), block, branch (a | b | c), k (1..3), layer (conv or BN
#: word), bn ('_bn' or ''), i (lateral index), at (mmaction2's lateral location conv1 | layer{i}), lat (conv or BN word).
_TEMPLATES: dict[str, dict[str, Any]] = {
    "pyslowfast": {  # video_model_builder.py, resnet_helper.py, stem_helper.py, head_helper.py
        "two": "s{s}.pathway{p}_", "one": "s{s}.pathway{p}_", "stem": "stem.{layer}", "shortcut": "res{block}.branch1{bn}",
        "branch": "res{block}.branch2.{branch}{bn}", "layers": ("conv", "bn"), "lateral": "s{i1}_fuse.{lat}",
        "lateral_layers": ("conv_f2s", "bn"), "fc": ("head.projection", "head.projection")},
    "pytorchvideo": {  # models/slowfast.py create_slowfast, models/resnet.py create_resnet, models/net.py
        "two": "blocks.{stage}.multipathway_blocks.{p}.", "one": "blocks.{stage}.", "stem": "{layer}",
        "shortcut": "res_blocks.{block}.branch1_{layer}", "branch": "res_blocks.{block}.branch2.{layer}_{branch}",
        "layers": ("conv", "norm"), "lateral": "blocks.{i}.multipathway_fusion.{lat}",
        "lateral_layers": ("conv_fast_to_slow", "norm"), "fc": ("blocks.6.proj", "blocks.5.proj")},
    "mmaction2": {  # backbones/resnet3d_slowfast.py, resnet3d.py (ConvModule conv/bn), heads/slowfast_head.py
        "two": "backbone.{path}_path.", "one": "backbone.", "stem": "conv1.{layer}",
        "shortcut": "layer{stage}.{block}.downsample.{layer}", "branch": "layer{stage}.{block}.conv{k}.{layer}",
        "layers": ("conv", "bn"), "lateral": "backbone.slow_path.{at}_lateral.{lat}", "lateral_layers": ("conv", "bn"),
        "fc": ("cls_head.fc_cls", "cls_head.fc_cls")},
}


def _template_names(model: nn.Module, layout: str) -> NameOf:
    """:data:`_TEMPLATES` ``layout`` as a key namer."""
    t, two_pathways = _TEMPLATES[layout], isinstance(model, SlowFast)

    def pathway(p: int, part: Part) -> str:
        kind = "stem" if part.stage == 0 else "shortcut" if part.branch == "1" else "branch"
        fields = {"p": p, "path": ("slow", "fast")[p], "s": part.stage + 1, "stage": part.stage, "block": part.block,
                  "branch": part.branch, "k": "abc".find(part.branch) + 1, "layer": t["layers"][part.is_bn],
                  "bn": "_bn" * part.is_bn}
        return (t["two" if two_pathways else "one"] + t[kind]).format(**fields) + f".{part.attr}"

    def lateral(i: int, is_bn: bool, attr: str) -> str:
        at = "conv1" if i == 0 else f"layer{i}"
        return t["lateral"].format(i=i, i1=i + 1, at=at, lat=t["lateral_layers"][is_bn]) + f".{attr}"

    return _namer(model, pathway, lateral, lambda attr: f"{t['fc'][0 if two_pathways else 1]}.{attr}")


# ------------------------------------------------------------------ PySlowFast Caffe2 .pkl (blobs)

def _caffe2_names(model: nn.Module) -> NameOf:
    """Blob names; the slow pathway (and SlowOnly) has video-nonlocal-net's names (:mod:`caffe2_nonlocal`), the fast
    pathway the same with a ``t_`` prefix."""
    if not isinstance(model, SlowFast):
        return caffe2_nonlocal.blob_name
    last_block = [len(getattr(model.fast, f"layer{s}")) - 1 for s in (1, 2, 3)]

    def pathway(p: int, part: Part) -> str | None:
        name = caffe2_nonlocal.blob_name(part.key)
        return None if name is None else ("", "t_")[p] + name

    def lateral(i: int, is_bn: bool, attr: str) -> str:
        # c2_model_loading.py: 't_pool1_subsample' -> s1_fuse, 't_res4_5_branch2c_bn_subsample' -> s4_fuse (after
        # res4's last block, 5 in ResNet-50)
        prefix = "t_pool1_subsample" if i == 0 else f"t_res{i + 1}_{last_block[i - 1]}_branch2c_bn_subsample"
        return param_blob(prefix + "_bn" * is_bn, attr, is_bn)

    return _namer(model, pathway, lateral, lambda attr: param_blob("pred", attr, False))


# ------------------------------------------------------------------ converters

def convert_pyslowfast(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """PySlowFast ``{'model_state', 'cfg', ...}`` -> our keys. PySlowFast's copies of pytorchvideo's models
    (``pysf_model_zoo``, keys ``model.blocks.*``) are read with pytorchvideo's names."""
    state = unwrap_state_dict(obj, path)  # drops a shared ``model.`` prefix
    if any(k.startswith("blocks.") for k in state):
        return _rename(state, model, _template_names(model, "pytorchvideo"))
    return _rename(state, model, _template_names(model, "pyslowfast"))


def convert_pytorchvideo(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """pytorchvideo ``{'model_state': {'blocks.*'}}`` -> our keys."""
    return _rename(unwrap_state_dict(obj, path), model, _template_names(model, "pytorchvideo"))


def convert_mmaction2(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """mmaction2 ``{'meta', 'state_dict'}`` -> our keys; its head concatenates [fast, slow] (SlowFastHead), ours
    [slow, fast]: the classifier's columns are swapped. The data preprocessor's mean/std buffers are dropped."""
    state = {k: v for k, v in unwrap_state_dict(obj, path).items() if not k.startswith("data_preprocessor.")}
    converted = _rename(state, model, _template_names(model, "mmaction2"))
    if isinstance(model, SlowFast) and "fc.weight" in converted:
        fast = model.fast.out_channels
        weight = converted["fc.weight"]
        converted["fc.weight"] = torch.cat([weight[:, fast:], weight[:, :fast]], 1)
    return converted


def convert_caffe2(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """PySlowFast Caffe2 blobs -> our keys."""
    return convert_blobs(obj, model, path, _caffe2_names(model))


register_converter("pyslowfast", "slowfast", convert_pyslowfast)
register_converter("pytorchvideo", "slowfast", convert_pytorchvideo)
register_converter("mmaction2", "slowfast", convert_mmaction2)
register_converter("detectron_caffe2", "slowfast", convert_caffe2)


# ------------------------------------------------------------------ registry entries
_PYSF = "facebookresearch/SlowFast"
_PYSF_SOURCES = {
    "mean/std 0.45 / 0.225 on [0, 1], RGB": f"{_PYSF} slowfast/config/defaults.py@287ec00:687, 693 (DATA.MEAN, "
                                            "DATA.STD), :746 (REVERSE_INPUT_CHANNEL False)",
    "30 fps (clip length in seconds = frames × rate / 30)": "defaults.py@287ec00:720 DATA.TARGET_FPS; "
                                                           "datasets/kinetics.py@198bf9d:315",
    "slow frames: linspace(0, T - 1, T // ALPHA)": "datasets/utils.py@198bf9d:96-101 (pack_pathway_output)",
    "10 clips × 3 crops": "defaults.py@287ec00:278, 282 (TEST.NUM_ENSEMBLE_VIEWS, TEST.NUM_SPATIAL_CROPS)",
    "test: short side = crop = TEST_CROP_SIZE, bilinear, 3 crops along the long side":
        "datasets/kinetics.py@198bf9d:217-233; datasets/transform.py@88bb4c9:91-95 (interpolate bilinear, "
        "align_corners False), :226-236 (uniform_crop; the centre crop starts at ceil((w - 256) / 2))",
    "clip k of K starts at delta·k/K (delta = frames − clip span), frames linspace(start, start + span − 1)":
        "datasets/decoder.py@198bf9d:59-76 (get_start_end_idx), 31-32 (temporal_sampling); vidrec's 'uniform' "
        "(k·delta/(K−1)) is the nearest selection",
    "train: short side in [256, 320], random 224 crop, flip": "defaults.py@287ec00:696, 713",
}
_FULLY_CONV = {"test head: AvgPool3d of the training pool size (T × 7 × 7, stride 1), softmax per position, mean":
               f"{_PYSF} slowfast/models/head_helper.py@281b819:254, 278, 338-343; video_model_builder.py@88bb4c9:"
               "398-415 (pool [NUM_FRAMES // ALPHA, TRAIN_CROP_SIZE // 32, TRAIN_CROP_SIZE // 32])"}
_C2 = {"Caffe2 blob names": f"{_PYSF} slowfast/utils/c2_model_loading.py@c22c7c9:16-105; utils/checkpoint.py@198bf9d"
                            ":216-279 (convert_from_caffe2)"}
_PYSF_INPUT = "RGB scaled to [0, 1], then (x - 0.45) / 0.225 on every channel"
_PYSF_TRAIN = "short side in [256, 320], random 224 crop, flip"
_PYSF_PROTOCOL = ("video-level, 10 clips × 3 crops of 256 at short side 256 (mean of softmax), {clip} fast frames at "
                  "30 fps, fully convolutional head")


def _pyslowfast_entry(name: str, fmt: str, file: str, link: str, frames: int, rate: int, acc: tuple[float, float],
                      acc_source: str, config: str, protocol: str = _PYSF_PROTOCOL, crop: int = 256,
                      head: str = "fully_conv", extra: dict[str, str] | None = None) -> None:
    add_entry(WeightsEntry(
        name=name, format=fmt, files=(file,), where=link, url=link, classes=KINETICS400, class_list="kinetics_csv",
        mean=PYSLOWFAST_MEAN, std=PYSLOWFAST_STD, input_note=_PYSF_INPUT, frames=frames, sample_rate=rate,
        train_resize=_PYSF_TRAIN, test_resize=crop, crop_size=crop, clip_selection="uniform", num_clips=10,
        num_crops=3, head=head, fps=30.0, fps_rule="pyslowfast", test_interpolation="bilinear",
        published=Published(acc[0], acc[1], "K400 val", protocol.format(clip=f"{frames}×{rate}"), acc_source),
        sources={**_PYSF_SOURCES, **(_FULLY_CONV if head == "fully_conv" else {}), "architecture and clip": config,
                 "file and accuracy": acc_source,
                 "class order": "unverified here: PySlowFast's kinetics_classnames.json (dl.fbaipublicfiles.com) "
                                "cannot be read offline; taken as the sorted Kinetics-400 labels",
                 **(extra or {})}))


_ZOO = "https://dl.fbaipublicfiles.com/pyslowfast/model_zoo/kinetics400"
_MULTIGRID = "https://dl.fbaipublicfiles.com/pyslowfast/pyslowfast/model_zoo/multigrid/model_zoo/Kinetics"
for _model, _file, _line, _acc, _config in (
    ("slowfast_r50_4x16", "SLOWFAST_4x16_R50.pkl", 12, (75.6, 92.0), "SLOWFAST_4x16_R50.yaml@bda0053:9-21 (32 × 2, "
     "ALPHA 8, BETA_INV 8, FUSION_CONV_CHANNEL_RATIO 2, FUSION_KERNEL_SZ 5, TEST_CROP_SIZE 256)"),
    ("slowfast_r50_8x8", "SLOWFAST_8x8_R50.pkl", 13, (77.0, 92.6), "SLOWFAST_8x8_R50.yaml@bda0053:9-21 (32 × 2, "
     "ALPHA 4, BETA_INV 8, FUSION_CONV_CHANNEL_RATIO 2, FUSION_KERNEL_SZ 7, TEST_CROP_SIZE 256)"),
    ("slow_r50_8x8", "SLOWONLY_8x8_R50.pkl", 11, (74.8, 91.6), "SLOW_8x8_R50.yaml@bda0053:9-16, 43 (8 × 8, ARCH slow, "
     "TEST_CROP_SIZE 256)"),
):
    _fast = 32 if _model.startswith("slowfast") else 8
    _pyslowfast_entry(f"{_model}.pyslowfast_kinetics400", "detectron_caffe2", _file, f"{_ZOO}/{_file}", _fast,
                      2 if _fast == 32 else 8, _acc, f"{_PYSF} MODEL_ZOO.md@64f8d7e:{_line} (Kinetics 400, 3 x 10)",
                      f"{_PYSF} configs/Kinetics/c2/{_config}; CHECKPOINT_TYPE caffe2 (:9)", extra=_C2)
_TORCH_PKL = {"format: a PySlowFast PyTorch checkpoint despite the .pkl name": f"{_PYSF} utils/checkpoint.py@198bf9d:"
              "133-138 ({'epoch', 'model_state', 'optimizer_state', 'cfg'}); trained by PySlowFast with "
              "TRAIN.CHECKPOINT_TYPE's default 'pytorch' (defaults.py@287ec00:159): inferred, the file was not opened"}
_pyslowfast_entry("slowfast_r50_8x8.pyslowfast_stepwise_kinetics400", "pyslowfast", "SLOWFAST_8x8_R50_stepwise.pkl",
                  f"{_MULTIGRID}/SLOWFAST_8x8_R50_stepwise.pkl", 32, 2, (76.8, 92.7),
                  f"{_PYSF} MODEL_ZOO.md@64f8d7e:47 (Multigrid Training, Kinetics, Standard)",
                  f"{_PYSF} configs/Kinetics/SLOWFAST_8x8_R50_stepwise.yaml@bda0053:9-19 (32 × 2, ALPHA 4, "
                  "FUSION_KERNEL_SZ 7, TEST_CROP_SIZE 256)", extra=_TORCH_PKL)
_pyslowfast_entry("slowfast_r50_8x8.pyslowfast_multigrid_kinetics400", "pyslowfast",
                  "SLOWFAST_8x8_R50_stepwise_multigrid.pkl", f"{_MULTIGRID}/SLOWFAST_8x8_R50_stepwise_multigrid.pkl",
                  32, 2, (76.6, 92.7), f"{_PYSF} MODEL_ZOO.md@64f8d7e:48 (Multigrid Training, Kinetics, Multigrid)",
                  f"{_PYSF} configs/Kinetics/SLOWFAST_8x8_R50_stepwise_multigrid.yaml@bda0053:1-3 (MULTIGRID "
                  "SHORT_CYCLE), 12-22 (32 × 2, ALPHA 4, FUSION_KERNEL_SZ 7), 16 (TEST_CROP_SIZE 224)",
                  protocol="video-level, 10 clips × 3 crops of 224 at short side 224 (mean of softmax), {clip} fast "
                           "frames at 30 fps, global average pool + fc", crop=224, head="fc",
                  extra={**_TORCH_PKL, "head: global average pool (SHORT_CYCLE: pool size None)":
                         f"{_PYSF} slowfast/models/video_model_builder.py@88bb4c9:398-401; head_helper.py@281b819:252"})

# ------------------------------------------------------------------ pytorchvideo model zoo (tested with PySlowFast)
_PTV = "facebookresearch/pytorchvideo"
_PTV_PROTOCOL = {
    "test (PySlowFast ptvkinetics): 10 clips of frames × rate / 30 s, short side 256, 3 crops of 256":
        f"{_PYSF} projects/pytorchvideo/README.md@279350f (the same table, configs Kinetics/pytorchvideo/*); "
        "configs/Kinetics/pytorchvideo/SLOWFAST_8x8_R50.yaml@298cd16:8-14, 55-59; datasets/ptv_datasets.py@198bf9d:"
        "163, 211-236 (UniformTemporalSubsample, ShortSideScale(TRAIN_JITTER_SCALES[0]), UniformCropVideo(256), "
        "constant_clips_per_video)",
    "test head: softmax per position, mean": f"{_PYSF} slowfast/models/ptv_model_builder.py@198bf9d:390-399 "
                                            "(PTVSlowFast), 198-208 (PTVResNet); head pool TRAIN_CROP_SIZE // 32",
    "PySlowFast's copies (pysf_model_zoo/kinetics/<same name>, keys under model.)": f"{_PYSF} projects/pytorchvideo/"
        "README.md@279350f (Notes); read by the same converter (the model. prefix is dropped)",
}
for _model, _file, _line, _acc, _arch in (
    ("slowfast_r50_4x16", "SLOWFAST_4x16_R50.pyth", 16, (75.34, 91.89),
     f"{_PYSF} configs/Kinetics/pytorchvideo/SLOWFAST_4x16_R50.yaml@298cd16:17-21 (ALPHA 8, FUSION_KERNEL_SZ 5)"),
    ("slowfast_r50_8x8", "SLOWFAST_8x8_R50.pyth", 17, (76.94, 92.69),
     f"{_PTV} pytorchvideo/models/hub/slowfast.py@9a220b6 slowfast_r50 (fusion kernel 7), checkpoint_paths"),
    ("slowfast_r101_8x8", "SLOWFAST_8x8_R101.pyth", 18, (77.90, 93.27),
     f"{_PTV} pytorchvideo/models/hub/slowfast.py@9a220b6 slowfast_r101 (fusion kernel 5), checkpoint_paths"),
    ("slow_r50_8x8", "SLOW_8x8_R50.pyth", 15, (74.58, 91.63),
     f"{_PTV} pytorchvideo/models/hub/resnet.py@9a220b6 slow_r50 (stem 1×7×7, head pool 8×7×7), checkpoint_paths"),
):
    _fast = 32 if _model.startswith("slowfast") else 8
    _pyslowfast_entry(f"{_model}.pytorchvideo_kinetics400", "pytorchvideo", _file,
                      f"https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/{_file}", _fast,
                      2 if _fast == 32 else 8, _acc, f"{_PTV} docs/source/model_zoo.md@9d0ca90:{_line} (Kinetics-400)",
                      _arch, extra=_PTV_PROTOCOL)

# ------------------------------------------------------------------ mmaction2 re-trainings
_MMA = "open-mmlab/mmaction2"
_MMA_URL = "https://download.openmmlab.com/mmaction/v1.0/recognition"
_MMA_SOURCES = {
    "mean/std (0-255: 123.675, 116.28, 103.53 / 58.395, 57.12, 57.375), RGB": f"{_MMA} configs/_base_/models/"
        "slowfast_r50.py@b75ca202:38-42, slowonly_r50.py@b75ca202:20-24 (ActionDataPreprocessor)",
    "frame-based clips: SampleFrames without target_fps": f"{_MMA} configs/recognition/slowfast/slowfast_r50_8xb8-4x16x1"
        "-256e_kinetics400-rgb.py@465d7deb:38-51",
    "10 clips starting at round(k·(n − frames·rate)/9)": f"{_MMA} mmaction/datasets/transforms/loading.py@96d20d38:"
        "296-313 (_get_test_clips; its span is frames·rate, vidrec's (frames−1)·rate+1)",
    "test: short side 256, bilinear, 3 crops of 256 (ThreeCrop)": "slowfast_r50_8xb8-4x16x1-256e_kinetics400-rgb.py@"
        "465d7deb:47-48",
    "train: short side 256, RandomResizedCrop, 224×224, flip": "slowfast_r50_8xb8-4x16x1-256e_kinetics400-rgb.py@"
        "465d7deb:15-20",
    "head: global average pool, fc, mean of softmax over views": f"{_MMA} mmaction/models/heads/slowfast_head.py@"
        "5e1b176e:50, 68-81 (features [fast, slow]); configs/_base_/models/slowfast_r50.py@b75ca202:37 "
        "(average_clips 'prob')",
    "class order": f"{_MMA} tools/data/kinetics/label_map_k400.txt@430b0b66 (the 400 labels, sorted)",
}
_MMA_SLOWFAST = {"architecture: slow frames x[:, :, ::alpha]; laterals without BN and ReLU unless lateral_norm":
                 f"{_MMA} mmaction/models/backbones/resnet3d_slowfast.py@acb79e41:476-487 (interpolate nearest, scale "
                 "1/resample_rate), 105, 143, 174 (lateral_norm default False: norm_cfg and act_cfg None)"}
_MMA_INPUT = "RGB 0-255, (x - mean) / std with ImageNet statistics (123.675, 116.28, 103.53 / 58.395, 57.12, 57.375)"


def _mmaction2_entry(name: str, config: str, file: str, frames: int, rate: int, acc: tuple[float, float],
                     acc_source: str, arch: dict[str, Any], arch_source: str) -> None:
    link = f"{_MMA_URL}/{config.split('_', 1)[0]}/{config}/{file}"
    add_entry(WeightsEntry(
        name=name, format="mmaction2", files=(file,), where=link, url=link, classes=KINETICS400,
        class_list="kinetics_csv", mean=IMAGENET_MEAN, std=IMAGENET_STD, input_note=_MMA_INPUT, frames=frames,
        sample_rate=rate, train_resize="short side 256, RandomResizedCrop, resize to 224×224, flip", test_resize=256,
        crop_size=256, clip_selection="uniform", num_clips=10, num_crops=3, head="fc", fps=None, fps_rule=None,
        arch=arch, test_interpolation="bilinear",
        published=Published(acc[0], acc[1], "K400 val (19,796 videos)", f"video-level, 10 clips × 3 crops of 256 at "
                            f"short side 256 (mean of softmax), {frames}×{rate} frames", acc_source),
        sources={**_MMA_SOURCES, **(_MMA_SLOWFAST if name.startswith("slowfast") else {}),
                 "config": f"{_MMA} configs/recognition/{config.split('_', 1)[0]}/{config}.py",
                 "architecture": arch_source, "file and accuracy": acc_source}))


_MMA_ARCH = {"lateral_norm": False, "slow_sampling": "stride"}
_SF_README = f"{_MMA} configs/recognition/slowfast/README.md@6cc912ba"
_SO_README = f"{_MMA} configs/recognition/slowonly/README.md@9dc33d98"
for _name, _config, _stamp, _acc, _arch, _line, _why in (
    ("slowfast_r50_4x16.mmaction2_kinetics400", "slowfast_r50_8xb8-4x16x1-256e_kinetics400-rgb", "20220901-701b0f6f",
     (75.55, 92.35), _MMA_ARCH, 25, "_base_/models/slowfast_r50.py@b75ca202:7-9 (resample_rate 8, speed_ratio 8); "
     "mmaction/models/backbones/resnet3d_slowfast.py@acb79e41:108 (fusion_kernel 5)"),
    ("slowfast_r50_8x8.mmaction2_kinetics400", "slowfast_r50_8xb8-8x8x1-256e_kinetics400-rgb", "20220818-1cb6dfc8",
     (76.80, 92.99), _MMA_ARCH, 26, "recognition/slowfast/slowfast_r50_8xb8-8x8x1-256e_kinetics400-rgb.py@c5166fb3:3-8 (resample_rate 4, "
     "speed_ratio 4, fusion_kernel 7)"),
    ("slowfast_r50_8x8.mmaction2_steplr_kinetics400", "slowfast_r50_8xb8-8x8x1-steplr-256e_kinetics400-rgb",
     "20220818-b62a501f", (76.65, 92.86), {"slow_sampling": "stride"}, 27, "recognition/slowfast/slowfast_r50_8xb8-"
     "8x8x1-steplr-256e_kinetics400-rgb.py@c5166fb3:1-3 (the 8x8 config with lateral_norm True: BN and ReLU)"),
    ("slowfast_r101_8x8.mmaction2_kinetics400", "slowfast_r101_8xb8-8x8x1-256e_kinetics400-rgb", "20220818-9c0e09bd",
     (78.65, 93.88), {**_MMA_ARCH, "fusion_kernel": 7}, 28, "recognition/slowfast/slowfast_r101_8xb8-8x8x1-256e_"
     "kinetics400-rgb.py@c5166fb3:1-4 (depth 101 on the 8x8 config: fusion_kernel 7)"),
):
    _mmaction2_entry(_name, _config, f"{_config}_{_stamp}.pth", 32, 2, _acc, f"{_SF_README}:{_line}", _arch,
                     f"{_MMA} configs/{_why}")
for _name, _config, _stamp, _acc, _line in (
    ("slow_r50_8x8.mmaction2_kinetics400", "slowonly_r50_8xb16-8x8x1-256e_kinetics400-rgb", "20220901-2132fc87",
     (75.15, 92.11), 26),
    ("slow_r50_8x8.mmaction2_in1k_kinetics400", "slowonly_imagenet-pretrained-r50_8xb16-8x8x1-steplr-150e_kinetics400-"
     "rgb", "20220901-df42dc84", (76.45, 92.55), 29),
):
    _mmaction2_entry(_name, _config, f"{_config}_{_stamp}.pth", 8, 8, _acc, f"{_SO_README}:{_line}", {},
                     f"{_MMA} configs/_base_/models/slowonly_r50.py@b75ca202:3-12 (conv1 1×7×7, inflate (0, 0, 1, 1)); "
                     "slowonly_r50_8xb16-8x8x1-256e_kinetics400-rgb.py@2b7495d9:39-52 (8 × 8, ThreeCrop 256)")

"""Released X3D weights (:mod:`vidrec.models.x3d`): the converters of each release layout and the registry entries.

=================  ===============================================================================================
layout             key names (``<ours>`` -> theirs)
=================  ===============================================================================================
``pyslowfast``     PySlowFast ``.pyth`` ``{'epoch', 'model_state', 'optimizer_state', 'cfg'}``: ``stem.conv_xy`` ->
                   ``s1.pathway0_stem.conv_xy``, ``layer<L>.<i>.conv1`` -> ``s<L+1>.pathway0_res<i>.branch2.a``,
                   ``downsample.0/1`` -> ``branch1``/``branch1_bn``, ``conv5``/``lin5``/``fc`` ->
                   ``head.conv_5``/``head.lin_5``/``head.projection``. Sub-batch-norm keys (``<bn>.bn.running_*``,
                   ``<bn>.split_bn.*``) are read as plain BatchNorm, as its checkpoint.py ``sub_to_normal_bn`` does.
                   PySlowFast's own copies of pytorchvideo's models (``PTVX3D``) are this layout with
                   pytorchvideo's names under ``model.``.
``pytorchvideo``   pytorchvideo's model zoo ``{'model_state'}``: ``blocks.0`` stem (its ``conv.conv_t`` is the
                   1x3x3 conv, ``conv.conv_xy`` the 5x1x1 one: x3d.py create_x3d_stem passes them crossed),
                   ``blocks.<L>.res_blocks.<i>.branch2.conv_a ... norm_b.1.block.0`` (SE), ``blocks.5.pool
                   .pre_conv/post_conv``, ``blocks.5.proj``.
``mmaction2``      mmaction2's port ``{'meta', 'state_dict'}``: ``backbone.conv1_s/conv1_t``,
                   ``backbone.layer<L>.<i>.conv1.conv ... se_module``, ``backbone.conv5``, ``cls_head.fc1/fc2``.
=================  ===============================================================================================

Names read in PySlowFast stem_helper.py X3DStem, resnet_helper.py ResStage/ResBlock/X3DTransform, operators.py SE,
head_helper.py X3DHead; pytorchvideo models/x3d.py, models/resnet.py, fvcore SqueezeExcitation; mmaction2
models/backbones/x3d.py, models/heads/x3d_head.py.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidrec.models.weights.entries import KINETICS400, Published, WeightsEntry, add_entry
from vidrec.models.weights.formats import register_converter
from vidrec.models.weights.torch_state import unwrap_state_dict
from vidrec.models.x3d import X3D_MEAN, X3D_STD

log = logging.getLogger(__name__)

LAYOUTS = ("pyslowfast", "pytorchvideo", "mmaction2")
# our module -> its name in each of LAYOUTS
_TOP = {
    "stem.conv_xy": ("s1.pathway0_stem.conv_xy", "blocks.0.conv.conv_t", "backbone.conv1_s.conv"),
    "stem.conv_t": ("s1.pathway0_stem.conv", "blocks.0.conv.conv_xy", "backbone.conv1_t.conv"),
    "stem.bn": ("s1.pathway0_stem.bn", "blocks.0.norm", "backbone.conv1_t.bn"),
    "conv5": ("head.conv_5", "blocks.5.pool.pre_conv", "backbone.conv5.conv"),
    "bn5": ("head.conv_5_bn", "blocks.5.pool.pre_norm", "backbone.conv5.bn"),
    "lin5": ("head.lin_5", "blocks.5.pool.post_conv", "cls_head.fc1"),
    "fc": ("head.projection", "blocks.5.proj", "cls_head.fc2"),
}
_BLOCK = {
    "conv1": ("branch2.a", "branch2.conv_a", "conv1.conv"),
    "bn1": ("branch2.a_bn", "branch2.norm_a", "conv1.bn"),
    "conv2": ("branch2.b", "branch2.conv_b", "conv2.conv"),
    "bn2": ("branch2.b_bn", "branch2.norm_b.0", "conv2.bn"),
    "se.fc1": ("branch2.se.fc1", "branch2.norm_b.1.block.0", "se_module.fc1"),
    "se.fc2": ("branch2.se.fc2", "branch2.norm_b.1.block.2", "se_module.fc2"),
    "conv3": ("branch2.c", "branch2.conv_c", "conv3.conv"),
    "bn3": ("branch2.c_bn", "branch2.norm_c", "conv3.bn"),
    "downsample.0": ("branch1", "branch1_conv", "downsample.conv"),
    "downsample.1": ("branch1_bn", "branch1_norm", "downsample.bn"),
}
_IN_BLOCK = re.compile(r"layer(\d)\.(\d+)\.(.+)")
SHORTCUT_BN = "layer1.0.downsample.1.weight"  # present in PySlowFast's and mmaction2's X3D, not in pytorchvideo's


def released_key(key: str, layout: str) -> str:
    """The name of our state-dict ``key`` in a release ``layout`` (one of :data:`LAYOUTS`)."""
    col = LAYOUTS.index(layout)
    module, attr = key.rsplit(".", 1)
    match = _IN_BLOCK.fullmatch(module)
    if match is None:
        return f"{_TOP[module][col]}.{attr}"
    stage, block, inner = int(match[1]), match[2], match[3]
    prefix = (f"s{stage + 1}.pathway0_res{block}", f"blocks.{stage}.res_blocks.{block}",
              f"backbone.layer{stage}.{block}")[col]
    return f"{prefix}.{_BLOCK[inner][col]}.{attr}"


def plain_bn(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """PySlowFast sub-batch-norm keys as plain BatchNorm keys (checkpoint.py ``sub_to_normal_bn``): ``<bn>.bn.<stat>``
    -> ``<bn>.<stat>`` (the aggregated statistics), ``<bn>.split_bn.*`` dropped; other keys unchanged."""
    out = {}
    for key, value in state.items():
        if ".split_bn." in key:
            continue
        module, attr = key.rsplit(".", 1)
        parent = module[:-len(".bn")]
        if module.endswith(".bn") and f"{parent}.split_bn.{attr}" in state:
            key = f"{parent}.{attr}"
        out[key] = value
    return out


def _convert(obj: Any, model: nn.Module, path: str | Path, layout: str) -> dict[str, torch.Tensor]:
    """A release in ``layout`` as our state dict; keys it cannot map stay under their own names."""
    state = plain_bn(unwrap_state_dict(obj, path))  # wrappers and a shared ``module.``/``model.`` prefix dropped
    if layout == "pyslowfast" and any(k.startswith("blocks.") for k in state):
        layout = "pytorchvideo"  # PySlowFast's PTVX3D: pytorchvideo's network under ``model.``
    state = {k: v for k, v in state.items() if not k.startswith("data_preprocessor.")}  # mmaction2: no weights
    target = model.state_dict()
    if (SHORTCUT_BN in target) != (released_key(SHORTCUT_BN, layout) in state):
        has = SHORTCUT_BN in target
        log.warning("%s: the network %s a BatchNorm on layer1's first shortcut and the file %s: build it with "
                    "layer1_shortcut_bn=%s (pytorchvideo's X3D has none, PySlowFast's and mmaction2's have one), "
                    "e.g. build_model('<model>.<weights tag>')", path, "has" if has else "lacks",
                    "does not" if has else "does", not has)
    out = {}
    for key, ours in target.items():
        value = state.pop(released_key(key, layout), None)
        if value is not None:  # the authors' 1x1x1 convs on pooled features, (C,1,1,1) BN scales: same numbers
            same = value.shape != ours.shape and value.numel() == ours.numel() and value.squeeze().shape == ours.squeeze().shape
            out[key] = value.reshape(ours.shape) if same else value
    return {**out, **state}


for _layout in LAYOUTS:
    register_converter(_layout, "x3d", lambda obj, model, path, _l=_layout: _convert(obj, model, path, _l))

# ------------------------------------------------------------------ registry entries
SF = "facebookresearch/SlowFast"
PTV = "facebookresearch/pytorchvideo"
MMA = "open-mmlab/mmaction2"
_SF_COMMON = {
    "mean/std 0.45 / 0.225 on [0, 1] RGB": f"{SF} slowfast/config/defaults.py@287ec00:687, 693 (DATA.MEAN, DATA.STD)",
    "fps 30 (clip span = rate × frames / 30 × fps, frames by linspace)": f"{SF} defaults.py@287ec00:720 "
    "DATA.TARGET_FPS; slowfast/datasets/decoder.py@198bf9d:306, 17-31 temporal_sampling",
    "10 clips, starts delta·k/10 (delta = frames − clip span)": f"{SF} defaults.py@287ec00:278 TEST.NUM_ENSEMBLE_VIEWS; "
    "decoder.py@198bf9d:59, 73 get_start_end_idx",
    "test: short side = TEST_CROP_SIZE, 3 crops (start, centre, end of the long side), bilinear": f"{SF} "
    "slowfast/datasets/kinetics.py@198bf9d:229-233; slowfast/datasets/transform.py@88bb4c9:219-238 uniform_crop",
    "head: pool kernel (frames, ceil(train crop / 32)²), stride 1; softmax per position, mean": f"{SF} "
    "slowfast/models/video_model_builder.py@88bb4c9:787-793; slowfast/models/head_helper.py@281b819:429, 482-485",
    "class order": f"{SF} VISUALIZATION_TOOLS.md@3a8b0bd:156 kinetics_classnames.json (not readable here)",
}
# variant -> (frames, rate, train jitter, train crop, test crop, PySlowFast 10-view / 30-view top-1,
#             pytorchvideo top-1 / top-5, the line of the X3D row in MODEL_ZOO.md and in pytorchvideo's model_zoo.md)
_X3D = {
    "xs": (4, 12, (182, 228), 160, 182, (68.7, 69.5), (69.12, 88.63), 25, 22),
    "s": (13, 6, (182, 228), 160, 182, (73.1, 73.5), (73.33, 91.27), 26, 23),
    "m": (16, 5, (256, 320), 224, 256, (75.1, 76.2), (75.94, 92.72), 27, 24),
    "l": (16, 5, (356, 446), 312, 356, (76.9, 77.5), (77.44, 93.31), 28, 25),
}
_MMA = {  # variant -> (file, README line, 10-view / 30-view top-1)
    "s": ("x3d_s_13x6x1_facebook-kinetics400-rgb_20201027-623825a0.pth", 25, (73.2, 73.3)),
    "m": ("x3d_m_16x5x1_facebook-kinetics400-rgb_20201027-3f42382a.pth", 26, (75.2, 76.4)),
}


def _clip_sources(cfg: str, crops_line: int, frames_line: int) -> dict[str, str]:
    """Where a PySlowFast X3D config sets the clip (NUM_FRAMES, then SAMPLING_RATE, TRAIN_JITTER_SCALES,
    TRAIN_CROP_SIZE, a comment, TEST_CROP_SIZE)."""
    f = frames_line
    return {"frames × rate": f"{SF} {cfg}:{f}-{f + 1}",
            "train jitter and crop": f"{SF} {cfg}:{f + 2}-{f + 3} (RANDOM_FLIP: defaults.py@287ec00:737)",
            "3 crops of TEST_CROP_SIZE": f"{SF} {cfg}:{crops_line}, {f + 5}"}


_PTV_ARCH = {"layer1_shortcut_bn": False}  # pytorchvideo x3d.py create_x3d_res_block: branch1_norm iff dim_in != dim_out

for _v, (_t, _r, _jitter, _train, _test, _sf, _ptv, _sf_line, _ptv_line) in _X3D.items():
    _model, _cfg, _up = f"x3d_{_v}", f"configs/Kinetics/X3D_{_v.upper()}.yaml@c22c7c9", _v.upper()
    _train_text = f"short side in [{_jitter[0]}, {_jitter[1]}], random {_train} crop, flip, {_t}×{_r} at 30 fps"
    _clip = _clip_sources(_cfg, 20, 22)
    _views = f"10 clips × 3 crops of {_test} at short side {_test}, {_t}×{_r} at 30 fps, fully convolutional head"
    _common = dict(classes=KINETICS400, class_list="kinetics_csv", mean=X3D_MEAN, std=X3D_STD,
                   input_note="RGB scaled to [0, 1], then (x - 0.45) / 0.225 on every channel", frames=_t,
                   sample_rate=_r, test_resize=_test, crop_size=_test, clip_selection="uniform", num_clips=10,
                   num_crops=3, fps=30, fps_rule="pyslowfast", test_interpolation="bilinear")
    _link = f"https://dl.fbaipublicfiles.com/pyslowfast/x3d_models/x3d_{_v}.pyth"
    add_entry(WeightsEntry(
        name=f"{_model}.pyslowfast_kinetics400", format="pyslowfast", files=(f"x3d_{_v}.pyth",), where=_link,
        url=_link, train_resize=_train_text, head="fully_conv", **_common,
        published=Published(_sf[1], None, "K400 val", f"30 views: {_views} (10 views, 1 centre crop of {_train} at "
                            f"short side {_jitter[0]}: {_sf[0]}); no top-5 published",
                            f"{SF} MODEL_ZOO.md@64f8d7e:{_sf_line} (top1 30-view)"),
        sources={**_SF_COMMON, **_clip, "file and accuracy": f"{SF} MODEL_ZOO.md@64f8d7e:23, {_sf_line}"}))
    _ptv_cfg = f"configs/Kinetics/pytorchvideo/X3D_{_up}.yaml@" + ("279350f" if _v == "l" else "298cd16")
    _ptv_sources = {**_SF_COMMON, **_clip_sources(_ptv_cfg, *((18, 20) if _v == "l" else (20, 22))),
                    "run by PySlowFast (PTVX3D, ptvkinetics: ShortSideScale, UniformCropVideo, clip k at delta·k/10)":
                    f"{PTV} docs/source/model_zoo.md@9d0ca90:61, 63; {SF} slowfast/models/ptv_model_builder.py@198bf9d:"
                    "440-489; slowfast/datasets/ptv_datasets.py@198bf9d:163, 211-237",
                    "network without BN on layer1's first shortcut": f"{PTV} pytorchvideo/models/x3d.py@7da857b:292-308"}
    _link = f"https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/X3D_{_up}.pyth"
    add_entry(WeightsEntry(
        name=f"{_model}.pytorchvideo_kinetics400", format="pytorchvideo", files=(f"X3D_{_up}.pyth",), where=_link,
        url=_link, train_resize=_train_text, head="fully_conv", arch=dict(_PTV_ARCH), **_common,
        published=Published(_ptv[0], _ptv[1], "K400 val", f"30 views: {_views}",
                            f"{PTV} docs/source/model_zoo.md@9d0ca90:{_ptv_line}"),
        sources={**_ptv_sources, "file and accuracy": f"{PTV} docs/source/model_zoo.md@9d0ca90:{_ptv_line}; "
                                                      "pytorchvideo/models/hub/x3d.py@3c07f34:10-16"}))
    _link = f"https://dl.fbaipublicfiles.com/pytorchvideo/pysf_model_zoo/kinetics/X3D_{_up}.pyth"
    _line = 39 + list(_X3D).index(_v)
    add_entry(WeightsEntry(
        name=f"{_model}.pytorchvideo_pysf_kinetics400", format="pyslowfast", files=(f"X3D_{_up}.pyth",),
        where=_link, url=_link, train_resize=_train_text, head="fully_conv", arch=dict(_PTV_ARCH), **_common,
        published=Published(_ptv[0], _ptv[1], "K400 val", f"30 views: {_views}",
                            f"{SF} projects/pytorchvideo/README.md@279350f:{_line}"),
        sources={**_ptv_sources, "file and accuracy (keys under model.)": f"{SF} projects/pytorchvideo/README.md"
                                                                         f"@279350f:{_line}, 60"}))

for _v, (_file, _line, _acc) in _MMA.items():
    _t, _r, _test = _X3D[_v][0], _X3D[_v][1], _X3D[_v][4]
    _cfg = f"configs/recognition/x3d/x3d_{_v}_{_t}x{_r}x1_facebook-kinetics400-rgb.py@af357dd2"
    _link = f"https://download.openmmlab.com/mmaction/v1.0/recognition/x3d/facebook/{_file}"
    add_entry(WeightsEntry(
        name=f"x3d_{_v}.mmaction2_kinetics400", format="mmaction2", files=(_file,), where=_link, url=_link,
        classes=KINETICS400, class_list="kinetics_csv", mean=(114.75 / 255,) * 3, std=(57.38 / 255,) * 3,
        input_note="RGB 0-255, (x - 114.75) / 57.38 on every channel", frames=_t, sample_rate=_r,
        train_resize="none: ported from PySlowFast, mmaction2 can only test X3D", test_resize=_test,
        crop_size=_test, clip_selection="uniform", num_clips=10, num_crops=3, head="fc", fps=30,
        fps_rule="pyslowfast", test_interpolation="bilinear",
        published=Published(_acc[1], None, "K400 val", f"30 views: 10 clips × 3 crops of {_test} at short side "
                            f"{_test}, {_t}×{_r} at 30 fps, global average pooling (10 views: {_acc[0]}); no top-5",
                            f"{MMA} configs/recognition/x3d/README.md@6cc912ba:{_line} (top1 30-view)"),
        sources={"mean/std 114.75 / 57.38 (0-255)": f"{MMA} configs/_base_/models/x3d.py@40bdbbf0:13-17",
                 "frames × rate, fps 30, 10 clips": f"{MMA} {_cfg}:10-15",
                 "fps rule (PySlowFast's), clip k at k·floor((frames − span) / 9)": f"{MMA} "
                 "mmaction/datasets/transforms/loading.py@96d20d38:297-311, 338-341, 367-369",
                 "short side and 3 crops, bilinear": f"{MMA} {_cfg}:17-18; mmaction/datasets/transforms/processing.py"
                                                     "@baf385ee:625, 1136-1175",
                 "head: global average pooling, fc1, ReLU, dropout, fc2; mean of softmax over views": f"{MMA} "
                 "mmaction/models/heads/x3d_head.py@51a7d271:55-56, 78-90; configs/_base_/models/x3d.py@40bdbbf0:12",
                 "test only (ported from PySlowFast)": f"{MMA} configs/recognition/x3d/README.md@6cc912ba:28",
                 "file and accuracy": f"{MMA} configs/recognition/x3d/README.md@6cc912ba:{_line}"}))

"""X3D (vidrec.models.x3d): logits equal to pytorchvideo's hub models, the PySlowFast, pytorchvideo (and PySlowFast's
copy of it) and mmaction2 release layouts, the authors' fully convolutional test, parameter counts."""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import compose_resolved, import_torchvision
from test_models_weights import randomize_bn
from vidrec.errors import CheckpointError
from vidrec.models import build_model, load_pretrained, model_info
from vidrec.models.weights.entries import entries_for, get_weights, list_weights
from vidrec.models.weights.x3d import LAYOUTS, released_key

torch.set_num_threads(1)

VARIANTS = ("xs", "s", "m", "l")
FRAMES, SIZE = 4, 64  # the small clip of the exactness tests
# pytorchvideo 0.1.5 hub x3d_* at 400 classes; PySlowFast's (and mmaction2's) network has a BatchNorm(24) more on layer1's
# first shortcut: mmaction2 configs/recognition/x3d/metafile.yml@af357dd2:15, 36 "Parameters: 3794322" (X3D-S, X3D-M)
PYTORCHVIDEO_PARAMS = {"xs": 3_794_274, "s": 3_794_274, "m": 3_794_274, "l": 6_153_384}
PYSLOWFAST_PARAMS = {"xs": 3_794_322, "s": 3_794_322, "m": 3_794_322, "l": 6_153_432}

# pytorchvideo name -> PySlowFast name (stem_helper.py X3DStem, resnet_helper.py ResStage "pathway0_res{i}", ResBlock
# branch1/branch1_bn/branch2, X3DTransform a/a_bn/b/b_bn/se/c/c_bn, operators.py SE fc1/fc2, head_helper.py X3DHead)
TO_PYSLOWFAST = [
    (r"^blocks\.0\.conv\.conv_t\.", "s1.pathway0_stem.conv_xy."),  # pytorchvideo passes the 1x3x3 conv as conv_t
    (r"^blocks\.0\.conv\.conv_xy\.", "s1.pathway0_stem.conv."),
    (r"^blocks\.0\.norm\.", "s1.pathway0_stem.bn."),
    (r"^blocks\.([1-4])\.res_blocks\.(\d+)\.", lambda m: f"s{int(m[1]) + 1}.pathway0_res{m[2]}."),
    (r"\.branch1_conv\.", ".branch1."), (r"\.branch1_norm\.", ".branch1_bn."),
    (r"\.branch2\.conv_([abc])\.", r".branch2.\1."), (r"\.branch2\.norm_([ac])\.", r".branch2.\1_bn."),
    (r"\.branch2\.norm_b\.0\.", ".branch2.b_bn."),
    (r"\.branch2\.norm_b\.1\.block\.0\.", ".branch2.se.fc1."), (r"\.branch2\.norm_b\.1\.block\.2\.", ".branch2.se.fc2."),
    (r"^blocks\.5\.pool\.pre_conv\.", "head.conv_5."), (r"^blocks\.5\.pool\.pre_norm\.", "head.conv_5_bn."),
    (r"^blocks\.5\.pool\.post_conv\.", "head.lin_5."), (r"^blocks\.5\.proj\.", "head.projection."),
]
# pytorchvideo name -> mmaction2 name (backbones/x3d.py conv1_s, conv1_t, layer{i}, BlockX3D conv1..3 ConvModule
# conv/bn, se_module, downsample; conv5; heads/x3d_head.py fc1 (a Linear), fc2)
TO_MMACTION2 = [
    (r"^blocks\.0\.conv\.conv_t\.", "backbone.conv1_s.conv."), (r"^blocks\.0\.conv\.conv_xy\.", "backbone.conv1_t.conv."),
    (r"^blocks\.0\.norm\.", "backbone.conv1_t.bn."),
    (r"^blocks\.([1-4])\.res_blocks\.(\d+)\.", r"backbone.layer\1.\2."),
    (r"\.branch1_conv\.", ".downsample.conv."), (r"\.branch1_norm\.", ".downsample.bn."),
    (r"\.branch2\.conv_a\.", ".conv1.conv."), (r"\.branch2\.norm_a\.", ".conv1.bn."),
    (r"\.branch2\.conv_b\.", ".conv2.conv."), (r"\.branch2\.norm_b\.0\.", ".conv2.bn."),
    (r"\.branch2\.norm_b\.1\.block\.0\.", ".se_module.fc1."), (r"\.branch2\.norm_b\.1\.block\.2\.", ".se_module.fc2."),
    (r"\.branch2\.conv_c\.", ".conv3.conv."), (r"\.branch2\.norm_c\.", ".conv3.bn."),
    (r"^blocks\.5\.pool\.pre_conv\.", "backbone.conv5.conv."), (r"^blocks\.5\.pool\.pre_norm\.", "backbone.conv5.bn."),
    (r"^blocks\.5\.pool\.post_conv\.", "cls_head.fc1."), (r"^blocks\.5\.proj\.", "cls_head.fc2."),
]


def renamed(state: dict[str, torch.Tensor], rules: list) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        for pattern, replacement in rules:
            key = re.sub(pattern, replacement, key)
        out[key] = value
    return out


def reference(variant: str, frames: int = FRAMES, crop: int = SIZE, shortcut_bn: bool = False,
              softmax: bool = False, seed: int = 0) -> nn.Module:
    """pytorchvideo's hub ``x3d_<variant>`` with random weights, its head pooling sized for ``frames`` × ``crop``
    (create_x3d's kernel: (frames, ceil(crop / 32), ceil(crop / 32)), stride 1; the hub fixes input_clip_length and
    input_crop_size itself), logits (``softmax``: the mean of the softmax over positions, the hub's default).
    ``shortcut_bn``: PySlowFast's network (a BatchNorm after layer1's first projection shortcut)."""
    hub = import_torchvision("pytorchvideo.models.hub")
    torch.manual_seed(seed)
    ref = getattr(hub, f"x3d_{variant}")(model_num_class=400)
    head = ref.blocks[5]
    head.pool.pool = nn.AvgPool3d((frames, math.ceil(crop / 32), math.ceil(crop / 32)), stride=1)
    if not softmax:
        head.activation = None
    if shortcut_bn:
        ref.blocks[1].res_blocks[0].branch1_norm = nn.BatchNorm3d(24)
    randomize_bn(ref, seed)
    with torch.no_grad():
        head.proj.weight.normal_(0, 0.05)  # logits of order 1, so that a wrong mapping shows
    return ref.eval()


def clip(frames: int = FRAMES, size: int = SIZE, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 3, frames, size, size, generator=torch.Generator().manual_seed(seed))


def assert_same_logits(model: nn.Module, ref: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        ours, theirs = model.eval()(x), ref(x)
    assert theirs.abs().max() > 0.1 and theirs.std() > 0.05  # a meaningful comparison
    diff = float((ours - theirs).abs().max())
    assert diff <= 1e-4, diff
    return diff


def pyslowfast_checkpoint(state: dict[str, torch.Tensor]) -> dict:
    """As slowfast/utils/checkpoint.py save_checkpoint writes it."""
    return {"epoch": 300, "model_state": state, "optimizer_state": {"state": {}, "param_groups": []},
            "cfg": "MODEL:\n  ARCH: x3d\n  MODEL_NAME: X3D\n"}


def mmaction2_checkpoint(state: dict[str, torch.Tensor]) -> dict:
    """As mmcv/mmengine save_checkpoint writes it."""
    return {"meta": {"mmcv_version": "1.1.5", "time": "Tue Oct 27 12:00:00 2020"}, "state_dict": state}


def to_sub_bn(state: dict[str, torch.Tensor], splits: int = 2) -> dict[str, torch.Tensor]:
    """A PySlowFast state dict as a model with sub-batch-norm holds it (batchnorm_helper.py SubBatchNorm3d: own
    weight/bias, ``bn`` with the aggregated statistics, ``split_bn`` with per-split ones), what checkpoint.py
    sub_to_normal_bn undoes."""
    out = {}
    for key, value in state.items():
        module, attr = key.rsplit(".", 1)
        if module.endswith("bn") and attr in ("running_mean", "running_var", "num_batches_tracked"):
            out[f"{module}.bn.{attr}"] = value
            out[f"{module}.split_bn.{attr}"] = value.repeat(splits) if value.dim() else value
        elif module.endswith("bn"):  # weight and bias, stored (C, 1, 1, 1) by some versions (sub_to_normal_bn)
            out[key] = value[:, None, None, None]
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------- exactness, every registry name and layout

@pytest.mark.parametrize("variant", VARIANTS)
def test_pytorchvideo_file_gives_the_hub_models_logits(variant: str, tmp_path: Path) -> None:
    ref = reference(variant)
    path = tmp_path / f"X3D_{variant.upper()}.pyth"
    torch.save({"model_state": ref.state_dict()}, path)
    model = build_model(f"x3d_{variant}", 400, layer1_shortcut_bn=False)
    report = load_pretrained(model, path)
    assert report.format == "pytorchvideo" and report.entry == f"x3d_{variant}.pytorchvideo_kinetics400"
    assert_same_logits(model, ref, clip())


@pytest.mark.parametrize("sub_bn", [False, True], ids=["bn", "sub_bn"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_pyslowfast_file_gives_the_reference_logits(variant: str, sub_bn: bool, tmp_path: Path) -> None:
    """PySlowFast's layout, written from a reference with PySlowFast's network (pytorchvideo's plus the shortcut BN)
    under PySlowFast's names; its lin_5 is a 1x1x1 conv as in pytorchvideo."""
    ref = reference(variant, shortcut_bn=True)
    state = renamed(ref.state_dict(), TO_PYSLOWFAST)
    assert "s2.pathway0_res0.branch1_bn.running_var" in state and "head.lin_5.weight" in state
    path = tmp_path / f"x3d_{variant}.pyth"
    torch.save(pyslowfast_checkpoint(to_sub_bn(state) if sub_bn else state), path)
    model = build_model(f"x3d_{variant}", 400)
    report = load_pretrained(model, path)
    assert report.format == "pyslowfast" and report.entry == f"x3d_{variant}.pyslowfast_kinetics400"
    assert_same_logits(model, ref, clip())


@pytest.mark.parametrize("variant", VARIANTS)
def test_pyslowfast_copy_of_pytorchvideo_loads(variant: str, tmp_path: Path) -> None:
    """PySlowFast's pysf_model_zoo files: pytorchvideo's network under ``model.`` (ptv_model_builder.py PTVX3D)."""
    ref = reference(variant)
    path = tmp_path / f"X3D_{variant.upper()}.pyth"
    torch.save(pyslowfast_checkpoint({f"model.{k}": v for k, v in ref.state_dict().items()}), path)
    model = build_model(f"x3d_{variant}", 400, layer1_shortcut_bn=False)
    report = load_pretrained(model, path)
    assert report.format == "pyslowfast" and report.entry == f"x3d_{variant}.pytorchvideo_pysf_kinetics400"
    assert_same_logits(model, ref, clip())


MMACTION2_FILES = {"s": "x3d_s_13x6x1_facebook-kinetics400-rgb_20201027-623825a0.pth",
                   "m": "x3d_m_16x5x1_facebook-kinetics400-rgb_20201027-3f42382a.pth"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_mmaction2_file_gives_the_reference_logits(variant: str, tmp_path: Path) -> None:
    """mmaction2's port (PySlowFast's network; its head pools globally, equal to the reference at the size its pooling
    kernel was built for). mmaction2 released S and M only: the other networks load such a file unrecognised."""
    ref = reference(variant, shortcut_bn=True)
    state = renamed(ref.state_dict(), TO_MMACTION2)
    state["cls_head.fc1.weight"] = state["cls_head.fc1.weight"].flatten(1)  # nn.Linear(432, 2048, bias=False)
    path = tmp_path / MMACTION2_FILES.get(variant, f"x3d_{variant}_port.pth")
    torch.save(mmaction2_checkpoint(state), path)
    model = build_model(f"x3d_{variant}", 400)
    report = load_pretrained(model, path)
    expected = f"x3d_{variant}.mmaction2_kinetics400" if variant in MMACTION2_FILES else None
    assert report.format == "mmaction2" and report.entry == expected
    assert_same_logits(model, ref, clip())


@pytest.mark.parametrize("variant", ["xs", "l"])
def test_fully_conv_is_the_authors_test_on_a_larger_crop(variant: str, tmp_path: Path) -> None:
    """On a crop larger than the training one the authors pool windows of the training kernel (stride 1) and average
    the softmax of every position (X3DHead in eval; pytorchvideo's head with its Softmax activation): trained at 64
    (kernel 2), tested at 96 (a 3×3 map, 2×2 positions)."""
    ref = reference(variant, softmax=True)
    path = tmp_path / f"X3D_{variant.upper()}.pyth"
    torch.save({"model_state": ref.state_dict()}, path)
    model = build_model(f"x3d_{variant}", 400, layer1_shortcut_bn=False)
    load_pretrained(model, path)
    model.head_pool = math.ceil(SIZE / 32)
    model.fully_conv = True
    x = clip(size=96)
    with torch.no_grad():
        ours, theirs = model.eval()(x), ref(x).log()  # log of the mean of the softmax over positions
        model.fully_conv = False
        global_pool = model(x).log_softmax(-1)
    assert float((ours - theirs).abs().max()) <= 1e-4
    assert float((global_pool - theirs).abs().max()) > 1e-2  # the two tests differ there


def test_fully_conv_at_the_training_size_is_the_global_head() -> None:
    model = build_model("x3d_xs", 7).eval()
    randomize_bn(model)
    model.head_pool = 2  # trained at 64: the kernel covers the 2×2 map, one position
    x = clip()
    with torch.no_grad():
        fc = model(x).softmax(-1)
        model.fully_conv = True
        assert torch.allclose(model(x).exp(), fc, atol=1e-6)
        assert model(clip(size=40)).shape == (1, 7)  # a map smaller than the kernel: pooled whole


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_authors_test_input_matches_the_hub_model(variant: str, tmp_path: Path) -> None:
    """At the authors' test clip (frames, 3-crop size) the fully convolutional head equals the unmodified hub model
    (pooling built for the training crop, softmax, mean over positions)."""
    hub = import_torchvision("pytorchvideo.models.hub")
    torch.manual_seed(0)
    ref = getattr(hub, f"x3d_{variant}")()
    randomize_bn(ref)
    with torch.no_grad():
        ref.blocks[5].proj.weight.normal_(0, 0.05)
    path = tmp_path / f"X3D_{variant.upper()}.pyth"
    torch.save({"model_state": ref.state_dict()}, path)
    model = build_model(f"x3d_{variant}", 400, layer1_shortcut_bn=False)
    load_pretrained(model, path)
    model.fully_conv = True
    info = model_info(f"x3d_{variant}")
    x = clip(info.default_frames, info.default_size)
    with torch.no_grad():
        ours, theirs = model.eval()(x), ref.eval()(x).log()
    assert float((ours - theirs).abs().max()) <= 1e-4


# ---------------------------------------------------------------- every entry, parameter counts, layout

def write_release(name: str, model: nn.Module, folder: Path) -> Path:
    """``model``'s weights as the entry's authors publish its file (name, wrapper, key names, shapes)."""
    entry = get_weights(name)
    layout = "pytorchvideo" if "pytorchvideo" in entry.tag else entry.format
    ours = model.state_dict()
    state = {released_key(k, layout): v for k, v in ours.items()}
    if layout != "mmaction2":
        state[released_key("lin5.weight", layout)] = ours["lin5.weight"][..., None, None, None]
    path = folder / entry.files[0]
    if entry.format == "mmaction2":
        torch.save(mmaction2_checkpoint(state), path)
    elif entry.format == "pyslowfast":
        prefix = "model." if layout == "pytorchvideo" else ""
        torch.save(pyslowfast_checkpoint({prefix + k: v for k, v in state.items()}), path)
    else:
        torch.save({"model_state": state}, path)
    return path


@pytest.mark.parametrize("name", [n for n in list_weights() if n.startswith("x3d_")])
def test_every_entry_loads_and_is_recognised(name: str, tmp_path: Path) -> None:
    entry = get_weights(name)
    torch.manual_seed(1)
    source = build_model(entry.model, entry.fc_classes, **entry.arch)
    randomize_bn(source)
    path = write_release(name, source, tmp_path)
    model = build_model(entry.model, entry.fc_classes, **entry.arch)
    report = load_pretrained(model, path)
    assert report.entry == name and model.pretrained_cfg == entry.pretrained_cfg()
    assert torch.equal(model.eval()(clip()), source.eval()(clip()))
    assert entry.fps == 30 and entry.fps_rule == "pyslowfast" and (entry.num_clips, entry.num_crops) == (10, 3)
    assert entry.head == ("fc" if entry.format == "mmaction2" else "fully_conv")
    assert entry.published.source and entry.sources
    assert (entry.frames, entry.crop_size) == (model_info(entry.model).default_frames,
                                                model_info(entry.model).default_size)


def test_entries_of_each_network() -> None:
    for variant in VARIANTS:
        tags = {e.tag for e in entries_for(f"x3d_{variant}")}
        expected = {"pyslowfast_kinetics400", "pytorchvideo_kinetics400", "pytorchvideo_pysf_kinetics400"}
        assert tags == expected | ({"mmaction2_kinetics400"} if variant in MMACTION2_FILES else set())


def test_pytorchvideo_file_into_pyslowfast_network_names_the_argument(tmp_path: Path, caplog) -> None:
    path = write_release("x3d_s.pytorchvideo_kinetics400", build_model("x3d_s", 400, layer1_shortcut_bn=False),
                         tmp_path)
    with caplog.at_level(logging.WARNING), pytest.raises(CheckpointError, match="layer1.0.downsample.1"):
        load_pretrained(build_model("x3d_s", 400), path)
    assert "layer1_shortcut_bn=False" in caplog.text


@pytest.mark.parametrize("variant", VARIANTS)
def test_parameter_counts(variant: str) -> None:
    def count(**kwargs) -> int:
        with torch.device("meta"):
            return sum(p.numel() for p in build_model(f"x3d_{variant}", 400, **kwargs).parameters())

    assert count() == PYSLOWFAST_PARAMS[variant]
    assert count(layer1_shortcut_bn=False) == PYTORCHVIDEO_PARAMS[variant]


@pytest.mark.parametrize("variant", VARIANTS)
def test_parameter_count_is_the_hub_models(variant: str) -> None:
    hub = import_torchvision("pytorchvideo.models.hub")
    assert sum(p.numel() for p in getattr(hub, f"x3d_{variant}")().parameters()) == PYTORCHVIDEO_PARAMS[variant]


def test_network_layout() -> None:
    with torch.device("meta"):
        models = {v: build_model(f"x3d_{v}", 400) for v in VARIANTS}
    depths = {v: [len(getattr(m, f"layer{i}")) for i in range(1, 5)] for v, m in models.items()}
    assert depths == {"xs": [3, 5, 11, 7], "s": [3, 5, 11, 7], "m": [3, 5, 11, 7], "l": [5, 10, 25, 15]}
    assert {v: m.head_pool for v, m in models.items()} == {"xs": 5, "s": 5, "m": 7, "l": 10}  # ceil(train crop / 32)
    m = models["m"]
    assert [isinstance(b.se, nn.Identity) for b in m.layer3] == [i % 2 == 1 for i in range(11)]  # SE on blocks 0, 2 ..
    assert [m.layer4[0].se.fc1.out_channels, m.layer1[0].se.fc1.out_channels] == [32, 8]
    assert m.stem.conv_t.groups == 24 and m.layer2[1].conv2.groups == 108 and m.layer2[0].conv2.stride == (1, 2, 2)
    assert m.fc.in_features == 2048 and isinstance(m.fc, nn.Linear)
    assert [m.stage_of(n) for n in ("stem.bn.weight", "layer3.2.se.fc1.bias", "conv5.weight", "lin5.weight")] == [0, 3,
                                                                                                                  4, 4]
    info = {v: (model_info(f"x3d_{v}").default_frames, model_info(f"x3d_{v}").default_size) for v in VARIANTS}
    assert info == {"xs": (4, 182), "s": (13, 182), "m": (16, 256), "l": (16, 356)}


def test_drop_path_rates_rise_by_stage() -> None:
    model = build_model("x3d_xs", 5, drop_path=0.5)
    randomize_bn(model)  # residual branches not zero (bn3 starts at 0)
    assert [getattr(model, f"layer{i}")[0].drop_path_rate for i in range(1, 5)] == pytest.approx([0.2, 0.3, 0.4, 0.5])
    model.train()
    x = clip()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_released_key_covers_every_layout() -> None:
    with torch.device("meta"):
        keys = list(build_model("x3d_xs", 400).state_dict())
    for layout in LAYOUTS:
        names = [released_key(k, layout) for k in keys]
        assert len(set(names)) == len(keys)
    assert released_key("layer2.3.se.fc2.bias", "pyslowfast") == "s3.pathway0_res3.branch2.se.fc2.bias"
    assert released_key("stem.conv_xy.weight", "pytorchvideo") == "blocks.0.conv.conv_t.weight"
    assert released_key("lin5.weight", "mmaction2") == "cls_head.fc1.weight"


def test_config_picks_the_variant() -> None:
    from vidrec.config import model_overrides

    assert model_overrides("x3d_xs") == "model=x3d model.variant=xs"
    assert model_overrides("x3d_m") == "model=x3d"
    for variant in VARIANTS:
        assert compose_resolved(["model=x3d", f"model.variant={variant}"])["model"]["net"]["name"] == f"x3d_{variant}"

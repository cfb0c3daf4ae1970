"""SlowFast / SlowOnly: exactness against pytorchvideo, the four release layouts, the authors' test head, counts.

Files written here, each in the layout its authors save (names read from their code, then walked over our model):

- pytorchvideo ``.pyth``: ``{'model_state': state}`` with ``create_slowfast``/``create_resnet`` names
  (``blocks.0.multipathway_blocks.{p}.conv``, ``blocks.{s}.multipathway_blocks.{p}.res_blocks.{b}.branch2.conv_a``,
  ``blocks.{i}.multipathway_fusion.conv_fast_to_slow``, ``blocks.6.proj``; the hub reads ``checkpoint['model_state']``,
  pytorchvideo models/hub/slowfast.py ``_slowfast``). With pytorchvideo installed, the reference network's own
  state dict is saved and the walked names are checked against it.
- PySlowFast ``.pyth``/``.pkl`` (torch): ``{'epoch', 'model_state', 'optimizer_state', 'cfg'}``
  (slowfast/utils/checkpoint.py ``save_checkpoint``) with ``s1.pathway{p}_stem.conv``, ``s{s}.pathway{p}_res{b}
  .branch2.a_bn``, ``s{i}_fuse.conv_f2s``, ``head.projection`` (video_model_builder.py, resnet_helper.py,
  stem_helper.py, head_helper.py).
- PySlowFast Caffe2 ``.pkl``: ``{'blobs': {...}}`` pickled as Caffe2 does (Python 2 strings), blob names of
  slowfast/utils/c2_model_loading.py (``conv1_w``, ``res_conv1_bn_s``, ``res2_0_branch2a_bn_riv``, ``t_`` for the
  fast pathway, ``t_pool1_subsample``, ``t_res{s}_{last}_branch2c_bn_subsample``, ``pred_w``), with the training
  blobs (``lr``, ``model_iter``, ``*_momentum``) a Caffe2 file carries.
- mmaction2 ``.pth``: ``{'meta', 'state_dict'}`` with ``backbone.slow_path.conv1.conv``, ``...layer1.0.conv1.bn``,
  ``...downsample.conv``, ``backbone.slow_path.conv1_lateral.conv``, ``cls_head.fc_cls`` over [fast, slow] features
  (resnet3d_slowfast.py, resnet3d.py, heads/slowfast_head.py); its network is re-computed here from the file with
  the operations of ``ResNet3dSlowFast.forward`` (nearest resampling, bare-conv laterals).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import import_torchvision
from test_models_weights import BlobWriter, randomize_bn, save_caffe2_pickle
from vidrec.models import build_model, load_pretrained
from vidrec.models.finetune import freeze, stage_of
from vidrec.models.slowfast import fully_conv_scores
from vidrec.models.weights.entries import get_weights, list_weights

torch.set_num_threads(1)

NAMES = ["slowfast_r50_4x16", "slowfast_r50_8x8", "slowfast_r101_8x8", "slow_r50_8x8"]
#: parameters at 400 classes of pytorchvideo 0.1.5: hub slowfast_r50, slowfast_r101, slow_r50, and create_slowfast with
#: PySlowFast's configs/Kinetics/c2/SLOWFAST_4x16_R50.yaml (the model zoo tables: 34.48 / 34.57 / 62.83 / 32.45 M)
REFERENCE_PARAMS = {"slowfast_r50_4x16": 34_480_216, "slowfast_r50_8x8": 34_566_488,
                    "slowfast_r101_8x8": 62_826_968, "slow_r50_8x8": 32_454_096}
ALPHA = {"slowfast_r50_4x16": 8, "slowfast_r50_8x8": 4, "slowfast_r101_8x8": 4}
SIZE = 64
ENTRIES = [n for n in list_weights() if n.split(".")[0] in NAMES]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def clip(name: str, size: int = SIZE, frames: int | None = None) -> torch.Tensor:
    """A random clip: 16 fast frames for SlowFast (4 or 2 slow ones), 8 frames for SlowOnly."""
    frames = frames or (16 if name.startswith("slowfast") else 8)
    return torch.randn(1, 3, frames, size, size, generator=torch.Generator().manual_seed(3))


def pack_pathway(x: torch.Tensor, alpha: int) -> list[torch.Tensor]:
    """PySlowFast's PackPathway (slowfast/datasets/utils.py pack_pathway_output), on the batched time axis."""
    frames = x.shape[2]
    return [torch.index_select(x, 2, torch.linspace(0, frames - 1, frames // alpha).long()), x]


def randomize(model: nn.Module, seed: int = 1) -> nn.Module:
    """Random BatchNorm statistics and affine parameters (a wrong mapping shows); the last BN of each residual branch
    (ours ``bn3``, pytorchvideo's ``norm_c``) scaled by 0.3 so that logits stay of order 1 through 16-33 blocks."""
    randomize_bn(model, seed)
    with torch.no_grad():
        for name, module in model.named_modules():
            if name.endswith(("bn3", "norm_c")):
                module.weight.mul_(0.3)
    return model


def fresh(name: str, seed: int = 0, **arch) -> nn.Module:
    torch.manual_seed(seed)
    return randomize(build_model(name, 400, **arch).eval(), seed + 1)


# ---------------------------------------------------------------- writers: our modules under the authors' names

def pathways(model: nn.Module) -> list[tuple[int, nn.Module]]:
    return [(0, model.slow), (1, model.fast)] if hasattr(model, "slow") else [(0, model)]


def stage_blocks(pathway: nn.Module):
    """(stage 2..5, block index, bottleneck) of a pathway."""
    for stage in range(1, 5):
        for b, block in enumerate(getattr(pathway, f"layer{stage}")):
            yield stage + 1, b, block


def bottleneck_parts(block: nn.Module):
    """(branch letter or '1' for the shortcut, conv, BN) of a bottleneck."""
    parts = [(letter, getattr(block, f"conv{k}"), getattr(block, f"bn{k}")) for k, letter in enumerate("abc", 1)]
    return parts + ([("1", block.downsample[0], block.downsample[1])] if block.downsample is not None else [])


def put(state: dict, module: nn.Module, name: str) -> None:
    state.update({f"{name}.{k}": v.clone() for k, v in module.state_dict().items()})


def pytorchvideo_state(model: nn.Module) -> dict:
    state, two = {}, hasattr(model, "slow")
    for p, path in pathways(model):
        stem = f"blocks.0.multipathway_blocks.{p}" if two else "blocks.0"
        put(state, path.conv1, f"{stem}.conv")
        put(state, path.bn1, f"{stem}.norm")
        for s, b, block in stage_blocks(path):
            base = f"blocks.{s - 1}." + (f"multipathway_blocks.{p}." if two else "") + f"res_blocks.{b}"
            for letter, conv, bn in bottleneck_parts(block):
                put(state, conv, f"{base}.branch1_conv" if letter == "1" else f"{base}.branch2.conv_{letter}")
                put(state, bn, f"{base}.branch1_norm" if letter == "1" else f"{base}.branch2.norm_{letter}")
    for i, lateral in enumerate(getattr(model, "lateral", [])):
        put(state, lateral.conv, f"blocks.{i}.multipathway_fusion.conv_fast_to_slow")
        put(state, lateral.bn, f"blocks.{i}.multipathway_fusion.norm")
    put(state, model.fc, f"blocks.{6 if two else 5}.proj")
    return state


def pyslowfast_state(model: nn.Module) -> dict:
    state = {}
    for p, path in pathways(model):
        put(state, path.conv1, f"s1.pathway{p}_stem.conv")
        put(state, path.bn1, f"s1.pathway{p}_stem.bn")
        for s, b, block in stage_blocks(path):
            for letter, conv, bn in bottleneck_parts(block):
                branch = "branch1" if letter == "1" else f"branch2.{letter}"
                put(state, conv, f"s{s}.pathway{p}_res{b}.{branch}")
                put(state, bn, f"s{s}.pathway{p}_res{b}.{branch}_bn")
    for i, lateral in enumerate(getattr(model, "lateral", [])):
        put(state, lateral.conv, f"s{i + 1}_fuse.conv_f2s")
        put(state, lateral.bn, f"s{i + 1}_fuse.bn")
    put(state, model.fc, "head.projection")
    return state


def caffe2_blobs(model: nn.Module) -> dict[str, np.ndarray]:
    writer = BlobWriter()
    for p, path in pathways(model):
        t = "t_" if p else ""
        writer.conv(path.conv1, f"{t}conv1")
        writer.bn(path.bn1, f"{t}res_conv1_bn")
        for s, b, block in stage_blocks(path):
            for letter, conv, bn in bottleneck_parts(block):
                name = f"{t}res{s}_{b}_branch" + ("1" if letter == "1" else f"2{letter}")
                writer.conv(conv, name)
                writer.bn(bn, f"{name}_bn")
    for i, lateral in enumerate(getattr(model, "lateral", [])):
        last = len(getattr(model.fast, f"layer{i}")) - 1 if i else 0
        name = "t_pool1_subsample" if i == 0 else f"t_res{i + 1}_{last}_branch2c_bn_subsample"
        writer.conv(lateral.conv, name)
        writer.bn(lateral.bn, f"{name}_bn")
    writer.conv(model.fc, "pred")
    blobs = writer.blobs
    blobs.update({f"{k}_momentum": np.zeros_like(v) for k, v in list(blobs.items()) if k.endswith("_w")})
    blobs.update({"lr": np.array([0.1], dtype=np.float32), "model_iter": np.array([239000], dtype=np.int64)})
    return blobs


def mmaction2_state(model: nn.Module) -> dict:
    state, two = {}, hasattr(model, "slow")
    for p, path in pathways(model):
        base = "backbone." + (("slow_path.", "fast_path.")[p] if two else "")
        put(state, path.conv1, f"{base}conv1.conv")
        put(state, path.bn1, f"{base}conv1.bn")
        for s, b, block in stage_blocks(path):
            for letter, conv, bn in bottleneck_parts(block):
                inner = "downsample" if letter == "1" else f"conv{'abc'.index(letter) + 1}"
                put(state, conv, f"{base}layer{s - 1}.{b}.{inner}.conv")
                put(state, bn, f"{base}layer{s - 1}.{b}.{inner}.bn")
    for i, lateral in enumerate(getattr(model, "lateral", [])):
        name = f"backbone.slow_path.{'conv1' if i == 0 else f'layer{i}'}_lateral"
        put(state, lateral.conv, f"{name}.conv")
        if lateral.bn is not None:
            put(state, lateral.bn, f"{name}.bn")
    weight = model.fc.weight.detach().clone()
    if two:  # SlowFastHead: torch.cat((x_fast, x_slow), dim=1)
        weight = torch.cat([weight[:, model.slow.out_channels:], weight[:, :model.slow.out_channels]], 1)
    state.update({"cls_head.fc_cls.weight": weight, "cls_head.fc_cls.bias": model.fc.bias.detach().clone()})
    return state


def write_release(name: str, model: nn.Module, folder: Path) -> Path:
    """``model``'s weights saved as the entry ``name``'s authors save its file (for the registry-wide tests too)."""
    entry = get_weights(name)
    path = folder / entry.files[0]
    if entry.format == "pytorchvideo":
        torch.save({"model_state": pytorchvideo_state(model)}, path)
    elif entry.format == "pyslowfast":
        torch.save({"epoch": 239, "model_state": pyslowfast_state(model), "optimizer_state": {"state": {}},
                    "cfg": "MODEL:\n  ARCH: slowfast\n"}, path)
    elif entry.format == "detectron_caffe2":
        save_caffe2_pickle(caffe2_blobs(model), path)
    elif entry.format == "mmaction2":
        torch.save({"meta": {"epoch": 256, "mmengine_version": "0.8.4"}, "state_dict": mmaction2_state(model)}, path)
    else:
        raise AssertionError(f"no writer for {entry.format}")
    return path


# ---------------------------------------------------------------- mmaction2's forward, recomputed from its file

def mmaction2_forward(state: dict, x: torch.Tensor, resample_rate: int = 1, speed_ratio: int = 1) -> torch.Tensor:
    """``ResNet3dSlowFast.forward`` / ``ResNet3d.forward`` + ``SlowFastHead``/``I3DHead`` on a state dict: ConvModules
    (conv, BN, ReLU; no BN/ReLU when the file has none, laterals without lateral_norm), Bottleneck3d (stride on
    conv2), nearest temporal resampling of the input per pathway, [fast, slow] features."""

    def conv_module(prefix: str, x: torch.Tensor, stride=1, relu: bool = True) -> torch.Tensor:
        weight = state[f"{prefix}.conv.weight"]
        x = F.conv3d(x, weight, stride=stride, padding=[k // 2 for k in weight.shape[2:]])
        if f"{prefix}.bn.weight" not in state:
            return x
        x = F.batch_norm(x, state[f"{prefix}.bn.running_mean"], state[f"{prefix}.bn.running_var"],
                         state[f"{prefix}.bn.weight"], state[f"{prefix}.bn.bias"], False, 0.0, 1e-5)
        return F.relu(x) if relu else x

    def res_layer(prefix: str, x: torch.Tensor, stage: int) -> torch.Tensor:
        b = 0
        while f"{prefix}.{b}.conv1.conv.weight" in state:
            s = (1, 2, 2) if stage > 1 and b == 0 else 1
            out = conv_module(f"{prefix}.{b}.conv3", conv_module(f"{prefix}.{b}.conv2", conv_module(
                f"{prefix}.{b}.conv1", x), s), relu=False)
            shortcut = f"{prefix}.{b}.downsample"
            x = F.relu(out + (conv_module(shortcut, x, s, relu=False) if f"{shortcut}.conv.weight" in state else x))
            b += 1
        return x

    def stem(prefix: str, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(conv_module(f"{prefix}conv1", x, (1, 2, 2)), (1, 3, 3), (1, 2, 2), (0, 1, 1))

    def head(features: list[torch.Tensor]) -> torch.Tensor:
        pooled = torch.cat([f.mean((2, 3, 4)) for f in features], 1)
        return F.linear(pooled, state["cls_head.fc_cls.weight"], state["cls_head.fc_cls.bias"])

    if "backbone.slow_path.conv1.conv.weight" not in state:  # SlowOnly
        x = stem("backbone.", x)
        for i in range(1, 5):
            x = res_layer(f"backbone.layer{i}", x, i)
        return head([x])
    slow = stem("backbone.slow_path.", F.interpolate(x, mode="nearest", scale_factor=(1.0 / resample_rate, 1.0, 1.0)))
    fast = stem("backbone.fast_path.", F.interpolate(
        x, mode="nearest", scale_factor=(1.0 / (resample_rate // speed_ratio), 1.0, 1.0)))
    laterals = ["conv1_lateral", "layer1_lateral", "layer2_lateral", "layer3_lateral"]
    for i in range(1, 5):
        lateral = conv_module(f"backbone.slow_path.{laterals[i - 1]}", fast, (speed_ratio, 1, 1))
        slow = res_layer(f"backbone.slow_path.layer{i}", torch.cat([slow, lateral], 1), i)
        fast = res_layer(f"backbone.fast_path.layer{i}", fast, i)
    return head([fast, slow])


# ---------------------------------------------------------------- exactness against pytorchvideo

def pytorchvideo_reference(name: str, frames: int, size: int, **head) -> nn.Module:
    """pytorchvideo's network for ``name`` with its head pool sized to the clip (the authors' rule: all frames ×
    crop / 32, video_model_builder.py ResNetBasicHead pool_size)."""
    hub = import_torchvision("pytorchvideo.models.hub")
    s = size // 32
    torch.manual_seed(0)
    if name == "slow_r50_8x8":  # slow_r50 fixes its pool at (8, 7, 7): the parameter-free pool is replaced
        model = hub.slow_r50(**head)
        model.blocks[5].pool = nn.AvgPool3d((frames, s, s), stride=1)
        return model
    pool = ((frames // ALPHA[name], s, s), (frames, s, s))
    if name == "slowfast_r50_8x8":
        return hub.slowfast_r50(head_pool_kernel_sizes=pool, **head)
    if name == "slowfast_r101_8x8":
        return hub.slowfast_r101(head_pool_kernel_sizes=pool, **head)
    # PySlowFast configs/Kinetics/c2/SLOWFAST_4x16_R50.yaml: ALPHA 8 (the lateral's stride, as PTVSlowFast passes it),
    # BETA_INV 8, FUSION_CONV_CHANNEL_RATIO 2, FUSION_KERNEL_SZ 5, depth 50, the slowfast temporal kernels
    create_slowfast = import_torchvision("pytorchvideo.models.slowfast").create_slowfast
    return create_slowfast(model_depth=50, slowfast_channel_reduction_ratio=(8,), slowfast_conv_channel_fusion_ratio=2,
                           slowfast_fusion_conv_kernel_size=(5, 1, 1), slowfast_fusion_conv_stride=(8, 1, 1),
                           head_pool_kernel_sizes=pool, **head)


def reference_input(name: str, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
    return pack_pathway(x, ALPHA[name]) if name.startswith("slowfast") else x


@pytest.mark.parametrize("name", NAMES)
def test_pytorchvideo_release_loads_and_equals_the_reference(name: str, tmp_path: Path) -> None:
    """pytorchvideo's own network with random weights, saved as its model zoo file: loaded into ours (format detected,
    strict, recognised), the logits on one clip equal pytorchvideo's on the PackPathway of that clip."""
    x = clip(name)
    reference = randomize(pytorchvideo_reference(name, x.shape[2], SIZE).eval())
    assert n_params(reference) == REFERENCE_PARAMS[name]
    model = build_model(name, 400).eval()
    assert n_params(model) == REFERENCE_PARAMS[name]
    walked = pytorchvideo_state(model)  # the writer used where pytorchvideo is absent names what pytorchvideo names
    assert {k: v.shape for k, v in walked.items()} == {k: v.shape for k, v in reference.state_dict().items()}
    entry = get_weights(f"{name}.pytorchvideo_kinetics400")
    torch.save({"model_state": reference.state_dict()}, tmp_path / entry.files[0])
    report = load_pretrained(model, tmp_path / entry.files[0])
    assert report.format == "pytorchvideo" and report.entry == entry.name
    with torch.no_grad():
        expected, got = reference(reference_input(name, x)), model(x)
    assert float((got - expected).abs().max()) <= 1e-4


def test_pyslowfast_copies_of_pytorchvideo_files_read_the_same(tmp_path: Path) -> None:
    """PySlowFast's pysf_model_zoo copies of pytorchvideo's files keep the ``model.`` of its PTVSlowFast wrapper."""
    name = "slowfast_r50_8x8"
    source = fresh(name, seed=1)
    state = {f"model.{k}": v for k, v in pytorchvideo_state(source).items()}
    path = tmp_path / get_weights(f"{name}.pytorchvideo_kinetics400").files[0]
    torch.save({"epoch": 196, "model_state": state, "optimizer_state": {}, "cfg": "MODEL:\n  ARCH: slowfast\n"}, path)
    model = fresh(name, seed=2)
    report = load_pretrained(model, path)
    assert report.format in ("pyslowfast", "pytorchvideo")
    with torch.no_grad():
        assert torch.equal(model(clip(name)), source(clip(name)))


# ---------------------------------------------------------------- every layout, every entry

@pytest.mark.parametrize("entry_name", [pytest.param(n, marks=pytest.mark.slow) if n.startswith("slowfast_r101") else n
                                        for n in ENTRIES])  # R101's pytorchvideo layout: the exactness test
def test_released_layout_loads_and_is_recognised(entry_name: str, tmp_path: Path) -> None:
    """A file in the entry's layout, named as its authors name it, loads strictly into the network the entry builds
    (its ``arch``), is recognised as the entry, and gives the network it was written from."""
    entry = get_weights(entry_name)
    source = fresh(entry.model, seed=1, **entry.arch)
    path = write_release(entry_name, source, tmp_path)
    model = fresh(entry.model, seed=2, **entry.arch)
    report = load_pretrained(model, path)
    assert report.format == entry.format and report.entry == entry_name
    assert not (report.missing or report.unexpected or report.mismatched)
    assert model.pretrained_cfg == entry.pretrained_cfg()
    x = clip(entry.model)
    with torch.no_grad():
        assert torch.equal(model(x), source(x))
    if entry.format == "mmaction2":  # the network mmaction2 runs on that file: its own slow frames, laterals, head
        state = torch.load(path, weights_only=True)["state_dict"]
        alpha = ALPHA.get(entry.model, 1)
        with torch.no_grad():
            expected = mmaction2_forward(state, x, resample_rate=alpha, speed_ratio=alpha)
        assert float((model(x) - expected).abs().max()) <= 1e-4


def test_mmaction2_architecture_differs_where_its_code_does() -> None:
    """The mmaction2 frame choice matters: the same weights with PackPathway's slow frames give other logits than the
    network mmaction2 runs."""
    entry = get_weights("slowfast_r50_8x8.mmaction2_kinetics400")
    source = fresh(entry.model, seed=1, **entry.arch)
    state = mmaction2_state(source)
    x = clip(entry.model)
    with torch.no_grad():
        expected = mmaction2_forward(state, x, resample_rate=4, speed_ratio=4)
        packed = build_model(entry.model, 400, lateral_norm=False).eval()
        packed.load_state_dict(source.state_dict())
        assert float((source(x) - expected).abs().max()) <= 1e-4
        assert float((packed(x) - expected).abs().max()) > 1e-3


# ---------------------------------------------------------------- the authors' test head

def test_fully_conv_head_is_pyslowfasts_test_head() -> None:
    """``fully_conv_scores`` = ResNetBasicHead in eval (head_helper.py): AvgPool3d(T × k × k, stride 1) per pathway,
    concatenation, the projection at every position, softmax over classes (dim 4 after the permute), mean over
    positions; and at a map as large as the pool window it is the softmax of fc on the global average."""
    g = torch.Generator().manual_seed(0)
    slow, fast = torch.randn(2, 16, 2, 4, 4, generator=g), torch.randn(2, 4, 8, 4, 4, generator=g)
    fc = nn.Linear(20, 7)
    nn.init.normal_(fc.weight, std=1.0, generator=g)
    pooled = torch.cat([nn.AvgPool3d((2, 3, 3), stride=1)(slow), nn.AvgPool3d((8, 3, 3), stride=1)(fast)], 1)
    with torch.no_grad():
        expected = fc(pooled.permute(0, 2, 3, 4, 1)).softmax(dim=4).mean([1, 2, 3])
        got = fully_conv_scores([slow, fast], fc, window=3).softmax(dim=1)
        assert torch.allclose(got, expected, atol=1e-6)
        global_fc = fc(torch.cat([slow.mean((2, 3, 4)), fast.mean((2, 3, 4))], 1)).log_softmax(dim=1)
        assert torch.allclose(fully_conv_scores([slow, fast], fc, window=4), global_fc, atol=1e-5)
        assert not torch.allclose(got, global_fc.exp(), atol=1e-3)  # at a larger map the two differ


@pytest.mark.slow
@pytest.mark.parametrize("name", ["slowfast_r50_8x8", "slow_r50_8x8"])
def test_fully_conv_test_at_256_equals_pyslowfasts(name: str, tmp_path: Path) -> None:
    """At the authors' 256 px test crop: PySlowFast's PTVSlowFast/PTVResNet test forward (ptv_model_builder.py: the
    pytorchvideo net with a (T, 7, 7) pool of stride 1 and no global average, Softmax(dim=1), mean over positions)
    equals the softmax of ours with ``fully_conv`` set."""
    x = clip(name, size=256, frames=8)
    reference = randomize(pytorchvideo_reference(name, 8, 224, head_output_with_global_average=False).eval())
    torch.save({"model_state": reference.state_dict()}, tmp_path / "w.pyth")
    model = build_model(name, 400).eval()
    load_pretrained(model, tmp_path / "w.pyth")
    model.fully_conv = True
    with torch.no_grad():
        expected = reference(reference_input(name, x)).softmax(dim=1).mean([2, 3, 4])
        got = model(x).softmax(dim=1)
    assert float((got - expected).abs().max()) <= 1e-5


# ---------------------------------------------------------------- network details

def test_slow_frames_follow_packpathway_or_mmaction2() -> None:
    x = torch.arange(32.0).view(1, 1, 32, 1, 1).expand(1, 3, 32, 2, 2)
    with torch.device("meta"):  # the frame choice needs no weights
        models = [build_model("slowfast_r50_4x16", 4), build_model("slowfast_r50_8x8", 4),
                  build_model("slowfast_r50_4x16", 4, slow_sampling="stride")]
    picked = [model.slow_frames(x)[0, 0, :, 0, 0].long().tolist() for model in models]
    assert picked[0] == [0, 10, 20, 31]  # linspace(0, 31, 4).long()
    assert picked[1] == [0, 4, 8, 13, 17, 22, 26, 31]
    assert picked[2] == [0, 8, 16, 24]  # interpolate(mode='nearest', scale_factor=1/8)
    assert torch.equal(models[2].slow_frames(x), F.interpolate(x, mode="nearest", scale_factor=(1 / 8, 1.0, 1.0)))
    with pytest.raises(ValueError, match="multiple of alpha=4"):
        models[1](torch.randn(1, 3, 30, 32, 32))


def test_parameter_counts_and_mmaction2_variants() -> None:
    """Ours equal pytorchvideo's (REFERENCE_PARAMS); the mmaction2 builds (no lateral BN; R101 lateral kernel 7) round
    to its README's 34.5 M / 34.6 M / 62.9 M / 32.45 M."""
    with torch.device("meta"):
        for name, count in REFERENCE_PARAMS.items():
            assert n_params(build_model(name, 400)) == count
        counts = {n: n_params(build_model(n.split(".")[0], 400, **get_weights(n).arch))
                  for n in ENTRIES if n.split(".")[1].startswith("mmaction2")}
    assert round(counts["slowfast_r50_4x16.mmaction2_kinetics400"] / 1e6, 1) == 34.5
    assert round(counts["slowfast_r50_8x8.mmaction2_kinetics400"] / 1e6, 1) == 34.6
    assert counts["slowfast_r50_8x8.mmaction2_steplr_kinetics400"] == REFERENCE_PARAMS["slowfast_r50_8x8"]
    assert round(counts["slowfast_r101_8x8.mmaction2_kinetics400"] / 1e6, 1) == 62.9
    assert round(counts["slow_r50_8x8.mmaction2_kinetics400"] / 1e6, 2) == 32.45


def test_freezing_stages() -> None:
    with torch.device("meta"):
        model, slow = build_model("slowfast_r50_8x8", 5), build_model("slow_r50_8x8", 5)
    assert [stage_of(n, model) for n in ("slow.conv1.weight", "fast.bn1.bias", "lateral.0.conv.weight",
                                         "slow.layer3.2.conv1.weight", "fast.layer4.0.downsample.0.weight",
                                         "lateral.3.bn.weight", "fc.weight")] == [0, 0, 0, 3, 4, 3, 5]
    freeze(model, "until_layer2")
    trainable = {n.split(".")[0] + "." + n.split(".")[1] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"slow.layer3", "slow.layer4", "fast.layer3", "fast.layer4", "lateral.3", "fc.weight",
                         "fc.bias"}
    assert [stage_of(n, slow) for n in ("conv1.weight", "layer1.0.conv1.weight", "layer4.2.bn3.bias")] == [0, 1, 4]

"""CSN (ir_csn_152, ip_csn_152, csn_r101): exactness against pytorchvideo (csn_r101, create_csn) and against
VMZ pt's networks (torchvision's VideoResNet with VMZ's channel-wise convs), every released layout (VMZ Caffe2
``.pkl``, VMZ pt ``.pth``, pytorchvideo ``.pyth``, mmaction2 ``.pth``) recognised as its registry entry,
parameter counts, the fully convolutional test head.

Where no reference installs (VMZ Caffe2, mmaction2), the released file is written from our model under the key
names read in the authors' code (cited at each writer), independently of the converters' tables.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import import_torchvision
from test_models_weights import BlobWriter, randomize_bn, save_caffe2_pickle
from vidrec.models import build_model, load_pretrained
from vidrec.models.complexity import count_params, gmacs
from vidrec.models.csn import CSN
from vidrec.models.weights.entries import get_weights

torch.set_num_threads(1)
CLIP = torch.randn(1, 3, 8, 64, 64, generator=torch.Generator().manual_seed(0))
#: ours = pytorchvideo's create_csn(model_depth=152) (ir) and csn_r101(); ip = VMZ pt's ip_csn_152 (asserted
#: against its torchvision build in test_vmz_pt_reference_is_exact) and mmaction2's README (33.02M)
PARAMS = {"ir_csn_152": 29_703_568, "ip_csn_152": 33_016_592, "csn_r101": 22_213_776}
LAYERS = ("layer1", "layer2", "layer3", "layer4")


@functools.cache
def _built(name: str) -> CSN:
    torch.manual_seed(0)
    return build_model(name, 400).eval()


def fresh(name: str, seed: int) -> CSN:
    """A copy of the registry network with its own BatchNorm statistics and perturbed weights."""
    model = copy.deepcopy(_built(name))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1 + 0.1 * torch.randn(p.shape, generator=g))
    randomize_bn(model, seed)
    return model


def logits(model: nn.Module, clip: torch.Tensor = CLIP) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(clip)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return float((a - b).abs().max())


def renamed(model: nn.Module, new_module: Callable[[str], str]) -> dict[str, torch.Tensor]:
    """``model``'s state dict with every module path rewritten by ``new_module``."""
    state = {}
    for key, value in model.state_dict().items():
        module, attr = key.rsplit(".", 1)
        state[f"{new_module(module)}.{attr}"] = value.clone()
    return state


def blocks(model: CSN):
    """(layer name, index in the layer, global block index, block) of every bottleneck."""
    count = 0
    for layer in LAYERS:
        for i, block in enumerate(getattr(model, layer)):
            yield layer, i, count, block
            count += 1


def load_and_compare(source: nn.Module, target: nn.Module, path: Path, fmt: str, entry: str | None,
                     clip: torch.Tensor = CLIP) -> float:
    report = load_pretrained(target, path)
    assert report.format == fmt and report.entry == entry
    assert not (report.missing or report.unexpected or report.mismatched)
    return max_diff(logits(source, clip), logits(target, clip))


# ---------------------------------------------------------------- released layouts, written from our model

def vmz_caffe2_blobs(model: CSN) -> dict[str, np.ndarray]:
    """VMZ ``c2/lib/models/r3d_model.py@75c7d98:221-275`` (stem ``conv1``, ``conv1_spatbn_relu``) and
    ``builder/video_model.py@75c7d98``: ``comp_idx`` starts at 0 in each ``add_bottleneck`` (:260) and every
    ``add_conv`` adds 1 (:61); ``3d-sep`` (ir) adds 1 more in ``add_channelwise_conv`` (:194), so ir convs are
    1, 3, 4; ``0.3d`` (ip) names its 1x1x1 conv ``conv_2_middle`` + ``spatbn_2_middle`` (:95-126); each BN
    takes the conv's number (:222-224); ``shortcut_projection_<comp>[_spatbn]`` (:316-336); r3d_model.py
    ``last_out_L<n>`` (:411-415)."""
    w = BlobWriter()
    w.conv(model.conv1, "conv1")
    w.bn(model.bn1, "conv1_spatbn_relu")
    for _, _, comp, block in blocks(model):
        c = f"comp_{comp}"
        w.conv(block.conv1, f"{c}_conv_1")
        w.bn(block.bn1, f"{c}_spatbn_1")
        if model.mode == "ip":
            w.conv(block.conv2[0], f"{c}_conv_2_middle")
            w.bn(block.conv2[1], f"{c}_spatbn_2_middle")
            w.conv(block.conv2[2], f"{c}_conv_2")
            w.bn(block.bn2, f"{c}_spatbn_2")
            w.conv(block.conv3, f"{c}_conv_3")
            w.bn(block.bn3, f"{c}_spatbn_3")
        else:
            w.conv(block.conv2, f"{c}_conv_3")
            w.bn(block.bn2, f"{c}_spatbn_3")
            w.conv(block.conv3, f"{c}_conv_4")
            w.bn(block.bn3, f"{c}_spatbn_4")
        if block.downsample is not None:
            w.conv(block.downsample[0], f"shortcut_projection_{comp}")
            w.bn(block.downsample[1], f"shortcut_projection_{comp}_spatbn")
    w.blobs[f"last_out_L{model.fc.out_features}_w"] = model.fc.weight.detach().numpy().copy()
    w.blobs[f"last_out_L{model.fc.out_features}_b"] = model.fc.bias.detach().numpy().copy()
    w.blobs.update({"lr": np.array(0.001, dtype=np.float32), "model_iter": np.array(1000)})  # training state
    return w.blobs


def vmz_pt_state(model: CSN) -> dict[str, torch.Tensor]:
    """VMZ pt (``pt/vmz/models/utils.py@03cd95f``): torchvision's VideoResNet names, the stem a Sequential
    (``BasicStem_Pool``: stem.0 conv, stem.1 BN), conv1/conv2/conv3 = Sequential(conv, BN[, ReLU]); ip's
    conv2.0 is ``IPConv3DDepthwise`` = Sequential(1x1x1 conv, BN, channel-wise conv)."""
    def new(module: str) -> str:
        if module in ("conv1", "bn1"):
            return f"stem.{int(module == 'bn1')}"
        if not module.startswith("layer"):
            return module
        layer, i, inner = module.split(".", 2)
        if inner.startswith(("downsample", "conv2.")):  # downsample.0/1; ip conv2.0/1/2 inside conv2.0
            inner = inner.replace("conv2.", "conv2.0.")
        else:  # convN -> convN.0, bnN -> convN.1
            inner = f"conv{inner[-1]}.{int(inner.startswith('bn'))}"
        return f"{layer}.{i}.{inner}"

    return renamed(model, new)


def mmaction2_state(model: CSN) -> dict[str, torch.Tensor]:
    """mmaction2 ``ResNet3dCSN`` (``backbones/resnet3d.py@acb79e41``: ConvModule ``conv``/``bn``; downsample a
    ConvModule) with ``CSNBottleneck3d`` (``resnet3d_csn.py@ed914c0d:44-74``: conv2 = Sequential([ip: 1x1x1
    ConvModule], channel-wise ConvModule)), under ``backbone.``; ``I3DHead`` ``cls_head.fc_cls``."""
    ip_inner = {"conv2.0": "conv2.0.conv", "conv2.1": "conv2.0.bn", "conv2.2": "conv2.1.conv",
                "bn2": "conv2.1.bn"}

    def new(module: str) -> str:
        if module == "fc":
            return "cls_head.fc_cls"
        if module in ("conv1", "bn1"):
            return f"backbone.conv1.{'bn' if module == 'bn1' else 'conv'}"
        layer, i, inner = module.split(".", 2)
        if model.mode == "ip" and inner in ip_inner:
            inner = ip_inner[inner]
        elif inner.startswith("downsample"):
            inner = f"downsample.{'bn' if inner.endswith('1') else 'conv'}"
        else:  # convN / bnN -> convN.conv / convN.bn; ir's channel-wise conv2 sits in conv2.0
            n = "2.0" if inner[-1] == "2" else inner[-1]
            inner = f"conv{n}.{'bn' if inner.startswith('bn') else 'conv'}"
        return f"backbone.{layer}.{i}.{inner}"

    return renamed(model, new)


def pytorchvideo_state(model: CSN) -> dict[str, torch.Tensor]:
    """pytorchvideo ``create_csn`` (``models/csn.py@7da857b``): blocks.0 = ResNetBasicStem (conv, norm),
    blocks.1-4 = ResStage.res_blocks (ResBlock: branch1_conv, branch1_norm, branch2 = BottleneckBlock
    conv_a/norm_a ... c), blocks.5 = ResNetBasicHead.proj."""
    letters = {"1": "a", "2": "b", "3": "c"}

    def new(module: str) -> str:
        if module == "fc":
            return "blocks.5.proj"
        if module in ("conv1", "bn1"):
            return f"blocks.0.{'norm' if module == 'bn1' else 'conv'}"
        layer, i, inner = module.split(".", 2)
        if inner.startswith("downsample"):
            inner = f"branch1_{'norm' if inner.endswith('1') else 'conv'}"
        else:
            inner = f"branch2.{'norm' if inner.startswith('bn') else 'conv'}_{letters[inner[-1]]}"
        return f"blocks.{layer[-1]}.res_blocks.{i}.{inner}"

    return renamed(model, new)


# ---------------------------------------------------------------- parameter counts, shapes

@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_count(name: str) -> None:
    assert count_params(name) == PARAMS[name]


@pytest.mark.parametrize("name, zoo_params, zoo_gflops",
                         [("ir_csn_152", 29.6, 96.7), ("ip_csn_152", 32.8, 108.8)])
def test_vmz_model_zoo_figures(name: str, zoo_params: float, zoo_gflops: float) -> None:
    """VMZ ``c2/tutorials/model_zoo.md@4cc542d:35-44`` gives params(M) 29.6 / 32.8 (convolutions and
    classifier: the BatchNorm scales and shifts left out) and GFLOPs 96.7 / 108.8 (the multiply-adds of a
    32×256×256 clip, its test crop)."""
    with torch.device("meta"):
        model = build_model(name, 400)
    batchnorm = sum(p.numel() for m in model.modules() if isinstance(m, nn.BatchNorm3d)
                    for p in m.parameters())
    assert round((PARAMS[name] - batchnorm) / 1e6, 1) == zoo_params
    assert round(gmacs(name, 32, 256), 1) == zoo_gflops


def test_ir_and_ip_blocks() -> None:
    """ir: channel-wise 3x3x3 conv2 with the stride; ip: 1x1x1 conv, BN, channel-wise 3x3x3; strides (2, 2, 2)
    on the first block of layers 2-4 and its projection; 32 frames of 256 give 4x8x8 at layer4."""
    with torch.device("meta"):
        ir, ip = build_model("ir_csn_152", 400), build_model("ip_csn_152", 400)
    conv = ir.layer2[0].conv2
    assert (conv.groups, conv.in_channels, conv.kernel_size, conv.stride) == (128, 128, (3, 3, 3), (2, 2, 2))
    assert ir.layer2[0].downsample[0].stride == (2, 2, 2) and ir.layer1[0].downsample[0].stride == (1, 1, 1)
    one, bn, channelwise = ip.layer3[0].conv2
    assert one.kernel_size == (1, 1, 1) and one.groups == 1 and isinstance(bn, nn.BatchNorm3d)
    assert (channelwise.groups, channelwise.kernel_size, channelwise.stride) == (256, (3, 3, 3), (2, 2, 2))
    assert [len(getattr(ir, n)) for n in LAYERS] == [3, 8, 36, 3]
    with torch.device("meta"):
        assert ir.bn1.eps == ip.layer1[0].conv2[1].eps == 1e-3 and build_model("csn_r101", 5).bn1.eps == 1e-5
        x = ir.maxpool(ir.relu(ir.bn1(ir.conv1(torch.empty(1, 3, 32, 256, 256)))))
        for layer in LAYERS:
            x = getattr(ir, layer)(x)
    assert x.shape == (1, 2048, 4, 8, 8)


# ---------------------------------------------------------------- VMZ Caffe2 .pkl

@pytest.mark.parametrize("name, file, entry", [
    ("ir_csn_152", "irCSN_152_ft_kinetics_from_ig65m_f126851907.pkl", "ir_csn_152.vmz_ig65m_ft_kinetics400"),
    ("ip_csn_152", "ipCSN_152_kinetics_from_scratch_f129594342.pkl", "ip_csn_152.vmz_kinetics400"),
])
def test_vmz_caffe2_pickle(name: str, file: str, entry: str, tmp_path: Path) -> None:
    source = fresh(name, 1)
    blobs = vmz_caffe2_blobs(source)
    projections = sorted(int(k.split("_")[2]) for k in blobs
                         if k.startswith("shortcut_projection") and k.endswith("_w"))
    assert projections == [0, 3, 11, 47]  # the first block of each stage, counted across stages (3, 8, 36, 3)
    assert ("comp_49_conv_4_w" in blobs) == (name == "ir_csn_152")
    save_caffe2_pickle(blobs, tmp_path / file)
    target = fresh(name, 2)
    for m in target.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.eps = 1e-5  # the converter sets VMZ's 1e-3
    assert load_and_compare(source, target, tmp_path / file, "vmz_caffe2", entry) <= 1e-4
    assert target.pretrained_cfg["fully_conv"] and target.pretrained_cfg["crop_size"] == 256


# ---------------------------------------------------------------- VMZ pt .pth

@pytest.mark.parametrize("name, file, entry", [
    ("ir_csn_152", "irCSN_152_ft_kinetics_from_Sports1M_f101599884.pth",
     "ir_csn_152.vmz_pt_sports1m_ft_kinetics400"),
    ("ip_csn_152", "ipCSN_152_ft_kinetics_from_ig65m_f133090949.pth",
     "ip_csn_152.vmz_pt_ig65m_ft_kinetics400"),
])
def test_vmz_pt_state_dict_and_our_own(name: str, file: str, entry: str, tmp_path: Path) -> None:
    """VMZ pt's names load (and are recognised by file name); vidrec's own state dict loads as it is."""
    source = fresh(name, 1)
    torch.save(vmz_pt_state(source), tmp_path / file)
    assert load_and_compare(source, fresh(name, 2), tmp_path / file, "state_dict", entry) <= 1e-4
    torch.save(source.state_dict(), tmp_path / "exported.pth")
    assert load_and_compare(source, fresh(name, 3), tmp_path / "exported.pth", "state_dict", None) == 0.0


def vmz_pt_reference(mode: str) -> nn.Module:
    """VMZ pt's ir_csn_152 / ip_csn_152 (``pt/vmz/models/csn.py@03cd95f:33-42, 67-76``): torchvision's
    VideoResNet with VMZ's ``Conv3DDepthwise`` / ``IPConv3DDepthwise`` and ``BasicStem_Pool``
    (``pt/vmz/models/utils.py@03cd95f:45-59, 92-124``, written here from their definitions), every BatchNorm
    eps 1e-3 (:30-34)."""
    video = import_torchvision("torchvision.models.video.resnet")

    class Conv3DDepthwise(nn.Conv3d):
        def __init__(self, in_planes: int, out_planes: int, midplanes: int | None = None,
                     stride: int = 1) -> None:
            super().__init__(in_planes, out_planes, (3, 3, 3), stride, 1, groups=in_planes, bias=False)

        @staticmethod
        def get_downsample_stride(stride: int) -> tuple[int, int, int]:
            return (stride, stride, stride)

    class IPConv3DDepthwise(nn.Sequential):
        def __init__(self, in_planes: int, out_planes: int, midplanes: int, stride: int = 1) -> None:
            super().__init__(nn.Conv3d(in_planes, out_planes, 1, bias=False), nn.BatchNorm3d(out_planes),
                             Conv3DDepthwise(out_planes, out_planes, None, stride))

        get_downsample_stride = Conv3DDepthwise.get_downsample_stride

    def stem() -> nn.Sequential:
        return nn.Sequential(nn.Conv3d(3, 64, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
                             nn.BatchNorm3d(64), nn.ReLU(inplace=True),
                             nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))

    maker = IPConv3DDepthwise if mode == "ip" else Conv3DDepthwise
    torch.manual_seed(3)
    model = video.VideoResNet(video.Bottleneck, [maker] * 4, [3, 8, 36, 3], stem)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.eps = 1e-3
    randomize_bn(model, 4)
    return model.eval()


@pytest.mark.parametrize("name", ["ir_csn_152", "ip_csn_152"])
def test_vmz_pt_reference_is_exact(name: str, tmp_path: Path) -> None:
    """Our network = VMZ pt's (built on torchvision): same parameter count, same logits from its weights."""
    reference = vmz_pt_reference(name[:2])
    assert sum(p.numel() for p in reference.parameters()) == PARAMS[name]
    file = {"ir_csn_152": "irCSN_152_ft_kinetics_from_ig65m_f126851907.pth",
            "ip_csn_152": "ipCSN_152_ft_kinetics_from_Sports1M_f111279053.pth"}[name]
    torch.save(reference.state_dict(), tmp_path / file)  # what model_urls serve: a plain state dict
    tag = "ig65m" if "ig65m" in file else "sports1m"
    entry = f"{name}.vmz_pt_{tag}_ft_kinetics400"
    assert load_and_compare(reference, fresh(name, 2), tmp_path / file, "state_dict", entry) <= 1e-4


# ---------------------------------------------------------------- pytorchvideo .pyth

def save_pyth(state: dict[str, torch.Tensor], path: Path) -> Path:
    """As PySlowFast's ``save_checkpoint`` writes it (the zoo's ``.pyth``; the hub reads ``model_state``)."""
    torch.save({"epoch": 196, "model_state": state, "optimizer_state": {}, "cfg": "MODEL:\n  ARCH: csn\n"},
               path)
    return path


def test_pytorchvideo_layout_from_key_names(tmp_path: Path) -> None:
    source = fresh("csn_r101", 1)
    path = save_pyth(pytorchvideo_state(source), tmp_path / "CSN_32x2_R101.pyth")
    target = fresh("csn_r101", 2)
    assert load_and_compare(source, target, path, "pytorchvideo", "csn_r101.pytorchvideo_kinetics400") <= 1e-4
    assert target.pretrained_cfg["mean"] == [0.45] * 3 and target.pretrained_cfg["fully_conv"]


def pytorchvideo_head_global(model: nn.Module) -> nn.Module:
    """The reference with its head's fixed AvgPool3d window (which needs the 32×224 clip) replaced by the
    global average it equals at that clip: no parameter changes, so a small clip tests the whole mapping."""
    model.blocks[-1].pool = nn.AdaptiveAvgPool3d(1)
    return model


@pytest.mark.parametrize("name", ["csn_r101", "ir_csn_152"])
def test_pytorchvideo_reference_is_exact(name: str, tmp_path: Path) -> None:
    """csn_r101 = pytorchvideo's hub csn_r101; ir_csn_152 = create_csn(model_depth=152) with the max pool of
    VMZ's released models (stem_pool, as csn_r101 and PySlowFast's PTVCSN): parameter counts and logits."""
    if name == "csn_r101":
        reference = import_torchvision("pytorchvideo.models.hub").csn_r101()
    else:
        create_csn = import_torchvision("pytorchvideo.models.csn").create_csn
        reference = create_csn(model_depth=152, stem_pool=nn.MaxPool3d)
    assert sum(p.numel() for p in reference.parameters()) == PARAMS[name] == count_params(name)
    randomize_bn(reference, 5)
    reference = pytorchvideo_head_global(reference).eval()
    file = "CSN_32x2_R101.pyth" if name == "csn_r101" else "csn.pyth"
    path = save_pyth(reference.state_dict(), tmp_path / file)
    entry = "csn_r101.pytorchvideo_kinetics400" if name == "csn_r101" else None
    target = fresh(name, 2)
    assert load_and_compare(reference, target, path, "pytorchvideo", entry) <= 1e-4
    assert target.bn1.eps == 1e-5


def test_fully_conv_head_is_pyslowfast_ptvcsn(tmp_path: Path) -> None:
    """At a 256 crop the test head of PySlowFast's PTVCSN (``ptv_model_builder.py@198bf9d:530-577``: head
    AvgPool3d (NUM_FRAMES // 8, 7, 7) stride 1 without global average, softmax, mean over positions) is ours
    with ``fully_conv``: 2x2 positions, whose mean of softmax is not the softmax of the global head."""
    create_csn = import_torchvision("pytorchvideo.models.csn").create_csn
    reference = create_csn(model_depth=101, stem_pool=nn.MaxPool3d, head_pool_kernel_size=(1, 7, 7),
                           head_output_with_global_average=False)
    randomize_bn(reference, 5)
    path = save_pyth(reference.state_dict(), tmp_path / "CSN_32x2_R101.pyth")
    target = fresh("csn_r101", 2)
    load_pretrained(target, path)
    clip = torch.randn(1, 3, 8, 256, 256, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        per_position = reference.eval()(clip)
        assert per_position.shape == (1, 400, 1, 2, 2)
        expected = per_position.softmax(dim=1).mean(dim=(2, 3, 4))
        target.fully_conv = True
        ours = target.eval()(clip).softmax(dim=1)
        target.fully_conv = False
        assert max_diff(ours, expected) <= 1e-6
        assert max_diff(target(clip).softmax(dim=1), expected) > 1e-6


@pytest.mark.slow
def test_pytorchvideo_csn_r101_at_its_clip(tmp_path: Path) -> None:
    """The unmodified hub model (head AvgPool3d (4, 7, 7)) at its 32×224 clip."""
    reference = import_torchvision("pytorchvideo.models.hub").csn_r101()
    randomize_bn(reference, 5)
    path = save_pyth(reference.state_dict(), tmp_path / "CSN_32x2_R101.pyth")
    clip = torch.randn(1, 3, 32, 224, 224, generator=torch.Generator().manual_seed(2))
    target = fresh("csn_r101", 2)
    entry = "csn_r101.pytorchvideo_kinetics400"
    assert load_and_compare(reference.eval(), target, path, "pytorchvideo", entry, clip) <= 1e-4


# ---------------------------------------------------------------- mmaction2 .pth

@pytest.mark.parametrize("name, entry", [
    ("ir_csn_152", "ir_csn_152.mmaction2_ig65m_ft_kinetics400"),
    ("ip_csn_152", "ip_csn_152.mmaction2_vmz_sports1m_ft_kinetics400"),
])
def test_mmaction2_checkpoint(name: str, entry: str, tmp_path: Path) -> None:
    source = fresh(name, 1)
    path = tmp_path / get_weights(entry).files[0]
    meta = {"mmaction2_version": "1.0.0", "epoch": 58}
    torch.save({"meta": meta, "state_dict": mmaction2_state(source)}, path)
    target = fresh(name, 2)
    assert load_and_compare(source, target, path, "mmaction2", entry) <= 1e-4
    assert not target.pretrained_cfg["fully_conv"] and target.pretrained_cfg["num_crops"] == 3


def test_fully_conv_head_follows_vmz() -> None:
    """VMZ's test head (``r3d_model.py@75c7d98:379-409``, ``loss_creator.py@de050d8:102-106``): average pool
    of kernel (T, 7, 7) stride 1 on layer4, the classifier at every position, softmax per position, mean."""
    model = fresh("csn_r101", 1)
    clip = torch.randn(1, 3, 8, 256, 256, generator=torch.Generator().manual_seed(3))
    features = {}
    model.layer4.register_forward_hook(lambda module, inputs, output: features.update(x=output))
    model.fully_conv = True
    with torch.no_grad():
        probabilities = model.eval()(clip).softmax(dim=1)
        pooled = nn.functional.avg_pool3d(features["x"], (1, 7, 7), stride=1)  # (1, 2048, 1, 2, 2)
        positions = model.fc(pooled.flatten(2).transpose(1, 2))  # (1, 4, 400)
    assert pooled.shape[2:] == (1, 2, 2)
    assert max_diff(probabilities, positions.softmax(dim=-1).mean(dim=1)) <= 1e-6

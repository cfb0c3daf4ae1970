"""Released checkpoints of existing families: video-nonlocal-net's C2D networks and its remaining Kinetics files
(300k/600k, frozen-BN 32×4 and 128×1), VMZ's 18-layer Caffe2 models and kenshohara's UCF-101/HMDB-51 ResNeXt-101.

Files are written here in each release's layout from the authors' key names (the writers of
test_models_weights), loaded with ``load_pretrained`` and must be recognised as their registry entry.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import test_models_weights
from conftest import import_torchvision
from test_models_weights import (
    fresh,
    nonlocal_blobs,
    randomize_bn,
    resnet50_2d_state,
    save_caffe2_pickle,
    write_released,
)
from vidrec.models import build_model, load_pretrained
from vidrec.models.i3d import NonLocalBlock
from vidrec.models.weights.entries import CLASS_LISTS, get_weights

torch.set_num_threads(1)

C2D_R50_PARAMS = 24_327_632  # torchvision's ResNet-50 (25_557_032) with a 400-class fc instead of 1000
#: the five non-local blocks (res3: 2 of 512 channels, res4: 3 of 1024): theta/phi/g/out 1x1x1 convs with bias, BN
NL_BLOCKS_PARAMS = sum(4 * c * c // 2 + 3 * c // 2 + c + 2 * c for c in (512, 512, 1024, 1024, 1024))


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- the C2D networks

def test_c2d_parameter_counts() -> None:
    """C2D ResNet-50 = the 2D ResNet-50 (its convs as 1x1x1-in-time kernels); NL C2D adds the five blocks."""
    with torch.device("meta"):
        c2d, c2d_nl, c2d_1000 = build_model("c2d_r50", 400), build_model("c2d_nl_r50", 400), build_model("c2d_r50", 1000)
    assert n_params(c2d) == C2D_R50_PARAMS
    assert n_params(c2d_1000) == 25_557_032  # torchvision resnet50(): the ImageNet ResNet-50
    assert NL_BLOCKS_PARAMS == 7_358_464
    assert n_params(c2d_nl) == C2D_R50_PARAMS + NL_BLOCKS_PARAMS == 31_686_096
    assert n_params(c2d_nl.nonlocal_blocks) == NL_BLOCKS_PARAMS


def test_c2d_is_torchvision_resnet50_key_for_key() -> None:
    """Every tensor of c2d_r50 is the 2D ResNet-50's under the same name, with a temporal extent of 1."""
    models = import_torchvision("torchvision.models")
    resnet = models.resnet50(num_classes=400)
    with torch.device("meta"):
        c2d = build_model("c2d_r50", 400)
    ours = c2d.state_dict()
    assert n_params(c2d) == n_params(resnet)
    theirs = resnet.state_dict()
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        shape = ours[key].shape
        assert (shape[:2] + shape[3:] if len(shape) == 5 else shape) == value.shape, key
        assert len(shape) != 5 or shape[2] == 1, key


def test_c2d_kernels_and_pools() -> None:
    """obtain_arc(1): no temporal kernel anywhere; pool1 1x3x3 / pool2 2x1x1 (resnet_video.py), conv1 and pool1
    with temporal stride 2 in the 32×2 stem (resnet_video_org.py)."""
    with torch.device("meta"):
        c2d, c2d_org = build_model("c2d_nl_r50", 400), build_model("c2d_r50", 400, temporal_stride=True)
    for model in (c2d, c2d_org):
        assert all(m.kernel_size[0] == 1 for m in model.modules() if isinstance(m, nn.Conv3d))
        assert model.conv1.kernel_size == (1, 7, 7) and model.conv1.padding == (0, 3, 3)
        assert model.pool2.kernel_size == (2, 1, 1)
    assert c2d.conv1.stride == (1, 2, 2) and c2d.maxpool.kernel_size == (1, 3, 3)
    assert c2d_org.conv1.stride == (2, 2, 2) and c2d_org.maxpool.kernel_size == (2, 3, 3)
    assert sorted(c2d.nonlocal_blocks) == ["layer2_1", "layer2_3", "layer3_1", "layer3_3", "layer3_5"]


@pytest.mark.parametrize("name", ["c2d_r50", "c2d_nl_r50"])
def test_c2d_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, 5).train()
    out = model(torch.randn(2, 3, 8, 64, 64))
    assert out.shape == (2, 5)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_c2d_sees_no_frame_order() -> None:
    """C2D's only temporal operations are max pools over frame pairs and (NL) attention over all positions, so a
    reversed clip (pairs map to pairs) gives the same logits; I3D's temporal kernels do not."""
    x = torch.randn(1, 3, 8, 32, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for name in ("c2d_r50", "c2d_nl_r50", "i3d_r50_8x8"):
        model = fresh(name, 10, seed=1)
        randomize_bn(model)  # residual branches and non-local blocks away from their zero-gamma start
        with torch.no_grad():  # float64: summation order aside, equal
            same = torch.allclose(model.double()(x), model(x.flip(2)), rtol=0, atol=1e-9)
        assert same == name.startswith("c2d"), name


def test_nonlocal_groups_of_frames() -> None:
    """add_nonlocal_group: with groups of 4, frames 0-3 and 4-7 attend only within their group."""
    torch.manual_seed(0)
    block = NonLocalBlock(16, bn=False, group_size=4).eval()
    assert not any(k.startswith("bn.") for k in block.state_dict())
    x = torch.randn(2, 16, 8, 6, 6)
    assert torch.equal(block(x), x)  # the output conv starts at zero (NONLOCAL.USE_ZERO_INIT_CONV)
    nn.init.normal_(block.out.weight, std=0.1)
    with torch.no_grad():
        grouped = block(x)
        block.group_size = None
        separate = torch.cat([block(x[:, :, :4]), block(x[:, :, 4:])], dim=2)
        whole = block(x)
        block.group_size = 4
        assert torch.equal(block(x[:, :, :4]), separate[:, :, :4])  # T = group: one group
    torch.testing.assert_close(grouped, separate, rtol=0, atol=1e-6)
    assert not torch.allclose(grouped, whole, atol=1e-4)
    with pytest.raises(ValueError, match="multiple of 4"):
        block(x[:, :, :6])


# ---------------------------------------------------------------- C2D weights

def test_c2d_caffe2_blobs_load_and_are_recognised(tmp_path: Path) -> None:
    """A video-nonlocal-net C2D pickle (5-D kernels of temporal extent 1, resnet_video.py blob names)."""
    source = fresh("c2d_r50", seed=1)
    randomize_bn(source)
    blobs = nonlocal_blobs(source)
    assert blobs["conv1_w"].shape == (64, 3, 1, 7, 7) and blobs["res2_0_branch2a_w"].shape == (64, 64, 1, 1, 1)
    assert blobs["res5_2_branch2c_bn_riv"].shape == (2048,) and not any(k.startswith("nonlocal") for k in blobs)
    blobs.update({"model_iter": 400000, "lr": np.array([1e-4], dtype=np.float32)})  # saved beside the weights
    save_caffe2_pickle(blobs, tmp_path / "c2d_baseline_8x8_IN_pretrain_400k.pkl")
    target = fresh("c2d_r50", seed=2)
    report = load_pretrained(target, tmp_path / "c2d_baseline_8x8_IN_pretrain_400k.pkl")
    assert report.format == "detectron_caffe2" and report.entry == "c2d_r50.nlnet_kinetics400_8x8"
    assert not (report.missing or report.unexpected or report.mismatched)
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.equal(source(x), target(x))


def test_c2d_from_caffe2_imagenet_resnet50(tmp_path: Path) -> None:
    """The authors' initialisation (r50_pretrain_c2_model_iter450450_clean.pkl: the same names, 4-D kernels and a
    1000-class pred): each kernel becomes one of temporal extent 1; the model keeps its own classifier."""
    source = fresh("c2d_r50", 1000, seed=1)
    randomize_bn(source)
    blobs = {k: v[:, :, 0] if v.ndim == 5 else v for k, v in nonlocal_blobs(source).items()}
    save_caffe2_pickle(blobs, tmp_path / "r50_pretrain_c2_model_iter450450_clean.pkl")
    target = fresh("c2d_r50", 400, seed=2)
    fc_before = target.fc.weight.clone()
    report = load_pretrained(target, tmp_path / "r50_pretrain_c2_model_iter450450_clean.pkl", skip_head=True)
    assert report.format == "detectron_caffe2" and report.entry is None
    got, want = target.state_dict(), source.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want if not k.startswith("fc."))
    assert torch.equal(target.fc.weight, fc_before)


@pytest.mark.parametrize("name", ["c2d_r50", "c2d_nl_r50"])
def test_c2d_imagenet_2d_kernels_of_extent_one(name: str, tmp_path: Path) -> None:
    """torchvision's ImageNet ResNet-50 into C2D: every 2D kernel becomes a 1×k×k kernel unchanged (inflating over
    T = 1 divides by 1); the classifier and the non-local blocks keep their initialisation."""
    state = resnet50_2d_state()
    torch.save(state, tmp_path / "resnet50.pth")
    target = fresh(name, num_classes=10)
    head = target.fc.weight.clone()
    nl_before = {k: v.clone() for k, v in target.nonlocal_blocks.state_dict().items()}
    report = load_pretrained(target, tmp_path / "resnet50.pth")
    assert report.format == "imagenet_2d" and report.head_replaced
    got = target.state_dict()
    for key, value in state.items():
        if key.startswith("fc."):
            continue
        assert torch.equal(got[key][:, :, 0] if got[key].ndim == 5 else got[key], value), key
    assert torch.equal(target.fc.weight, head)
    assert all(torch.equal(v, nl_before[k]) for k, v in target.nonlocal_blocks.state_dict().items())


# ---------------------------------------------------------------- every new entry, written in its layout

NEW_ENTRIES = [
    "c2d_r50.nlnet_kinetics400_8x8", "c2d_r50.nlnet_kinetics400_32x2", "c2d_nl_r50.nlnet_kinetics400_8x8",
    "c2d_nl_r50.nlnet_kinetics400_32x2", "i3d_r50_8x8.nlnet_kinetics400_300k", "i3d_r50_8x8.nlnet_kinetics400_600k_4gpu",
    "i3d_r50_8x8.nlnet_kinetics400_300k_4gpu", "i3d_r50.nlnet_kinetics400_32x4", "i3d_nl_r50.nlnet_kinetics400_32x4",
    "i3d_r50_32x2.nlnet_kinetics400_128x1", "i3d_nl_r50_32x2.nlnet_kinetics400_128x1",
    "r2plus1d_18.vmz_kinetics400_8f", "r2plus1d_18.vmz_kinetics400_16f", "r3d_18.vmz_kinetics400_8f",
    "r3d_18.vmz_kinetics400_16f", "mc3_18.vmz_kinetics400_8f", "mc3_18.vmz_kinetics400_16f",
    "resnext3d_101.kenshohara2018_ucf101_split1", "resnext3d_101.kenshohara2018_ucf101_split1_64f",
    "resnext3d_101.kenshohara2018_hmdb51_split1", "resnext3d_101.kenshohara2018_hmdb51_split1_64f",
]
#: one file per (network, layout, architecture) in the fast tier; the others repeat it with another file name
FAST = {"c2d_r50.nlnet_kinetics400_32x2", "c2d_nl_r50.nlnet_kinetics400_8x8", "i3d_nl_r50.nlnet_kinetics400_32x4",
        "i3d_r50_32x2.nlnet_kinetics400_128x1", "r2plus1d_18.vmz_kinetics400_8f", "mc3_18.vmz_kinetics400_16f",
        "resnext3d_101.kenshohara2018_hmdb51_split1"}
FROZEN_BN = {n for n in NEW_ENTRIES if n.endswith(("_32x4", "_128x1"))}


def _affine_bn(writer: test_models_weights.BlobWriter, module: nn.Module, name: str) -> None:
    """MODEL.USE_AFFINE checkpoints: AffineNd's scale and shift only; a non-local block without BN has none."""
    if isinstance(module, nn.BatchNorm3d):
        writer.blobs[name + "_s"] = module.weight.detach().numpy().copy()
        writer.blobs[name + "_b"] = module.bias.detach().numpy().copy()


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in NEW_ENTRIES])
def test_new_release_loads_and_is_recognised(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = get_weights(name)
    source = fresh(name, entry.fc_classes, seed=1)  # the network the entry's file needs (its arch)
    randomize_bn(source)
    for block in getattr(source, "nonlocal_blocks", {}).values():
        nn.init.normal_(block.out.weight, std=0.01)  # (zero-initialised without BN)
    if entry.format == "vmz_caffe2":
        for m in source.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.eps = 1e-3  # VMZ's SpatialBN epsilon, set by the converter
    if name in FROZEN_BN:  # BN stored as affine: the loaded statistics are the identity
        monkeypatch.setattr(test_models_weights.BlobWriter, "bn", _affine_bn)
        with torch.no_grad():
            for m in source.modules():
                if isinstance(m, nn.BatchNorm3d):
                    m.running_mean.zero_()
                    m.running_var.fill_(1 - m.eps)
    path = write_released(name, source, tmp_path)
    assert path.name == entry.files[0]
    target = fresh(name, entry.fc_classes, seed=2)
    report = load_pretrained(target, path)
    assert report.format == entry.format and report.entry == name
    assert not (report.missing or report.unexpected or report.mismatched)
    assert target.pretrained_cfg == entry.pretrained_cfg()
    x = torch.randn(1, 3, entry.frames, 32, 32, generator=torch.Generator().manual_seed(0))  # NL groups in res3
    with torch.no_grad():
        assert float((source(x) - target(x)).abs().max()) <= 1e-5


def test_frozen_bn_nonlocal_file_needs_its_architecture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The frozen-BN non-local files have no non-local BN blobs: the default i3d_nl_r50 does not load them (the
    entry's arch builds the network that does)."""
    monkeypatch.setattr(test_models_weights.BlobWriter, "bn", _affine_bn)
    name = "i3d_nl_r50.nlnet_kinetics400_32x4"
    assert get_weights(name).arch == {"nl_bn": False, "nl_group_size": 4}
    path = write_released(name, fresh(name, seed=1), tmp_path)
    with pytest.raises(Exception, match="nonlocal_blocks.layer2_1.bn"):
        load_pretrained(fresh("i3d_nl_r50", seed=2), path)


def test_vmz_r2plus1d_18_entry_network() -> None:
    """VMZ's R(2+1)D-18 (mid-planes per conv) is r2plus1d_18 with mid_per_conv=True: 33_370_839 parameters
    (torchvision's layout: 31_505_325); R3D-18 and MC3-18 are torchvision's networks."""
    with torch.device("meta"):
        vmz = build_model("r2plus1d_18.vmz_kinetics400_8f")
        assert n_params(vmz) == 33_370_839 and n_params(build_model("r2plus1d_18", 400)) == 31_505_325
        assert n_params(build_model("r3d_18.vmz_kinetics400_16f")) == 33_371_472
        assert n_params(build_model("mc3_18.vmz_kinetics400_16f")) == 11_695_440
    assert vmz.layer2[0].conv2[0][0].out_channels == 288  # r2plus1d_mid_planes(128, 128), not (64, 128)'s 230


def test_fine_tuned_kenshohara_entries() -> None:
    for data, classes in (("ucf101", 101), ("hmdb51", 51)):
        for suffix, frames in (("", 16), ("_64f", 64)):
            entry = get_weights(f"resnext3d_101.kenshohara2018_{data}_split1{suffix}")
            assert (entry.fc_classes, entry.classes, entry.frames, entry.clip_stride) == (classes, data, frames, frames)
            assert entry.class_list in CLASS_LISTS

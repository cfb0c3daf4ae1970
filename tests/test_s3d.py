"""S3D (vidrec.models.s3d) against torchvision's ``s3d``, and its released state dict (weights.s3d)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import import_torchvision
from test_models_weights import randomize_bn
from vidrec.models import build_model, load_pretrained
from vidrec.models.complexity import count_params
from vidrec.models.finetune import freeze
from vidrec.models.weights.entries import get_weights

torch.set_num_threads(1)
TV_PARAMS = 8_320_048  # torchvision 0.29.1 models/video/s3d.py:171 (num_params of KINETICS400_V1)
ENTRY = "s3d.tv_kinetics400"


def fresh(num_classes: int = 400, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("s3d", num_classes).eval()


def torchvision_s3d(tmp_path: Path) -> tuple[nn.Module, nn.Module]:
    """torchvision's network with random weights and BatchNorm statistics, saved as torchvision publishes it
    (a bare state dict under the released file name), and our model loaded from that file."""
    video = import_torchvision("torchvision.models.video")
    torch.manual_seed(5)
    reference = video.s3d(num_classes=400)
    randomize_bn(reference)
    path = tmp_path / get_weights(ENTRY).files[0]
    torch.save(reference.state_dict(), path)
    model = fresh()
    report = load_pretrained(model, path)
    assert report.format == "state_dict" and report.entry == ENTRY
    assert model.pretrained_cfg == get_weights(ENTRY).pretrained_cfg()
    return reference.eval(), model


def test_torchvision_s3d_logits(tmp_path: Path) -> None:
    """The smallest clip torchvision's S3D takes (14 frames, 209 px: one (2, 7, 7) pooling window)."""
    reference, model = torchvision_s3d(tmp_path)
    clip = torch.randn(1, 3, 14, 209, 209, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert float((model(clip) - reference(clip)).abs().max()) <= 1e-4


@pytest.mark.slow
def test_torchvision_s3d_logits_over_several_positions(tmp_path: Path) -> None:
    """24 frames at 256 px leave 2 x 2 x 2 pooling positions: torchvision's conv classifier averaged over them
    against ``fc`` of the averaged pooled features."""
    reference, model = torchvision_s3d(tmp_path)
    clip = torch.randn(1, 3, 24, 256, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert reference.features(clip).shape[2:] == (3, 8, 8)
        assert float((model(clip) - reference(clip)).abs().max()) <= 1e-4


def test_parameter_count_equals_torchvision() -> None:
    video = import_torchvision("torchvision.models.video")
    with torch.device("meta"):
        reference = sum(p.numel() for p in video.s3d(num_classes=400).parameters())
    assert reference == TV_PARAMS == count_params("s3d")


def test_parameter_count() -> None:
    assert count_params("s3d") == TV_PARAMS


def test_torchvision_layout_without_torchvision(tmp_path: Path) -> None:
    """A state dict under torchvision's names (``classifier.1`` a (K, 1024, 1, 1, 1) conv) loads and gives the
    source model's logits; vidrec's own state dict (``fc``) loads as well."""
    torch.manual_seed(1)
    source = fresh(seed=1)
    randomize_bn(source)
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("fc.")}
    state["classifier.1.weight"] = source.fc.weight.detach().clone()[:, :, None, None, None]
    state["classifier.1.bias"] = source.fc.bias.detach().clone()
    clip = torch.randn(1, 3, 8, 64, 64)
    for file, content in (("s3d-d76dad2f.pth", state), ("s3d_own.pt", source.state_dict())):
        torch.save(content, tmp_path / file)
        target = fresh(seed=2)
        report = load_pretrained(target, tmp_path / file)
        assert report.format == "state_dict" and report.entry == ENTRY  # the only state-dict entry of s3d
        with torch.no_grad():
            assert torch.equal(source(clip), target(clip))


def test_head_is_the_conv_classifier_averaged_over_positions() -> None:
    """On a feature map: avg pool (2, 7, 7) stride 1, the classifier as a 1x1x1 conv at every position, mean
    over positions (torchvision's head) equals ``fc`` of the mean pooled feature; small maps pool what they
    have."""
    model = fresh(10)
    model.features = nn.Identity()
    conv = model.fc.weight[:, :, None, None, None]
    for shape in ((2, 1024, 4, 9, 8), (1, 1024, 1, 3, 3)):
        x = torch.randn(shape)
        window = (min(2, shape[2]), min(7, shape[3]), min(7, shape[4]))
        expected = F.conv3d(F.avg_pool3d(x, window, stride=1), conv, model.fc.bias).mean((2, 3, 4))
        with torch.no_grad():
            assert torch.allclose(model(x), expected, atol=1e-5)


def test_stages_follow_the_output_stride() -> None:
    """until_layer2 freezes the stem, Conv 2b/2c (stride 4), Mixed 3b/3c (stride 8), not Mixed 4x/5x."""
    with torch.device("meta"):
        model = freeze(build_model("s3d", 5), "until_layer2")
    frozen = {n.split(".")[1] for n, p in model.named_parameters() if not p.requires_grad}
    trainable = {n.split(".")[1] for n, p in model.named_parameters()
                 if p.requires_grad and n.startswith("features")}
    assert frozen == {"0", "2", "3", "5", "6"} and trainable == {"8", "9", "10", "11", "12", "14", "15"}
    assert model.fc.weight.requires_grad


@pytest.mark.parametrize("frames,size", [(8, 64), (13, 97)])
def test_small_and_odd_clips_run(frames: int, size: int) -> None:
    with torch.no_grad():
        assert fresh(3)(torch.randn(1, 3, frames, size, size)).shape == (1, 3)

"""TSN / TSM (vidrec.models.tsm) and their released layouts (vidrec.models.weights.tsm).

References: torchvision's ResNet-50 (random weights) for the 2D backbone; for the authors' networks a
test-local rebuild of mit-han-lab/temporal-shift-module's ``TSN`` (ops/models.py@d6da93d: ``base_model`` =
torchvision ResNet, ``fc`` -> Dropout, ``new_fc``, avg consensus) with their shift formula
(ops/temporal_shift.py@51b29f3:27-44) around ``conv1`` of every bottleneck, as ``make_temporal_shift(place=
'blockres')`` puts it (:120-137).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import import_torchvision
from test_models_weights import randomize_bn
from vidrec.errors import CheckpointError
from vidrec.models import build_model, load_pretrained
from vidrec.models.complexity import count_params
from vidrec.models.tsm import TemporalShift, temporal_shift
from vidrec.models.weights.entries import get_weights, list_weights

torch.set_num_threads(1)
CLIP = torch.randn(1, 3, 8, 32, 32, generator=torch.Generator().manual_seed(0))
RESNET50_400 = 24_327_632  # torchvision resnet50(num_classes=400): 23,508,032 backbone + 2048 x 400 + 400


def fresh(name: str, num_classes: int = 400, seed: int = 0, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(name, num_classes, **kwargs).eval()


@cache
def source(name: str, num_classes: int = 400) -> nn.Module:
    """A model with random weights and BatchNorm statistics, built once per test session (never modified)."""
    model = fresh(name, num_classes, seed=1)
    randomize_bn(model)
    return model


# ---------------------------------------------------------------- the shift


def test_shift_table() -> None:
    """T = 3 frames, C = 4 channels, fold_div 4 (fold 1): channel 0 comes from the next frame, channel 1 from
    the previous one, zeros at the ends; channels 2, 3 unchanged. x[t, c] = 10 t + c + 1."""
    x = (torch.arange(3)[:, None] * 10 + torch.arange(4)[None] + 1).float()[:, :, None, None]
    expected = torch.tensor([[11, 0, 3, 4],
                             [21, 2, 13, 14],
                             [0, 12, 23, 24]]).float()
    assert torch.equal(temporal_shift(x, segments=3, fold_div=4)[:, :, 0, 0], expected)


def authors_rule(x: torch.Tensor, segments: int, fold_div: int) -> torch.Tensor:
    """The README's formula, element by element: out[t, c] = x[t + 1, c] for c < fold, x[t - 1, c] for
    fold <= c < 2 fold, x[t, c] otherwise; 0 past either end of a clip."""
    nt, c = x.shape[:2]
    fold = c // fold_div
    out = torch.zeros_like(x)
    for i in range(nt):
        t = i % segments
        for ch in range(c):
            src = t + 1 if ch < fold else t - 1 if ch < 2 * fold else t
            if 0 <= src < segments:
                out[i, ch] = x[i - t + src, ch]
    return out


@pytest.mark.parametrize("clips,segments,channels,fold_div", [(1, 1, 8, 8), (2, 3, 16, 8), (1, 8, 64, 8),
                                                              (3, 4, 10, 4), (2, 5, 7, 8)])
def test_shift_matches_the_authors_rule(clips: int, segments: int, channels: int, fold_div: int) -> None:
    x = torch.randn(clips * segments, channels, 2, 3)
    assert torch.equal(temporal_shift(x, segments, fold_div), authors_rule(x, segments, fold_div))


def test_shift_gradient_is_the_reverse_shift() -> None:
    """The adjoint of the shift moves the two folds the other way: in time-reversed clips, the same shift."""
    x = torch.randn(2 * 4, 16, 3, 3, requires_grad=True)
    g = torch.randn_like(x)
    (temporal_shift(x, 4) * g).sum().backward()

    def reverse(t: torch.Tensor) -> torch.Tensor:
        return t.view(2, 4, *t.shape[1:]).flip(1).reshape(t.shape)

    assert torch.equal(x.grad, reverse(authors_rule(reverse(g), 4, 8)))


def test_tsm_shifts_within_each_clip_only() -> None:
    """Changing the last frame of clip 0 changes TSM's features of the other frames of clip 0 (16 shifts reach
    back 3 frames), never those of clip 1; TSN's features of the other frames do not change at all."""
    clip = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(3))
    other = clip.clone()
    other[0, :, 3] += 1
    for name in ("tsm_r50", "tsn_r50"):
        model = source(name)
        with torch.no_grad():
            a, b = model.frame_features(clip), model.frame_features(other)
        assert torch.equal(a[1], b[1]) and not torch.equal(a[0, 3], b[0, 3])
        assert torch.equal(a[0, :3], b[0, :3]) == (name == "tsn_r50")


def test_segments_follow_the_clip() -> None:
    model = source("tsm_r50")
    shifts = [m for m in model.modules() if isinstance(m, TemporalShift)]
    assert len(shifts) == 16 and all(s.fold_div == 8 for s in shifts)  # every bottleneck of ResNet-50
    with torch.no_grad():
        model(torch.randn(1, 3, 5, 32, 32))
    assert {s.segments for s in shifts} == {5}


def test_partial_bn_freezes_every_batchnorm_but_the_first() -> None:
    with torch.device("meta"):
        model = build_model("tsm_r50", 5, partial_bn=True).train()
        plain = build_model("tsm_r50", 5).train()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns[0] is model.bn1 and model.bn1.training and model.bn1.weight.requires_grad
    assert not any(m.training or m.weight.requires_grad or m.bias.requires_grad for m in bns[1:])
    assert all(m.training for m in plain.modules()) and all(p.requires_grad for p in plain.parameters())


def test_parameter_counts() -> None:
    assert count_params("tsn_r50") == count_params("tsm_r50") == RESNET50_400


# ---------------------------------------------------------------- the authors' network (test-local reference)


class AuthorsShift(nn.Module):
    """ops/temporal_shift.py ``TemporalShift`` (naive shift: zeros_like and three slice copies)."""

    def __init__(self, net: nn.Module, n_segment: int, fold_div: int = 8) -> None:
        super().__init__()
        self.net, self.n_segment, self.fold_div = net, n_segment, fold_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.size()
        x = x.view(nt // self.n_segment, self.n_segment, c, h, w)
        fold = c // self.fold_div
        out = torch.zeros_like(x)
        out[:, :-1, :fold] = x[:, 1:, :fold]  # shift left
        out[:, 1:, fold: 2 * fold] = x[:, :-1, fold: 2 * fold]  # shift right
        out[:, :, 2 * fold:] = x[:, :, 2 * fold:]  # not shift
        return self.net(out.view(nt, c, h, w))


class AuthorsTSN(nn.Module):
    """ops/models.py ``TSN`` with a ResNet-50, dropout > 0 (``base_model.fc`` a Dropout, ``new_fc``), avg
    consensus; input (B, T·3, H, W) as their data loader stacks the frames."""

    def __init__(self, resnet: nn.Module, num_classes: int, segments: int, shift: bool) -> None:
        super().__init__()
        self.base_model, self.segments = resnet, segments
        self.base_model.fc = nn.Dropout(0.5)
        self.new_fc = nn.Linear(2048, num_classes)
        if shift:
            for layer in (resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4):
                for block in layer:
                    block.conv1 = AuthorsShift(block.conv1, segments)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base_out = self.new_fc(self.base_model(x.view((-1, 3) + x.size()[-2:])))
        return base_out.view((-1, self.segments) + base_out.size()[1:]).mean(1)


def authors_input(clip: torch.Tensor) -> torch.Tensor:
    b, c, t, h, w = clip.shape
    return clip.transpose(1, 2).reshape(b, t * c, h, w)


def torchvision_resnet50(seed: int = 4) -> nn.Module:
    models = import_torchvision("torchvision.models")
    torch.manual_seed(seed)
    resnet = models.resnet50()
    randomize_bn(resnet, seed)
    return resnet.eval()


@pytest.mark.parametrize("name,shift", [("tsn_r50.tsm_kinetics400", False),
                                        ("tsm_r50.tsm_kinetics400", True)])
def test_authors_checkpoint_gives_the_authors_logits(name: str, shift: bool, tmp_path: Path) -> None:
    reference = AuthorsTSN(torchvision_resnet50(), 400, 8, shift).eval()
    entry = get_weights(name)
    path = tmp_path / entry.files[0]
    state = {"module." + k: v for k, v in reference.state_dict().items()}  # DataParallel(TSN), main.py:213
    torch.save({"epoch": 50, "arch": "resnet50", "state_dict": state, "best_prec1": 70.0}, path,
               _use_new_zipfile_serialization=False)
    model = fresh(entry.model)
    report = load_pretrained(model, path)
    assert report.format == "tsm" and report.entry == name and model.pretrained_cfg == entry.pretrained_cfg()
    with torch.no_grad():
        expected, got = reference(authors_input(CLIP)), model(CLIP)
    assert float((got - expected).abs().max()) <= 1e-4


@pytest.mark.parametrize("name", ["tsn_r50", "tsm_r50"])
def test_imagenet_resnet50_loads_into_the_backbone(name: str, tmp_path: Path) -> None:
    """torchvision's ImageNet layout: TSN's per-frame features are torchvision's; TSM's are those of the
    torchvision network with the authors' shift inserted; the model keeps its own classifier."""
    resnet = torchvision_resnet50()
    torch.save(resnet.state_dict(), tmp_path / "resnet50-11ad3fa6.pth")
    model = fresh(name, 10)
    head = model.fc.weight.clone()
    report = load_pretrained(model, tmp_path / "resnet50-11ad3fa6.pth")
    assert report.format == "imagenet_2d" and report.head_replaced and torch.equal(model.fc.weight, head)
    frames = authors_input(CLIP).view(-1, 3, 32, 32)
    with torch.no_grad():
        if name == "tsn_r50":
            expected = nn.Sequential(*list(resnet.children())[:-1])(frames).flatten(1)
        else:
            expected = AuthorsTSN(resnet, 10, 8, shift=True).eval().base_model(frames)
        got = model.frame_features(CLIP).flatten(0, 1)
    assert float((got - expected).abs().max()) <= 1e-4


def test_parameter_counts_equal_torchvision() -> None:
    models = import_torchvision("torchvision.models")
    with torch.device("meta"):
        reference = sum(p.numel() for p in models.resnet50(num_classes=400).parameters())
    assert reference == RESNET50_400 == count_params("tsm_r50")


# ---------------------------------------------------------------- mmaction2 (names from its code)


def mmaction2_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s tensors under mmaction2's names, by walking the model: ResNet's ConvModules ``conv1.conv``
    / ``conv1.bn`` (stem), ``layerX.Y.convK.conv`` / ``.bn`` (backbones/resnet.py@9adb5d8:159-189, 437-446),
    ``downsample.conv`` / ``.bn`` (:268), the shift inside the conv: ``conv1.conv.net``
    (resnet_tsm.py@d36db71:241-244), the head ``cls_head.fc_cls`` (heads/tsm_head.py@cc5612b:66)."""
    modules = {"backbone.conv1.conv": model.conv1, "backbone.conv1.bn": model.bn1,
               "cls_head.fc_cls": model.fc}
    for i in range(1, 5):
        for j, block in enumerate(getattr(model, f"layer{i}")):
            prefix = f"backbone.layer{i}.{j}"
            for k in (1, 2, 3):
                modules[f"{prefix}.conv{k}.conv"] = getattr(block, f"conv{k}")  # a TemporalShift holds .net
                modules[f"{prefix}.conv{k}.bn"] = getattr(block, f"bn{k}")
            if block.downsample is not None:
                modules[f"{prefix}.downsample.conv"], modules[f"{prefix}.downsample.bn"] = block.downsample
    state = {f"{name}.{k}": v.clone() for name, module in modules.items()
             for k, v in module.state_dict().items()}
    assert len(state) == len(model.state_dict())
    return state


def write_released(name: str, model: nn.Module, folder: Path) -> Path:
    """``model``'s weights as the entry's authors publish the file: the TSM authors' ``torch.save`` of
    ``{'epoch', 'arch', 'state_dict': DataParallel(TSN).state_dict(), 'best_prec1'}`` (main.py@f8182d7:
    210-216; a 2019 file, legacy serialisation), or mmaction2's ``{'meta', 'state_dict'}``."""
    entry = get_weights(name)
    path = folder / entry.files[0]
    if entry.format == "tsm":
        state = {("module.new_fc." + k[3:] if k.startswith("fc.") else "module.base_model." + k): v
                 for k, v in model.state_dict().items()}
        torch.save({"epoch": 50, "arch": "resnet50", "state_dict": state, "best_prec1": 70.0}, path,
                   _use_new_zipfile_serialization=False)
    else:
        assert entry.format == "mmaction2"
        meta = {"epoch": 50, "mmengine_version": "0.8.4"}
        torch.save({"meta": meta, "state_dict": mmaction2_state(model)}, path)
    return path


TSM_ENTRIES = [n for n in list_weights() if n.split(".")[0] in ("tsn_r50", "tsm_r50")]


@pytest.mark.parametrize("name", TSM_ENTRIES)
def test_released_file_loads_and_is_recognised(name: str, tmp_path: Path) -> None:
    entry = get_weights(name)
    model = source(entry.model, entry.fc_classes)
    target = fresh(entry.model, entry.fc_classes, seed=2)
    report = load_pretrained(target, write_released(name, model, tmp_path))
    assert report.format == entry.format and report.entry == name
    assert target.pretrained_cfg == entry.pretrained_cfg()
    assert all(torch.equal(v, target.state_dict()[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("name", ["tsm_r50", "tsn_r50"])
def test_mmaction2_checkpoint_gives_the_same_logits(name: str, tmp_path: Path) -> None:
    """mmaction2's layout, TSM (ResNetTSM) and TSN (ResNet backbone), under a file name of no entry: loaded,
    and recognised as no entry (tsm_r50 has two mmaction2 entries, tsn_r50 none)."""
    model = source(name)
    state = mmaction2_state(model)
    assert ("backbone.layer1.0.conv1.conv.net.weight" in state) == (name == "tsm_r50")
    file = tmp_path / f"{name[:3]}_imagenet-pretrained-r50_8xb32-1x1x8-100e_kinetics400-rgb.pth"
    torch.save({"meta": {"epoch": 100}, "state_dict": state}, file)
    target = fresh(name, seed=2)
    report = load_pretrained(target, file)
    assert report.format == "mmaction2" and report.entry is None
    with torch.no_grad():
        assert torch.equal(model(CLIP), target(CLIP))


# ---------------------------------------------------------------- vidrec's own files, mismatches


def test_tsm_state_dict_round_trip(tmp_path: Path) -> None:
    torch.save(source("tsm_r50").state_dict(), tmp_path / "tsm.pt")
    target = fresh("tsm_r50", seed=2)
    assert load_pretrained(target, tmp_path / "tsm.pt").format == "state_dict"
    with torch.no_grad():
        assert torch.equal(source("tsm_r50")(CLIP), target(CLIP))


def test_tsn_state_dict_round_trip_keeps_its_head(tmp_path: Path) -> None:
    torch.save(source("tsn_r50").state_dict(), tmp_path / "tsn.pt")
    target = fresh("tsn_r50", seed=2)
    report = load_pretrained(target, tmp_path / "tsn.pt")
    assert report.format == "state_dict" and torch.equal(target.fc.weight, source("tsn_r50").fc.weight)


def test_a_tsm_file_in_a_tsn_network_names_the_model_to_build(tmp_path: Path) -> None:
    state = {"module.base_model." + k: v for k, v in source("tsm_r50").state_dict().items()
             if not k.startswith("fc.")}
    torch.save({"epoch": 1, "arch": "resnet50", "state_dict": state}, tmp_path / "TSM_x.pth")
    with pytest.raises(CheckpointError, match="build tsm_r50"):
        load_pretrained(source("tsn_r50"), tmp_path / "TSM_x.pth")

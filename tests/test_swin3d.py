"""Video Swin Transformer (vidrec.models.swin3d): logits equal torchvision's swin3d, every release layout loads and is
recognised, sizes and cost equal the references', stages, drop path and attention as documented.

Files in the authors' layouts are written from our model under the key names of their code: Video-Swin-Transformer
mmaction/models/backbones/swin_transformer.py@37a4ade (PatchEmbed3D ``proj``/``norm`` :432-434; BasicLayer
``blocks`` :371, ``downsample`` :388-390; SwinTransformerBlock3D ``norm1``/``attn``/``norm2``/``mlp`` :205-213;
WindowAttention3D ``relative_position_bias_table`` :110, ``relative_position_index`` buffer :128, ``qkv`` :130,
``proj`` :132; Mlp ``fc1``/``fc2`` :24-26; PatchMerging ``reduction``/``norm`` :287-288; final ``norm`` :545),
heads/i3d_head.py@56515c4:41 ``fc_cls``, saved as mmcv_custom/runner/checkpoint.py@37a4ade:39-53 saves; and
mmaction2 1.x mmaction/models/backbones/swin.py@ba489957 (the same names, final norm ``norm3`` :880-887), saved as
tools/deployment/publish_model.py@908af8a1:20-33 leaves it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import compose_resolved, import_torchvision
from vidrec.errors import CheckpointError
from vidrec.models import build_model, load_pretrained
from vidrec.models.complexity import count_params, gmacs
from vidrec.models.finetune import freeze, stage_of
from vidrec.models.layers import stochastic_depth_rates
from vidrec.models.weights.entries import get_weights

torch.set_num_threads(1)

NAMES = ("swin3d_t", "swin3d_s", "swin3d_b")
# torchvision 0.29.1 models/video/swin_transformer.py Swin3D_*_Weights meta: num_params (:529, :560, :591) and _ops
# (GFLOPs as multiply-adds, :536, :567, :598 — measured on 16-frame 224 clips: our count at 16 frames equals them)
TV_PARAMS = {"swin3d_t": 28_158_070, "swin3d_s": 49_816_678, "swin3d_b": 88_048_984}
TV_OPS_16F = {"swin3d_t": 43.882, "swin3d_s": 82.841, "swin3d_b": 140.667}
# Video-Swin-Transformer README.md@d13b5a3:28-30 FLOPs of one 32×224 view
README_GFLOPS = {"swin3d_t": 87.9, "swin3d_s": 165.9, "swin3d_b": 281.6}
TV_FILES = {"swin3d_t": ("swin3d_t-7615ae03.pth",), "swin3d_s": ("swin3d_s-da41c237.pth",),
            "swin3d_b": ("swin3d_b_1k-24f7c7c6.pth", "swin3d_b_22k-7c6ae6fa.pth")}
TV_TAGS = {"swin3d_b_22k-7c6ae6fa.pth": "tv_in22k_kinetics400"}
# stage 1 of this clip is 10×18×14: a temporal shift (10 > 8) with padding to 16, H padded to 21; stage 2 (10×9×7)
# shrinks the W window to 7 without a shift there, stage 3 (10×5×4) pads an odd H in the patch merging
CLIP = torch.randn(1, 3, 20, 72, 56, generator=torch.Generator().manual_seed(0))
HEAVY = pytest.mark.slow  # the S and B networks take seconds to build and hundreds of MB to write


def randomize_norms(model: nn.Module, seed: int = 1) -> nn.Module:
    """Non-trivial LayerNorm affine parameters (default 1 and 0), so that a wrong mapping of them shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
    return model.eval()


def ours(name: str, seed: int, num_classes: int = 400, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    return randomize_norms(build_model(name, num_classes, **kwargs), seed)


def logits(model: nn.Module, clip: torch.Tensor = CLIP) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(clip)


def torchvision_model(name: str, seed: int = 0) -> nn.Module:
    video = import_torchvision("torchvision.models.video")
    torch.manual_seed(seed)
    return randomize_norms(getattr(video, name)(num_classes=400), seed)


def params(name: str) -> int:
    return sum(p.numel() for p in torchvision_model_on_meta(name).parameters())


def torchvision_model_on_meta(name: str) -> nn.Module:
    video = import_torchvision("torchvision.models.video")
    with torch.device("meta"):
        return getattr(video, name)(num_classes=400)


# ---------------------------------------------------------------- sizes and cost

@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_is_torchvisions(name: str) -> None:
    assert count_params(name) == TV_PARAMS[name]


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_equals_the_torchvision_model(name: str) -> None:
    assert count_params(name) == params(name) == TV_PARAMS[name]


def test_multiply_adds_are_torchvisions_and_the_authors() -> None:
    for name in NAMES:
        assert round(gmacs(name, frames=16, size=224), 3) == TV_OPS_16F[name]
    assert gmacs("swin3d_t") == pytest.approx(README_GFLOPS["swin3d_t"], rel=0.005)  # 32×224, the authors' view


@pytest.mark.slow
def test_multiply_adds_at_the_authors_input() -> None:
    for name in NAMES:
        assert gmacs(name) == pytest.approx(README_GFLOPS[name], rel=0.005)


# ---------------------------------------------------------------- torchvision: exact logits, its files

def _torchvision_file_loads_exactly(name: str, tmp_path: Path) -> None:
    reference = torchvision_model(name, seed=1)
    files = TV_FILES[name]
    path = tmp_path / files[0]
    torch.save(reference.state_dict(), path)  # torchvision publishes the bare state dict
    model = ours(name, seed=2)
    report = load_pretrained(model, path)
    assert report.format == "state_dict" and report.entry == f"{name}.tv_kinetics400"
    assert not (report.missing or report.unexpected or report.mismatched)
    diff = (logits(model) - logits(reference)).abs().max().item()
    assert diff <= 1e-4, diff
    assert model.pretrained_cfg["frames"] == 32 and model.pretrained_cfg["test_resize"] == 256
    for other in files[1:]:  # same network, another file: recognised by its name
        path = path.rename(tmp_path / other)
        assert load_pretrained(ours(name, seed=3), path).entry == f"{name}.{TV_TAGS[other]}"


def test_torchvision_swin3d_t_file_loads_exactly(tmp_path: Path) -> None:
    _torchvision_file_loads_exactly("swin3d_t", tmp_path)


@HEAVY
@pytest.mark.parametrize("name", ["swin3d_s", "swin3d_b"])
def test_torchvision_file_loads_exactly(name: str, tmp_path: Path) -> None:
    _torchvision_file_loads_exactly(name, tmp_path)


def test_odd_and_tiny_clips_match_torchvision() -> None:
    """Windows shrink to small maps exactly as torchvision's do (padding, shifts, the bias of the first positions)."""
    reference = torchvision_model("swin3d_t", seed=4)
    model = ours("swin3d_t", seed=5)
    state = {("fc." + k[5:] if k.startswith("head.") else k): v for k, v in reference.state_dict().items()}
    model.load_state_dict(state)
    for shape in [(2, 3, 17, 45, 61), (1, 3, 8, 64, 64), (1, 3, 1, 4, 4)]:
        clip = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
        assert (logits(model, clip) - logits(reference, clip)).abs().max().item() <= 1e-4, shape


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_full_size_clip_matches_torchvision(name: str) -> None:
    """The authors' input, 32 frames of 224×224."""
    reference = torchvision_model(name, seed=6)
    model = ours(name, seed=7)
    model.load_state_dict({("fc." + k[5:] if k.startswith("head.") else k): v
                           for k, v in reference.state_dict().items()})
    clip = torch.randn(1, 3, 32, 224, 224, generator=torch.Generator().manual_seed(2))
    assert (logits(model, clip) - logits(reference, clip)).abs().max().item() <= 1e-4


# ---------------------------------------------------------------- the authors' and mmaction2's files

def authors_state(model: nn.Module, release: str) -> dict[str, torch.Tensor]:
    """Our tensors under Video-Swin-Transformer's (``videoswin``) or mmaction2 1.x's (``mmaction2``) key names, found
    by walking our modules (see the module docstring for where each name is read)."""
    state: dict[str, torch.Tensor] = {}

    def put(prefix: str, module: nn.Module) -> None:
        state.update({f"{prefix}.{k}": v.clone() for k, v in module.state_dict().items()})

    put("backbone.patch_embed", model.patch_embed)
    for i in range(4):
        for j, block in enumerate(model.features[2 * i]):
            prefix = f"backbone.layers.{i}.blocks.{j}"
            put(f"{prefix}.norm1", block.norm1)
            put(f"{prefix}.attn", block.attn)  # relative_position_bias_table, relative_position_index, qkv, proj
            put(f"{prefix}.norm2", block.norm2)
            put(f"{prefix}.mlp.fc1", block.mlp[0])
            put(f"{prefix}.mlp.fc2", block.mlp[3])
        if i < 3:
            put(f"backbone.layers.{i}.downsample", model.features[2 * i + 1])  # reduction, norm
    put("backbone.norm" if release == "videoswin" else "backbone.norm3", model.norm)
    put("cls_head.fc_cls", model.fc)
    return state


def save_release(model: nn.Module, release: str, path: Path) -> Path:
    """``model`` saved as the release's training code saves a checkpoint."""
    state = authors_state(model, release)
    if release == "videoswin":  # mmcv 1.x meta; apex amp state (checkpoint.py:39-53)
        ckpt = {"meta": {"epoch": 30, "iter": 9000, "mmcv_version": "1.3.9", "time": "Mon Jun 21 10:00:00 2021",
                         "config": "model = dict(type='Recognizer3D', ...)"},
                "state_dict": state, "amp": {"loss_scaler0": {"loss_scale": 65536.0, "unskipped": 81}}}
    else:  # mmengine meta, message_hub / optimizer / param_schedulers removed by publish_model.py
        ckpt = {"meta": {"cfg": "model = dict(type='Recognizer3D', ...)", "seed": 0, "epoch": 30, "iter": 9000,
                         "experiment_name": "swin", "time": "20220930_120000", "mmengine_version": "0.1.0",
                         "dataset_meta": None},
                "state_dict": state}
    torch.save(ckpt, path)
    return path


def _release_loads(entry_name: str, release: str, tmp_path: Path) -> None:
    entry = get_weights(entry_name)
    source = ours(entry.model, 1, entry.fc_classes, **entry.arch)
    path = save_release(source, release, tmp_path / entry.files[0])
    model = ours(entry.model, 2, entry.fc_classes, **entry.arch)
    report = load_pretrained(model, path)
    assert report.format == "mmaction2" and report.entry == entry_name
    assert not (report.missing or report.unexpected or report.mismatched)
    assert torch.equal(logits(model), logits(source))
    assert model.pretrained_cfg == entry.pretrained_cfg()


@pytest.mark.parametrize(("entry_name", "release"), [("swin3d_t.videoswin_kinetics400", "videoswin"),
                                                     ("swin3d_t.mmaction2_kinetics400", "mmaction2")])
def test_authors_and_mmaction2_files_load(entry_name: str, release: str, tmp_path: Path) -> None:
    _release_loads(entry_name, release, tmp_path)


@HEAVY
@pytest.mark.parametrize(("entry_name", "release"), [
    ("swin3d_s.videoswin_kinetics400", "videoswin"), ("swin3d_b.videoswin_kinetics400", "videoswin"),
    ("swin3d_b.videoswin_in22k_kinetics400", "videoswin"), ("swin3d_b.videoswin_sthv2", "videoswin"),
    ("swin3d_s.mmaction2_kinetics400", "mmaction2"), ("swin3d_b.mmaction2_kinetics400", "mmaction2")])
def test_every_authors_and_mmaction2_file_loads(entry_name: str, release: str, tmp_path: Path) -> None:
    _release_loads(entry_name, release, tmp_path)


@HEAVY
def test_sthv2_file_needs_its_16x7x7_window(tmp_path: Path) -> None:
    entry = get_weights("swin3d_b.videoswin_sthv2")
    assert entry.arch == {"window_size": (16, 7, 7)} and entry.fc_classes == 174
    path = save_release(ours("swin3d_b", 1, 174, window_size=(16, 7, 7)), "videoswin", tmp_path / entry.files[0])
    with pytest.raises(CheckpointError, match="relative_position_bias_table"):
        load_pretrained(ours("swin3d_b", 2, 174), path)


# ---------------------------------------------------------------- structure

def test_window_and_bias_table_follow_window_size() -> None:
    with torch.device("meta"):
        ssv2 = build_model("swin3d_t", 174, window_size=(16, 7, 7))
    attn = ssv2.features[0][0].attn
    assert attn.relative_position_bias_table.shape == (31 * 13 * 13, 3)
    assert attn.relative_position_index.shape == (16 * 49, 16 * 49)
    assert "features.0.0.attn.relative_position_index" in ssv2.state_dict()  # a persistent buffer, as torchvision's


def test_stages_for_freezing() -> None:
    model = build_model("swin3d_t", 5)
    expected = {"patch_embed.proj.weight": 0, "features.0.1.attn.qkv.weight": 1, "features.1.reduction.weight": 1,
                "features.2.0.mlp.0.weight": 2, "features.5.norm.bias": 3, "features.6.1.norm2.weight": 4,
                "norm.weight": 4, "fc.bias": 5}
    assert {name: stage_of(name, model) for name in expected} == expected
    freeze(model, "until_layer2")
    trainable = {name.split(".")[0] + "." + name.split(".")[1] for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"features.4", "features.5", "features.6", "norm.weight", "norm.bias", "fc.weight", "fc.bias"}


def test_drop_path_rates_rise_linearly_and_act_in_training_only() -> None:
    model = build_model("swin3d_t", 5, drop_path=0.2)
    blocks = [m for m in model.modules() if hasattr(m, "drop_rate")]
    assert [b.drop_rate for b in blocks] == stochastic_depth_rates(0.2, 12)
    with torch.device("meta"):  # the authors' Kinetics-400 defaults
        assert [build_model(n, 5).features[6][1].drop_rate for n in NAMES] == [0.1, 0.1, 0.3]
    clip = torch.randn(2, 3, 4, 32, 32)
    torch.manual_seed(0)
    assert not torch.equal(model.train()(clip), model(clip))
    assert torch.equal(logits(model, clip), logits(model, clip))


def test_attention_is_sdpa_with_the_bias_and_shift_mask_as_additive_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kwargs):
        calls.append((tuple(q.shape), tuple(attn_mask.shape)))
        return sdpa(q, k, v, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    logits(build_model("swin3d_t", 5), torch.randn(1, 3, 20, 56, 56))  # stage 1: 10×14×14 -> 2×2×2 windows of 392
    assert len(calls) == 12  # one call per block
    (q0, mask0), (q1, mask1) = calls[:2]
    assert q0 == (8, 3, 392, 32) and mask0 == (1, 3, 392, 392)  # windows in the batch, the bias broadcast
    assert q1 == (1, 8 * 3, 392, 32) and mask1 == (1, 8 * 3, 392, 392)  # shifted: windows × heads, bias + mask


def test_config_picks_the_variant() -> None:
    from vidrec.config import model_overrides

    assert model_overrides("swin3d_b") == "model=swin3d model.variant=b"
    cfg = compose_resolved(["model=swin3d", "model.variant=s"])
    assert cfg["model"]["net"]["name"] == "swin3d_s"


def test_a_2d_imagenet_swin_is_inflated_as_video_swin_does(tmp_path: Path) -> None:
    """The Swin-Transformer authors' ImageNet ``{'model': ...}`` (2D patch embedding 96×3×4×4, 13×13 bias tables per
    head): the kernel repeated over 2 frames and halved, each table repeated 2·8 - 1 times (Video Swin's
    inflate_weights), everything else by name; the classifier and index buffers stay the model's own."""
    from vidrec.models import load_pretrained

    source = ours("swin3d_t", 1)
    state = {k.removeprefix("backbone."): v for k, v in authors_state(source, "videoswin").items()
             if not k.startswith("cls_head") and "relative_position_index" not in k}
    g = torch.Generator().manual_seed(3)
    state["patch_embed.proj.weight"] = torch.randn(96, 3, 4, 4, generator=g)
    for key in [k for k in state if k.endswith("relative_position_bias_table")]:
        state[key] = torch.randn(169, state[key].shape[1], generator=g)
    state["head.weight"], state["head.bias"] = torch.randn(1000, 768), torch.zeros(1000)
    torch.save({"model": state}, tmp_path / "swin_tiny_patch4_window7_224.pth")
    target = ours("swin3d_t", 2)
    fc = target.fc.weight.clone()
    report = load_pretrained(target, tmp_path / "swin_tiny_patch4_window7_224.pth")
    assert report.format == "swin2d_imagenet" and not report.missing and not report.unexpected
    assert torch.equal(target.patch_embed.proj.weight, state["patch_embed.proj.weight"][:, :, None].repeat(1, 1, 2, 1, 1) / 2)
    table = target.features[0][0].attn.relative_position_bias_table
    assert torch.equal(table, state["layers.0.blocks.0.attn.relative_position_bias_table"].repeat(15, 1))
    assert torch.equal(target.fc.weight, fc)
    assert torch.equal(target.features[2][1].mlp[3].weight, state["layers.1.blocks.1.mlp.fc2.weight"])

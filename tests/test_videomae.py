"""VideoMAE ViT classifiers: logits equal transformers' ``VideoMAEForVideoClassification`` (the authors' network, ported)
under the same weights, every release layout loads and is recognised, parameter counts equal the reference's.

transformers imports beside CPU torch, so these run in the fast tier of both venvs. The reference gets random values
in every tensor (LayerNorm scales included) so that a wrong mapping shows; full-width networks are built on the meta
device and filled (no slow random init) and run on tiny clips; the authors' 16×224×224 input is the slow test.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from transformers import VideoMAEConfig, VideoMAEForVideoClassification
from transformers.models.videomae.modeling_videomae import get_sinusoid_encoding_table

from vidrec.errors import CheckpointError
from vidrec.models import build_model, load_pretrained
from vidrec.models.complexity import count_params
from vidrec.models.finetune import freeze, stage_of
from vidrec.models.videomae import VideoMAEViT
from vidrec.models.vit import sinusoid_table
from vidrec.models.weights.entries import get_weights
from vidrec.models.weights.videomae import convert_huggingface

torch.set_num_threads(1)
TOL = 1e-4
# transformers' config of each size (convert_videomae_to_pytorch.py set_architecture_configs; heads as the authors'
# vit_small_patch16_224: 6 — the head count changes no parameter)
HF_SIZES = {
    "s": dict(hidden_size=384, intermediate_size=1536, num_hidden_layers=12, num_attention_heads=6),
    "b": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12),
    "l": dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16),
    "h": dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16),
}
# Parameters at 400 classes: transformers' VideoMAEForVideoClassification = ours (asserted against both)
PARAMS = {"s": 22_033_936, "b": 86_534_800, "l": 304_270_736, "h": 632_119_440}
# modeling_finetune.py@cece388 names of one block and the head (Block: norm1, attn.{qkv, q_bias, v_bias, proj},
# norm2, mlp.{fc1, fc2}; VisionTransformer: patch_embed.proj, fc_norm, head)
AUTHORS_BLOCK0 = ["blocks.0.norm1.weight", "blocks.0.norm1.bias", "blocks.0.attn.q_bias", "blocks.0.attn.v_bias",
                  "blocks.0.attn.qkv.weight", "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias",
                  "blocks.0.norm2.weight", "blocks.0.norm2.bias", "blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc1.bias",
                  "blocks.0.mlp.fc2.weight", "blocks.0.mlp.fc2.bias"]


def fill_random(model: nn.Module, seed: int) -> nn.Module:
    """Random values in every parameter: weights N(0, 0.02), LayerNorm scales 1 + N(0, 0.1), biases N(0, 0.05)."""
    g = torch.Generator().manual_seed(seed)
    norm_scales = {id(m.weight) for m in model.modules() if isinstance(m, nn.LayerNorm)}
    with torch.no_grad():
        for p in model.parameters():
            noise = torch.randn(p.shape, generator=g)
            p.copy_(1 + 0.1 * noise if id(p) in norm_scales else noise * (0.02 if p.ndim >= 2 else 0.05))
    return model.eval()


def hf_reference(size: dict, num_labels: int = 400, frames: int = 2, image: int = 32, seed: int = 0,
                 **config) -> VideoMAEForVideoClassification:
    """transformers' classifier with random values, built on the meta device and filled (fast at full width)."""
    cfg = VideoMAEConfig(num_labels=num_labels, num_frames=frames, image_size=image, **size, **config)
    with torch.device("meta"):
        ref = VideoMAEForVideoClassification(cfg)
    ref.to_empty(device="cpu")
    emb = ref.videomae.embeddings  # a plain tensor attribute (not a buffer): rebuilt by transformers' own function
    emb.position_embeddings = get_sinusoid_encoding_table(emb.num_patches, cfg.hidden_size)
    return fill_random(ref, seed)


def empty_model(name: str, num_classes: int = 400, **kwargs) -> nn.Module:
    """A registry network without its (slow) random init: every tensor comes from the checkpoint (strict load)."""
    with torch.device("meta"):
        model = build_model(name, num_classes, **kwargs)
    return model.to_empty(device="cpu").eval()


def hf_logits(ref: VideoMAEForVideoClassification, clip: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return ref(pixel_values=clip.transpose(1, 2)).logits  # transformers: (B, T, C, H, W)


def ours_logits(model: nn.Module, clip: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(clip)


def clip(frames: int = 2, size: int = 32, batch: int = 1, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, frames, size, size, generator=torch.Generator().manual_seed(seed))


def authors_state(ref: VideoMAEForVideoClassification, num_classes: int, variant: str) -> dict[str, torch.Tensor]:
    """The authors' fine-tuned state dict of ``ref``'s weights: our names (= modeling_finetune.py's) with ``head``."""
    model = empty_model(f"videomae_vit_{variant}", num_classes)
    model.load_state_dict(convert_huggingface({"hf_config": ref.config.to_dict(), "state_dict": ref.state_dict()},
                                              model, "ref"))
    state = {("head." + k[3:] if k.startswith("fc.") else k): v for k, v in model.state_dict().items()}
    assert set(AUTHORS_BLOCK0) <= set(state) and {"patch_embed.proj.weight", "fc_norm.weight", "head.weight"} <= set(state)
    return state


def authors_reference(variant: str, num_labels: int = 400) -> VideoMAEForVideoClassification:
    """transformers' network with the authors' LayerNorm eps (1e-6 in the blocks and in fc_norm) on 2×32×32 clips."""
    ref = hf_reference(HF_SIZES[variant], num_labels=num_labels, layer_norm_eps=1e-6)
    ref.fc_norm.eps = 1e-6  # modeling_finetune.py: norm_layer=partial(nn.LayerNorm, eps=1e-6) for fc_norm too
    return ref


@pytest.fixture(scope="module")
def ref_b() -> VideoMAEForVideoClassification:
    return authors_reference("b")


@pytest.fixture(scope="module")
def ref_s() -> VideoMAEForVideoClassification:
    return authors_reference("s")


# ---------------------------------------------------------------- exactness against transformers

@pytest.mark.parametrize("frames,image,heads", [(4, 32, 4), (2, 48, 2)])
def test_logits_equal_transformers_reduced(frames: int, image: int, heads: int) -> None:
    """Reduced width/depth through the same code path: transformers' default config (eps 1e-12, fc_norm 1e-5)."""
    size = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=heads)
    ref = hf_reference(size, num_labels=7, frames=frames, image=image)
    ours = VideoMAEViT(7, 64, 2, heads, norm_eps=1e-12, fc_norm_eps=1e-5)
    ours.load_state_dict(convert_huggingface({"hf_config": ref.config.to_dict(), "state_dict": ref.state_dict()},
                                             ours, "ref"))
    x = clip(frames, image, batch=2)
    assert (ours_logits(ours, x) - hf_logits(ref, x)).abs().max() <= TOL


def test_huggingface_folder_loads_with_its_entry_arch(tmp_path: Path) -> None:
    """save_pretrained's folder (safetensors; the published q_bias / v_bias names) into videomae_vit_b built with the
    entry's arch (transformers' LayerNorm eps): recognised by the folder's name, logits equal."""
    entry = get_weights("videomae_vit_b.hf_kinetics400")
    ref = hf_reference(HF_SIZES["b"])
    ref.save_pretrained(tmp_path / entry.files[0])
    assert (tmp_path / entry.files[0] / "model.safetensors").is_file()
    model = empty_model("videomae_vit_b", **entry.arch)
    report = load_pretrained(model, tmp_path / entry.files[0])
    assert report.format == "huggingface" and report.entry == entry.name
    assert model.pretrained_cfg["mean"] == list(entry.mean)
    x = clip()
    assert (ours_logits(model, x) - hf_logits(ref, x)).abs().max() <= TOL


def test_huggingface_pytorch_model_bin_with_transformers5_names(tmp_path: Path) -> None:
    """A folder with pytorch_model.bin holding transformers 5's in-memory names (``query.bias``, ``value.bias``):
    the SSv2 ViT-B (174 classes), recognised by its folder's name."""
    ref = hf_reference(HF_SIZES["b"], num_labels=174, seed=3)
    folder = tmp_path / get_weights("videomae_vit_b.hf_ssv2").files[0]
    folder.mkdir()
    state = ref.state_dict()
    assert any(k.endswith("attention.attention.query.bias") for k in state)
    torch.save(state, folder / "pytorch_model.bin")
    (folder / "config.json").write_text(json.dumps(ref.config.to_dict()))
    model = empty_model("videomae_vit_b", 174, **get_weights("videomae_vit_b.hf_ssv2").arch)
    report = load_pretrained(model, folder)
    assert report.format == "huggingface" and report.entry == "videomae_vit_b.hf_ssv2"
    x = clip()
    assert (ours_logits(model, x) - hf_logits(ref, x)).abs().max() <= TOL


def test_huggingface_config_with_other_head_count_is_refused(ref_s, tmp_path: Path) -> None:
    """The head count changes no tensor shape: config.json's must equal the network's."""
    folder = tmp_path / "hf"
    ref_s.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "num_attention_heads": 16}))
    with pytest.raises(CheckpointError, match="num_heads=16"):
        load_pretrained(empty_model("videomae_vit_s"), folder)


# ---------------------------------------------------------------- the authors' and mmaction2's files

def test_authors_checkpoint_torch_amp_layout(ref_s, tmp_path: Path) -> None:
    """utils.py@ed5ce1f:411-417 (torch.amp: 'model', 'optimizer', 'epoch', 'scaler', 'args' — an argparse.Namespace):
    loads, is recognised by its entry's file name, logits equal transformers'."""
    args = argparse.Namespace(model="vit_small_patch16_224", nb_classes=400, num_frames=16, sampling_rate=4)
    entry = get_weights("videomae_vit_s.videomae_kinetics400")
    torch.save({"model": authors_state(ref_s, 400, "s"), "optimizer": {"state": {}, "param_groups": []},
                "epoch": 149, "scaler": {"scale": 65536.0}, "args": args}, tmp_path / entry.files[0])
    model = empty_model("videomae_vit_s")
    report = load_pretrained(model, tmp_path / entry.files[0])
    assert report.format == "videomae" and report.entry == entry.name
    x = clip()
    assert (ours_logits(model, x) - hf_logits(ref_s, x)).abs().max() <= TOL


def test_authors_checkpoint_deepspeed_layout(ref_b, tmp_path: Path) -> None:
    """DeepSpeed's ``{'module': ...}`` (utils.py@ed5ce1f:427; the scripts pass --enable_deepspeed)."""
    entry = get_weights("videomae_vit_b.videomae_kinetics400")
    torch.save({"module": authors_state(ref_b, 400, "b"), "epoch": 74, "global_steps": 1000, "dp_world_size": 64},
               tmp_path / entry.files[0])
    model = empty_model("videomae_vit_b")
    report = load_pretrained(model, tmp_path / entry.files[0])
    assert report.format == "videomae" and report.entry == entry.name
    x = clip()
    assert (ours_logits(model, x) - hf_logits(ref_b, x)).abs().max() <= TOL


def test_authors_ssv2_vit_s(tmp_path: Path) -> None:
    ref = authors_reference("s", num_labels=174)
    path = tmp_path / get_weights("videomae_vit_s.videomae_ssv2").files[0]
    torch.save({"module": authors_state(ref, 174, "s")}, path)
    model = empty_model("videomae_vit_s", 174)
    report = load_pretrained(model, path)
    assert report.format == "videomae" and report.entry == "videomae_vit_s.videomae_ssv2"
    assert model.pretrained_cfg["num_clips"] == 2
    x = clip()
    assert (ours_logits(model, x) - hf_logits(ref, x)).abs().max() <= TOL


def mmaction2_state(authors: dict[str, torch.Tensor], tokens: int, dim: int) -> dict[str, torch.Tensor]:
    """mmaction2's names (mmaction/models/backbones/vit_mae.py@8ff889af: mmcv PatchEmbed ``projection``, FFN
    ``layers.0.0`` / ``layers.1``, the sin-cos table registered as the buffer ``pos_embed`` (:312-313); the head
    TimeSformerHead ``fc_cls``)."""
    out = {}
    for key, value in authors.items():
        key = key.replace("patch_embed.proj.", "patch_embed.projection.").replace(".mlp.fc1.", ".mlp.layers.0.0.")
        key = key.replace(".mlp.fc2.", ".mlp.layers.1.")
        out["cls_head.fc_cls." + key[5:] if key.startswith("head.") else "backbone." + key] = value
    out["backbone.pos_embed"] = sinusoid_table(tokens, dim)  # = transformers' numpy table (tested below)
    return out


def test_mmaction2_checkpoint(ref_b, tmp_path: Path) -> None:
    entry = get_weights("videomae_vit_b.mmaction2_kinetics400")
    state = mmaction2_state(authors_state(ref_b, 400, "b"), 1568, 768)  # built for 16×224×224 (vit_mae.py:302-313)
    torch.save({"meta": {"mmaction_version": "1.0.0rc1", "epoch": 0}, "state_dict": state}, tmp_path / entry.files[0])
    model = empty_model("videomae_vit_b")
    report = load_pretrained(model, tmp_path / entry.files[0])
    assert report.format == "mmaction2" and report.entry == entry.name
    x = clip()
    assert (ours_logits(model, x) - hf_logits(ref_b, x)).abs().max() <= TOL


def test_mmaction2_learnt_pos_embed_is_reported(ref_s, tmp_path: Path) -> None:
    """A pos_embed that is not the sin-cos table (a learnt one) is no weight of ours: the strict load names it."""
    state = mmaction2_state(authors_state(ref_s, 400, "s"), 1568, 384)
    state["backbone.pos_embed"] = state["backbone.pos_embed"] + 0.5
    torch.save({"state_dict": state}, tmp_path / "learnt.pth")
    with pytest.raises(CheckpointError, match="pos_embed"):
        load_pretrained(empty_model("videomae_vit_s"), tmp_path / "learnt.pth")


def huggingface_state(authors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The authors' names as transformers publishes them: the inverse of convert_videomae_to_pytorch.py@01080c6
    (rename_key, convert_state_dict: qkv split into query/key/value; q_bias / v_bias kept under those names)."""
    blocks = {"norm1": "layernorm_before", "norm2": "layernorm_after", "attn.proj": "attention.output.dense",
              "attn.q_bias": "attention.attention.q_bias", "attn.v_bias": "attention.attention.v_bias",
              "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"}
    out = {}
    for key, value in authors.items():
        if key.startswith("blocks."):
            _, i, rest = key.split(".", 2)
            prefix = f"videomae.encoder.layer.{i}."
            if rest == "attn.qkv.weight":
                for part, chunk in zip(("query", "key", "value"), value.chunk(3)):
                    out[f"{prefix}attention.attention.{part}.weight"] = chunk.clone()
            else:
                out[prefix + next(new + rest[len(old):] for old, new in blocks.items() if rest.startswith(old))] = value
        else:
            key = key.replace("patch_embed.proj.", "videomae.embeddings.patch_embeddings.projection.")
            out[key.replace("head.", "classifier.")] = value
    return out


def write_release(name: str, model: nn.Module, folder: Path) -> Path:
    """``model``'s weights written as entry ``name``'s file is published (layout, nesting, names; for
    test_models_weights.write_released)."""
    entry = get_weights(name)
    authors = {("head." + k[3:] if k.startswith("fc.") else k): v for k, v in model.state_dict().items()}
    path = folder / entry.files[0]
    if entry.format == "videomae":
        torch.save({"module": authors, "epoch": 0}, path)
    elif entry.format == "mmaction2":
        torch.save({"meta": {}, "state_dict": mmaction2_state(authors, 1568, model.fc.in_features)}, path)
    else:  # huggingface: a folder with config.json and model.safetensors
        mlp = model.blocks[0].mlp
        config = VideoMAEConfig(num_labels=model.fc.out_features, hidden_size=model.fc.in_features,
                                intermediate_size=mlp.fc1.out_features, num_hidden_layers=len(model.blocks),
                                num_attention_heads=model.num_heads, layer_norm_eps=model.norm_eps)
        path.mkdir()
        save_file({k: v.contiguous() for k, v in huggingface_state(authors).items()}, path / "model.safetensors")
        (path / "config.json").write_text(json.dumps(config.to_dict()))
    return path


@pytest.mark.parametrize("name", ["videomae_vit_s.videomae_kinetics400", "videomae_vit_b.hf_ssv2",
                                  "videomae_vit_b.mmaction2_kinetics400"])
def test_written_release_loads_and_is_recognised(name: str, tmp_path: Path) -> None:
    entry = get_weights(name)
    source = fill_random(empty_model(entry.model, entry.fc_classes, **entry.arch), seed=4)
    target = empty_model(entry.model, entry.fc_classes, **entry.arch)
    report = load_pretrained(target, write_release(name, source, tmp_path))
    assert report.entry == name
    assert torch.equal(ours_logits(source, clip()), ours_logits(target, clip()))


# ---------------------------------------------------------------- network properties

@pytest.mark.parametrize("variant", sorted(PARAMS))
def test_parameter_count_equals_transformers(variant: str) -> None:
    with torch.device("meta"):
        ref = VideoMAEForVideoClassification(VideoMAEConfig(num_labels=400, **HF_SIZES[variant]))
    assert sum(p.numel() for p in ref.parameters()) == PARAMS[variant]
    assert count_params(f"videomae_vit_{variant}") == PARAMS[variant]


@pytest.mark.parametrize("tokens,dim", [(200, 768), (4000, 16)])
def test_sinusoid_table_equals_the_authors_numpy_table(tokens: int, dim: int) -> None:
    assert (sinusoid_table(tokens, dim) - get_sinusoid_encoding_table(tokens, dim)).abs().max() <= 1e-6


def test_other_clip_sizes_use_the_table_of_their_token_count() -> None:
    """8×64×64 (and 20×48×80) give the logits of transformers' network built for that size (the authors build the
    table for the run's num_patches)."""
    size = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4)
    ours = VideoMAEViT(5, 64, 2, 4, norm_eps=1e-12, fc_norm_eps=1e-5)
    for frames, h, w in ((8, 64, 64), (20, 48, 80)):
        ref = hf_reference(size, num_labels=5, frames=frames, image=(h, w), seed=frames)
        ours.load_state_dict(convert_huggingface({"hf_config": ref.config.to_dict(), "state_dict": ref.state_dict()},
                                                 ours, "ref"))
        x = torch.randn(1, 3, frames, h, w)
        assert (ours_logits(ours, x) - hf_logits(ref, x)).abs().max() <= TOL


def test_stage_of_maps_blocks_to_quarters() -> None:
    with torch.device("meta"):
        model = build_model("videomae_vit_l", 10)  # 24 blocks: 6 per stage
    assert stage_of("patch_embed.proj.weight", model) == 0
    assert [stage_of(f"blocks.{i}.attn.qkv.weight", model) for i in (0, 5, 6, 11, 12, 17, 18, 23)] == [1, 1, 2, 2, 3,
                                                                                                       3, 4, 4]
    assert stage_of("fc_norm.weight", model) == 4 and stage_of("fc.weight", model) == 5
    freeze(model, "until_layer2")
    trainable = {n.split(".")[0] + ("." + n.split(".")[1] if n.startswith("blocks.") else "")
                 for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"blocks.{i}" for i in range(12, 24)} | {"fc_norm", "fc"}


def test_drop_path_defaults_and_keyword() -> None:
    with torch.device("meta"):
        b = build_model("videomae_vit_b", 5)
        h = build_model("videomae_vit_h", 5)
        custom = build_model("videomae_vit_s", 5, drop_path=0.3, dropout=0.5)
    assert b.blocks[0].drop_path.rate == 0 and b.blocks[-1].drop_path.rate == pytest.approx(0.1)
    assert h.blocks[-1].drop_path.rate == pytest.approx(0.2)
    assert custom.blocks[-1].drop_path.rate == pytest.approx(0.3) and custom.dropout.p == 0.5


# ---------------------------------------------------------------- the authors' input (slow)

@pytest.mark.slow
def test_vit_b_at_the_authors_input_equals_transformers() -> None:
    """ViT-B/16 on 16×224×224 (1568 tokens), transformers' default config with the HF entry's arch."""
    ref = hf_reference(HF_SIZES["b"], frames=16, image=224)
    model = empty_model("videomae_vit_b", **get_weights("videomae_vit_b.hf_kinetics400").arch)
    model.load_state_dict(convert_huggingface({"hf_config": ref.config.to_dict(), "state_dict": ref.state_dict()},
                                              model, "ref"))
    x = clip(16, 224)
    assert (ours_logits(model, x) - hf_logits(ref, x)).abs().max() <= TOL


def test_a_pretraining_checkpoint_gives_the_encoder(ref_s, tmp_path: Path) -> None:
    """The authors' pre-training file (``encoder.*`` with its final ``norm``, ``decoder.*``, ``encoder_to_decoder``,
    ``mask_token``): the encoder loads, ``fc_norm`` and ``fc`` keep the model's initialisation, as the authors'
    fine-tuning does (run_class_finetuning.py@1d5cc4f:346-355)."""
    state = authors_state(ref_s, 400, "s")
    encoder = {f"encoder.{k}": v for k, v in state.items() if not k.startswith(("fc_norm.", "head."))}
    encoder["encoder.norm.weight"], encoder["encoder.norm.bias"] = torch.ones(384), torch.zeros(384)
    pretrain = {**encoder, "decoder.blocks.0.mlp.fc1.weight": torch.zeros(4, 4), "mask_token": torch.zeros(1, 1, 192),
                "encoder_to_decoder.weight": torch.zeros(192, 384)}
    torch.save({"model": pretrain}, tmp_path / "checkpoint.pth")
    model = build_model("videomae_vit_s", 400).eval()  # initialised: empty memory may hold NaN, never equal to itself
    before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith(("fc_norm.", "fc."))}
    report = load_pretrained(model, tmp_path / "checkpoint.pth")
    assert report.format == "videomae" and not report.missing and not report.unexpected
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert torch.equal(after["blocks.0.attn.q_bias"], state["blocks.0.attn.q_bias"])

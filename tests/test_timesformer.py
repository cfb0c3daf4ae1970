"""TimeSformer (divided space-time): logits equal transformers' ``TimesformerForVideoClassification`` (the authors'
network, ported) under the same weights, the release layouts load and are recognised, the parameter count equals.

transformers' network takes its configured clip only, but its embeddings resize ``position_embeddings`` /
``time_embeddings`` by nearest neighbour when they do not fit (the authors' vit.py code): a reference configured for
2×32×32 holding the 8×224 tables therefore runs the authors' resizing, which the small-clip tests compare ours with.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from test_videomae import TOL, clip, empty_model, fill_random
from torch import nn
from transformers import TimesformerConfig, TimesformerForVideoClassification

from vidrec.errors import CheckpointError
from vidrec.models import build_model, load_pretrained
from vidrec.models.complexity import count_params
from vidrec.models.finetune import freeze, stage_of
from vidrec.models.timesformer import TimeSformer
from vidrec.models.weights.entries import get_weights
from vidrec.models.weights.timesformer import convert_huggingface

torch.set_num_threads(1)
PARAMS_B = 121_566_352  # TimesformerForVideoClassification(TimesformerConfig(num_labels=400)) = ours
# timesformer/models/vit.py@ddb4cf3 names of one divided block (Block: norm1, attn.{qkv, proj}, temporal_norm1,
# temporal_attn.{qkv, proj}, temporal_fc, norm2, mlp.{fc1, fc2}) and of VisionTransformer's own tensors
AUTHORS_BLOCK0 = [f"blocks.0.{k}" for k in (
    "norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
    "temporal_norm1.weight", "temporal_norm1.bias", "temporal_attn.qkv.weight", "temporal_attn.qkv.bias",
    "temporal_attn.proj.weight", "temporal_attn.proj.bias", "temporal_fc.weight", "temporal_fc.bias", "norm2.weight",
    "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias")]
AUTHORS_TOP = ["cls_token", "pos_embed", "time_embed", "patch_embed.proj.weight", "patch_embed.proj.bias",
               "norm.weight", "norm.bias", "head.weight", "head.bias"]
SMALL = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4)


def hf_reference(size: dict | None = None, num_labels: int = 400, frames: int = 8, image: int = 224,
                 seed: int = 0) -> TimesformerForVideoClassification:
    """transformers' classifier with random values, built on the meta device and filled."""
    cfg = TimesformerConfig(num_labels=num_labels, num_frames=frames, image_size=image, **(size or {}))
    with torch.device("meta"):
        ref = TimesformerForVideoClassification(cfg)
    return fill_random(ref.to_empty(device="cpu"), seed)


def resizing_reference(size: dict | None = None, num_labels: int = 400, tables: tuple[int, int] = (8, 224),
                       clip_shape: tuple[int, int] = (2, 32), seed: int = 0) -> TimesformerForVideoClassification:
    """transformers' network configured for ``clip_shape`` (frames, size) holding the position tables of ``tables``:
    its embeddings resize them as the authors' forward_features does."""
    big = hf_reference(size, num_labels, *tables, seed=seed)
    ref = hf_reference(size, num_labels, *clip_shape, seed=seed)
    emb, big_emb = ref.timesformer.embeddings, big.timesformer.embeddings
    emb.position_embeddings = nn.Parameter(big_emb.position_embeddings.detach().clone())
    emb.time_embeddings = nn.Parameter(big_emb.time_embeddings.detach().clone())
    ref.load_state_dict(big.state_dict())
    return ref


def hf_logits(ref: TimesformerForVideoClassification, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return ref(pixel_values=x.transpose(1, 2)).logits


def ours_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


def hf_converted(ref: TimesformerForVideoClassification, model: nn.Module) -> dict[str, torch.Tensor]:
    return convert_huggingface({"hf_config": ref.config.to_dict(), "state_dict": ref.state_dict()}, model, "ref")


def authors_state(ref: TimesformerForVideoClassification) -> dict[str, torch.Tensor]:
    """The authors' VisionTransformer state of ``ref``'s weights: our names with ``head`` and the Conv2d patch kernel."""
    model = empty_model("timesformer_b")
    model.load_state_dict(hf_converted(ref, model))
    state = {("head." + k[3:] if k.startswith("fc.") else k): v for k, v in model.state_dict().items()}
    state["patch_embed.proj.weight"] = state["patch_embed.proj.weight"].squeeze(2)  # vit.py:167 nn.Conv2d
    assert set(AUTHORS_BLOCK0) | set(AUTHORS_TOP) <= set(state)
    return state


@pytest.fixture(scope="module")
def ref_b() -> TimesformerForVideoClassification:
    """TimeSformer-B/16 with the 8×224 tables, run on 2×32×32 clips."""
    return resizing_reference()


# ---------------------------------------------------------------- exactness against transformers

@pytest.mark.parametrize("frames,image", [(4, 32), (3, 48)])
def test_logits_equal_transformers_reduced(frames: int, image: int) -> None:
    """Reduced width/depth through the same code path, at the configured clip (no resizing)."""
    ref = hf_reference(SMALL, num_labels=7, frames=frames, image=image)
    ours = TimeSformer(7, 64, 2, 4, num_frames=frames, img_size=image)
    ours.load_state_dict(hf_converted(ref, ours))
    x = clip(frames, image, batch=2)
    assert (ours_logits(ours, x) - hf_logits(ref, x)).abs().max() <= TOL


@pytest.mark.parametrize("tables,clip_shape", [((8, 224), (2, 32)), ((4, 64), (6, 48)), ((8, 64), (8, 80))])
def test_position_tables_are_resized_as_the_authors_do(tables, clip_shape) -> None:
    """Other frame counts and grids: nearest-neighbour resizing of pos_embed and time_embed (vit.py:255-285)."""
    ref = resizing_reference(SMALL, num_labels=5, tables=tables, clip_shape=clip_shape, seed=2)
    ours = TimeSformer(5, 64, 2, 4, num_frames=tables[0], img_size=tables[1])
    ours.load_state_dict(hf_converted(ref, ours))
    x = clip(*clip_shape, batch=2)
    assert (ours_logits(ours, x) - hf_logits(ref, x)).abs().max() <= TOL


def test_huggingface_folder(ref_b, tmp_path: Path) -> None:
    """save_pretrained's folder (safetensors) into timesformer_b (8×224 tables), recognised by the folder's name."""
    entry = get_weights("timesformer_b.hf_kinetics400")
    ref_b.save_pretrained(tmp_path / entry.files[0])
    assert (tmp_path / entry.files[0] / "model.safetensors").is_file()
    model = empty_model("timesformer_b", **entry.arch)
    report = load_pretrained(model, tmp_path / entry.files[0])
    assert report.format == "huggingface" and report.entry == entry.name
    assert model.pretrained_cfg["mean"] == [0.45] * 3 and model.pretrained_cfg["num_crops"] == 3
    x = clip()
    assert (ours_logits(model, x) - hf_logits(ref_b, x)).abs().max() <= TOL


def test_huggingface_joint_space_time_is_refused(ref_b, tmp_path: Path) -> None:
    folder = tmp_path / "joint"
    ref_b.config.attention_type = "joint_space_time"
    try:
        ref_b.save_pretrained(folder)
    finally:
        ref_b.config.attention_type = "divided_space_time"
    with pytest.raises(CheckpointError, match="attention_type"):
        load_pretrained(empty_model("timesformer_b"), folder)


# ---------------------------------------------------------------- the authors' and mmaction2's files

def test_authors_pyth(ref_b, tmp_path: Path) -> None:
    """PySlowFast's checkpoint (timesformer/utils/checkpoint.py@ddb4cf3:126-131): 'epoch', 'model_state' under the
    wrapper's ``model.`` prefix, 'optimizer_state', 'cfg' (the yaml dump)."""
    entry = get_weights("timesformer_b.timesformer_kinetics400")
    state = {f"model.{k}": v for k, v in authors_state(ref_b).items()}
    cfg = "DATA:\n  NUM_FRAMES: 8\n  SAMPLING_RATE: 32\nMODEL:\n  MODEL_NAME: vit_base_patch16_224\n"
    torch.save({"epoch": 15, "model_state": state, "optimizer_state": {"state": {}, "param_groups": []}, "cfg": cfg},
               tmp_path / entry.files[0])
    model = empty_model("timesformer_b")
    report = load_pretrained(model, tmp_path / entry.files[0])
    assert report.format == "timesformer" and report.entry == entry.name
    assert model.pretrained_cfg["sample_rate"] == 32
    x = clip()
    assert (ours_logits(model, x) - hf_logits(ref_b, x)).abs().max() <= TOL


def mmaction2_state(authors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """mmaction2's names (mmaction/models/backbones/timesformer.py@acb79e41 with mmcv BaseTransformerLayer /
    TransformerLayerSequence ``layers``; mmaction/models/common/transformer.py@ed914c0d: attentions.0 temporal with
    ``temporal_fc``, attentions.1 spatial, ffns.0 FFNWithNorm; nn.MultiheadAttention ``in_proj_*`` / ``out_proj``)."""
    block = {"temporal_norm1": "attentions.0.norm", "temporal_attn.qkv.weight": "attentions.0.attn.in_proj_weight",
             "temporal_attn.qkv.bias": "attentions.0.attn.in_proj_bias", "temporal_attn.proj": "attentions.0.attn.out_proj",
             "temporal_fc": "attentions.0.temporal_fc", "norm1": "attentions.1.norm",
             "attn.qkv.weight": "attentions.1.attn.in_proj_weight", "attn.qkv.bias": "attentions.1.attn.in_proj_bias",
             "attn.proj": "attentions.1.attn.out_proj", "norm2": "ffns.0.norm", "mlp.fc1": "ffns.0.layers.0.0",
             "mlp.fc2": "ffns.0.layers.1"}
    out = {}
    for key, value in authors.items():
        if key.startswith("head."):
            out["cls_head.fc_cls." + key[5:]] = value
        elif key.startswith("blocks."):
            _, i, rest = key.split(".", 2)
            name = next(f"{new}{rest[len(old):]}" for old, new in block.items() if rest.startswith(old))
            out[f"backbone.transformer_layers.layers.{i}.{name}"] = value
        else:
            out["backbone." + key.replace("patch_embed.proj.", "patch_embed.projection.")] = value
    return out


def test_mmaction2_checkpoint(ref_b, tmp_path: Path) -> None:
    entry = get_weights("timesformer_b.mmaction2_kinetics400")
    state = mmaction2_state(authors_state(ref_b))
    assert "backbone.transformer_layers.layers.11.attentions.0.temporal_fc.weight" in state
    torch.save({"meta": {"mmaction_version": "1.0.0", "epoch": 15}, "state_dict": state}, tmp_path / entry.files[0])
    model = empty_model("timesformer_b")
    report = load_pretrained(model, tmp_path / entry.files[0])
    assert report.format == "mmaction2" and report.entry == entry.name
    assert model.pretrained_cfg["mean"] == [0.5] * 3
    x = clip()
    assert (ours_logits(model, x) - hf_logits(ref_b, x)).abs().max() <= TOL


def huggingface_state(authors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The authors' names as transformers publishes them (the inverse of convert_timesformer_to_pytorch.py@01080c6
    rename_key)."""
    blocks = {"norm1": "layernorm_before", "attn.qkv": "attention.attention.qkv", "attn.proj": "attention.output.dense",
              "temporal_norm1": "temporal_layernorm", "temporal_attn.qkv": "temporal_attention.attention.qkv",
              "temporal_attn.proj": "temporal_attention.output.dense", "temporal_fc": "temporal_dense",
              "norm2": "layernorm_after", "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"}
    top = {"cls_token": "timesformer.embeddings.cls_token", "pos_embed": "timesformer.embeddings.position_embeddings",
           "time_embed": "timesformer.embeddings.time_embeddings",
           "patch_embed.proj": "timesformer.embeddings.patch_embeddings.projection", "norm": "timesformer.layernorm",
           "head": "classifier"}
    out = {}
    for key, value in authors.items():
        if key.startswith("blocks."):
            _, i, rest = key.split(".", 2)
            name = next(new + rest[len(old):] for old, new in blocks.items() if rest.startswith(old))
            out[f"timesformer.encoder.layer.{i}.{name}"] = value
        else:
            module, _, leaf = key.rpartition(".") if key not in top else (key, "", "")
            out[top[module] + (f".{leaf}" if leaf else "")] = value
    return out


def write_release(name: str, model: nn.Module, folder: Path) -> Path:
    """``model``'s weights written as entry ``name``'s file is published (for test_models_weights.write_released)."""
    entry = get_weights(name)
    authors = {("head." + k[3:] if k.startswith("fc.") else k): v for k, v in model.state_dict().items()}
    authors["patch_embed.proj.weight"] = authors["patch_embed.proj.weight"].squeeze(2)  # their Conv2d
    path = folder / entry.files[0]
    if entry.format == "timesformer":
        torch.save({"epoch": 15, "model_state": {f"model.{k}": v for k, v in authors.items()}, "cfg": ""}, path)
    elif entry.format == "mmaction2":
        torch.save({"meta": {}, "state_dict": mmaction2_state(authors)}, path)
    else:  # huggingface: a folder with config.json and model.safetensors
        grid = int((model.pos_embed.shape[1] - 1) ** 0.5)
        config = TimesformerConfig(num_labels=model.fc.out_features, num_frames=model.time_embed.shape[1],
                                   image_size=grid * 16)
        path.mkdir()
        save_file({k: v.contiguous() for k, v in huggingface_state(authors).items()}, path / "model.safetensors")
        (path / "config.json").write_text(json.dumps(config.to_dict()))
    return path


@pytest.mark.parametrize("name", ["timesformer_b.timesformer_kinetics400", "timesformer_b.hf_kinetics400",
                                  "timesformer_b.mmaction2_kinetics400"])
def test_written_release_loads_and_is_recognised(name: str, tmp_path: Path) -> None:
    entry = get_weights(name)
    source = fill_random(empty_model(entry.model, entry.fc_classes, **entry.arch), seed=4)
    target = empty_model(entry.model, entry.fc_classes, **entry.arch)
    report = load_pretrained(target, write_release(name, source, tmp_path))
    assert report.entry == name
    assert torch.equal(ours_logits(source, clip()), ours_logits(target, clip()))


# ---------------------------------------------------------------- network properties

def test_parameter_count_equals_transformers() -> None:
    with torch.device("meta"):
        ref = TimesformerForVideoClassification(TimesformerConfig(num_labels=400))
    assert sum(p.numel() for p in ref.parameters()) == PARAMS_B
    assert count_params("timesformer_b") == PARAMS_B


def test_stage_of_and_drop_path() -> None:
    with torch.device("meta"):
        model = build_model("timesformer_b", 10)
        no_drop = build_model("timesformer_b", 3, drop_path=0.0)
    assert [stage_of(n, model) for n in ("cls_token", "pos_embed", "time_embed", "patch_embed.proj.weight")] == [0] * 4
    assert [stage_of(f"blocks.{i}.temporal_fc.weight", model) for i in (0, 2, 3, 5, 6, 8, 9, 11)] == [1, 1, 2, 2, 3,
                                                                                                       3, 4, 4]
    assert stage_of("norm.weight", model) == 4 and stage_of("fc.bias", model) == 5
    freeze(model, "until_layer3")
    assert {n for n, p in model.named_parameters() if p.requires_grad and not n.startswith("blocks.")} == {
        "norm.weight", "norm.bias", "fc.weight", "fc.bias"}
    assert model.blocks[-1].drop_path.rate == pytest.approx(0.1) and no_drop.blocks[-1].drop_path.rate == 0


def test_initial_temporal_fc_is_zero_but_the_first() -> None:
    """vit.py@ddb4cf3:219-227: the temporal_fc of every block but the first starts at zero (narrow, same code)."""
    model = TimeSformer(10, 64, 12, 4)
    assert model.blocks[0].temporal_fc.weight.abs().sum() > 0
    assert all(not b.temporal_fc.weight.any() and not b.temporal_fc.bias.any() for b in model.blocks[1:])
    assert not model.time_embed.any() and model.pos_embed.std() > 0


# ---------------------------------------------------------------- the authors' input (slow)

@pytest.mark.slow
def test_timesformer_b_at_the_authors_input_equals_transformers() -> None:
    """TimeSformer-B/16 on 8×224×224 (1 + 8·196 tokens), transformers' default config."""
    ref = hf_reference()
    model = empty_model("timesformer_b")
    model.load_state_dict(hf_converted(ref, model))
    x = clip(8, 224)
    assert (ours_logits(model, x) - hf_logits(ref, x)).abs().max() <= TOL

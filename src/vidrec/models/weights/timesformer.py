"""Released TimeSformer weights: converters of each release layout and the registry entries.

Layouts (vidrec.models.weights.layouts detects them):

- ``timesformer``: the authors' ``.pyth`` (PySlowFast's ``save_checkpoint``: ``{'epoch', 'model_state',
  'optimizer_state', 'cfg'}``, timesformer/utils/checkpoint.py@ddb4cf3:126-131), keys under ``model.`` (the
  ``vit_base_patch16_224`` wrapper's ``self.model``, vit.py@ddb4cf3:324) and named as ours (vit.py: ``cls_token``,
  ``pos_embed``, ``time_embed``, ``patch_embed.proj``, ``blocks.<i>.{norm1, attn.qkv, attn.proj, temporal_norm1,
  temporal_attn.qkv, temporal_attn.proj, temporal_fc, norm2, mlp.fc1, mlp.fc2}``, ``norm``) but ``head`` -> ``fc``.
- ``huggingface``: ``TimesformerForVideoClassification``: ``timesformer.embeddings.{cls_token, position_embeddings,
  time_embeddings, patch_embeddings.projection}``, ``timesformer.encoder.layer.<i>.{layernorm_before,
  attention.attention.qkv, attention.output.dense, temporal_layernorm, temporal_attention.attention.qkv,
  temporal_attention.output.dense, temporal_dense, layernorm_after, intermediate.dense, output.dense}``,
  ``timesformer.layernorm``, ``classifier`` (the names convert_timesformer_to_pytorch.py maps the authors' to).
- ``mmaction2``: mmaction/models/backbones/timesformer.py@acb79e41 with mmcv's ``BaseTransformerLayer``:
  ``backbone.transformer_layers.layers.<i>.attentions.0`` (DividedTemporalAttentionWithNorm: ``norm``,
  ``attn`` = ``nn.MultiheadAttention`` with ``in_proj_weight`` / ``in_proj_bias`` (q, k, v stacked as ``qkv``) and
  ``out_proj``, ``temporal_fc``), ``.attentions.1`` (DividedSpatialAttentionWithNorm: ``norm``, ``attn``),
  ``.ffns.0`` (FFNWithNorm: ``norm``, ``layers.0.0``, ``layers.1``) (mmaction/models/common/transformer.py@ed914c0d);
  ``backbone.{patch_embed.projection, cls_token, pos_embed, time_embed, norm}``; ``cls_head.fc_cls``.

Every layout stores the patch embedding as a Conv2d (D, 3, 16, 16); ours is the Conv3d (D, 3, 1, 16, 16).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidrec.models.timesformer import PYSLOWFAST_MEAN, PYSLOWFAST_STD
from vidrec.models.weights.entries import KINETICS400, Published, WeightsEntry, add_entry
from vidrec.models.weights.formats import register_converter
from vidrec.models.weights.torch_state import unwrap_state_dict
from vidrec.models.weights.videomae import Rules, check_hf_config, hf_state, module_rules, rename

PATCH_KEY = "patch_embed.proj.weight"


def _patch_as_conv3d(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The per-frame Conv2d patch kernel (D, 3, p, p) as our Conv3d kernel (D, 3, 1, p, p)."""
    weight = state.get(PATCH_KEY)
    if weight is not None and weight.ndim == 4:
        state[PATCH_KEY] = weight.unsqueeze(2)
    return state


def convert_authors(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """The authors' ``.pyth``: ``model_state`` without its ``model.`` prefix, ``head`` -> ``fc``."""
    return _patch_as_conv3d(rename(unwrap_state_dict(obj, path), module_rules({"head": "fc"})))


_HF_LAYER = r"timesformer\.encoder\.layer\.(\d+)\."
_HF_RULES: Rules = [
    *module_rules({"attention.attention.qkv": "attn.qkv", "attention.output.dense": "attn.proj",
                   "temporal_attention.attention.qkv": "temporal_attn.qkv",
                   "temporal_attention.output.dense": "temporal_attn.proj", "temporal_layernorm": "temporal_norm1",
                   "temporal_dense": "temporal_fc", "layernorm_before": "norm1", "layernorm_after": "norm2",
                   "intermediate.dense": "mlp.fc1", "output.dense": "mlp.fc2"}, r"timesformer\.encoder\.layer\.(\d+)\."),
    *module_rules({"timesformer.embeddings.cls_token": "cls_token", "timesformer.embeddings.position_embeddings":
                   "pos_embed", "timesformer.embeddings.time_embeddings": "time_embed",
                   "timesformer.embeddings.patch_embeddings.projection": "patch_embed.proj",
                   "timesformer.layernorm": "norm", "classifier": "fc"}),
]


def convert_huggingface(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """``TimesformerForVideoClassification`` (a folder with config.json, or its weights file)."""
    cfg, state = hf_state(obj, path)
    check_hf_config(cfg, model, path, "timesformer", {"attention_type": "divided_space_time", "qkv_bias": True})
    return _patch_as_conv3d(rename(state, _HF_RULES))


_MM_LAYER = r"backbone\.transformer_layers\.layers\.(\d+)\."
_MM_RULES: Rules = [  # nn.MultiheadAttention's in_proj_weight / in_proj_bias: q, k, v stacked as our qkv
    (_MM_LAYER + r"attentions\.0\.attn\.in_proj_(weight|bias)", r"blocks.\1.temporal_attn.qkv.\2"),
    (_MM_LAYER + r"attentions\.1\.attn\.in_proj_(weight|bias)", r"blocks.\1.attn.qkv.\2"),
    *module_rules({"attentions.0.norm": "temporal_norm1", "attentions.0.attn.out_proj": "temporal_attn.proj",
                   "attentions.0.temporal_fc": "temporal_fc", "attentions.1.norm": "norm1",
                   "attentions.1.attn.out_proj": "attn.proj", "ffns.0.norm": "norm2", "ffns.0.layers.0.0": "mlp.fc1",
                   "ffns.0.layers.1": "mlp.fc2"}, _MM_LAYER),
    *module_rules({"backbone.patch_embed.projection": "patch_embed.proj", "backbone.cls_token": "cls_token",
                   "backbone.pos_embed": "pos_embed", "backbone.time_embed": "time_embed", "backbone.norm": "norm",
                   "cls_head.fc_cls": "fc"}),
]


def convert_mmaction2(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """mmaction2's TimeSformer (``backbone.*`` / ``cls_head.fc_cls``); its data_preprocessor buffers are dropped."""
    state = {k: v for k, v in unwrap_state_dict(obj, path).items() if not k.startswith("data_preprocessor.")}
    return _patch_as_conv3d(rename(state, _MM_RULES))


register_converter("timesformer", "timesformer", convert_authors)
register_converter("huggingface", "timesformer", convert_huggingface)
register_converter("mmaction2", "timesformer", convert_mmaction2)

# ------------------------------------------------------------------ entries
TS = "facebookresearch/TimeSformer"
_CFG = f"{TS} configs/Kinetics/TimeSformer_divST_8x32_224.yaml@e17a697"
_DEFAULTS = f"{TS} timesformer/config/defaults.py@ddb4cf3"
_TS_TEST = {
    "8 frames × rate 32 at 30 fps (PySlowFast: clip of 8·32/30 s, 8 frames by linspace)": f"{_CFG}:10-11; "
    f"{_DEFAULTS}:317 DATA.TARGET_FPS 30; timesformer/datasets/decoder.py@ddb4cf3:10-27",
    "1 clip (NUM_ENSEMBLE_VIEWS 1: start = (n − clip)·0/1, the video's start) × 3 crops": f"{_CFG}:37-38; "
    f"{TS} timesformer/datasets/decoder.py@ddb4cf3:50-57",
    "test: short side 224 (TEST_CROP_SIZE), 3 crops of 224, bilinear": f"{_CFG}:14; {TS} timesformer/datasets/"
    "kinetics.py@ddb4cf3:175-180; utils.py@ddb4cf3:156-159; transform.py@ddb4cf3:55-59 (F.interpolate bilinear)",
    "mean 0.45, std 0.225 on [0, 1] RGB": f"{_DEFAULTS}:298, 304",
    "classifier on the normalised class token": f"{TS} timesformer/models/vit.py@ddb4cf3:299-305",
}
_PYTH = "TimeSformer_divST_8x32_224_K400.pyth"
_PYTH_LINK = "https://www.dropbox.com/s/g5t24we9gl5yk88/TimeSformer_divST_8x32_224_K400.pyth?dl=0"
add_entry(WeightsEntry(
    name="timesformer_b.timesformer_kinetics400", format="timesformer", files=(_PYTH,), where=_PYTH_LINK, url=None,
    classes=KINETICS400, class_list="kinetics_csv", mean=PYSLOWFAST_MEAN, std=PYSLOWFAST_STD,
    input_note="RGB scaled to [0, 1], then (x - 0.45) / 0.225", frames=8, sample_rate=32,
    train_resize="short side in [256, 320], random 224 crop, flip", test_resize=224, crop_size=224,
    clip_selection="offset", num_clips=1, num_crops=3, head="fc", fps=30, fps_rule="pyslowfast", arch={},
    test_interpolation="bilinear",
    published=Published(77.9, 93.2, "K400 val", "8 frames × 32 at 30 fps, 1 clip × 3 crops of 224 at short side 224",
                        f"{TS} README.md@a5ef29a:23"),
    sources={**_TS_TEST, "file and accuracy": f"{TS} README.md@a5ef29a:23 (a Dropbox link: no direct download)",
             "train: jitter [256, 320], crop 224": f"{_CFG}:12-13",
             "class order": "PySlowFast reads the label indices of the user's Kinetics csv files (the Kinetics "
             "class names sorted)"}))

_HF_REPO = "timesformer-base-finetuned-k400"
_HF_PRE = ("https://huggingface.co/facebook/timesformer-base-finetuned-k400/blob/"
           "4022b66955d297a015ce83c6e51613e9330ec5c6/preprocessor_config.json")
add_entry(WeightsEntry(
    name="timesformer_b.hf_kinetics400", format="huggingface", files=(_HF_REPO,),
    where=f"https://huggingface.co/facebook/{_HF_REPO} (the folder: config.json + weights)", url=None,
    classes=KINETICS400, class_list="kinetics_csv", mean=PYSLOWFAST_MEAN, std=PYSLOWFAST_STD,
    input_note="RGB scaled to [0, 1], then (x - 0.45) / 0.225 (the repository's preprocessor config)", frames=8,
    sample_rate=32, train_resize="short side in [256, 320], random 224 crop (the authors')", test_resize=224,
    crop_size=224, clip_selection="offset", num_clips=1, num_crops=3, head="fc", fps=30, fps_rule="pyslowfast",
    arch={}, test_interpolation="bilinear",
    published=Published(77.9, 93.2, "K400 val", "the authors' protocol and figure for the file Hugging Face "
                        "converted", f"{TS} README.md@a5ef29a:23"),
    sources={**_TS_TEST,
             "mean 0.45 / std 0.225, short side 224, crop 224, resample 2 (bilinear)": f"{_HF_PRE} (commit 4022b66 "
             "'update processor params'; the earlier 72d580c had 0.5 / 0.5)",
             "conversion": "transformers src/transformers/models/timesformer/convert_timesformer_to_pytorch.py@01080c6 "
             "(TimesformerConfig() defaults: 8 frames, 224, eps 1e-6; logits checked with mean = std = 0.5)",
             "same weights as": "timesformer_b.timesformer_kinetics400"}))

_MM = "open-mmlab/mmaction2 configs/recognition/timesformer"
_MM_CFG = f"{_MM}/timesformer_spaceOnly_8xb8-8x32x1-15e_kinetics400-rgb.py@91f8cdc4"
_MM_FILE = "timesformer_divST_8xb8-8x32x1-15e_kinetics400-rgb_20220815-a4d0d01f.pth"
_MM_LINK = ("https://download.openmmlab.com/mmaction/v1.0/recognition/timesformer/timesformer_divST_8xb8-8x32x1-15e_"
            f"kinetics400-rgb/{_MM_FILE}")
add_entry(WeightsEntry(
    name="timesformer_b.mmaction2_kinetics400", format="mmaction2", files=(_MM_FILE,), where=_MM_LINK, url=_MM_LINK,
    classes=KINETICS400, class_list="kinetics_csv", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
    input_note="RGB 0-255, (x - 127.5) / 127.5", frames=8, sample_rate=32,
    train_resize="RandomRescale (256, 320), RandomCrop 224, flip", test_resize=224, crop_size=224,
    clip_selection="uniform", num_clips=1, num_crops=3, head="fc", fps=None, fps_rule=None, arch={},
    test_interpolation="bilinear",
    published=Published(77.69, 93.45, "K400 val (mmaction2's copy)", "8×32 (frame-based), 1 clip × 3 crops of 224 at "
                        "short side 224; trained by mmaction2 from ImageNet-21K ViT-B", f"{_MM}/README.md@6cc912ba:25"),
    sources={"mean/std 127.5 / 127.5": f"{_MM_CFG}:24-28",
             "SampleFrames clip_len 8, frame_interval 32, 1 clip (frame-based: fps None; offset (n − 256)//2)":
             f"{_MM_CFG}:64-72; mmaction/datasets/transforms/loading.py@96d20d38:312-313",
             "Resize (-1, 224), ThreeCrop 224": f"{_MM_CFG}:73-74",
             "divided space-time": f"{_MM}/timesformer_divST_8xb8-8x32x1-15e_kinetics400-rgb.py@f4173046:3",
             "file and accuracy": f"{_MM}/README.md@6cc912ba:25"}))

"""Released VideoMAE weights: converters of each release layout and the registry entries.

Layouts (vidrec.models.weights.layouts detects them):

- ``videomae``: the authors' fine-tuned ``.pth``: ``{'model': state, 'optimizer', 'epoch', 'scaler', 'args'}`` when
  saved through ``torch.amp`` (utils.py@ed5ce1f:411-417), ``{'module': state, ...}`` through DeepSpeed (utils.py:427;
  the fine-tuning scripts pass ``--enable_deepspeed``). Keys as our network's (modeling_finetune.py): ``patch_embed.proj``,
  ``blocks.<i>.attn.qkv.weight``, ``.attn.q_bias``, ``.attn.v_bias`` ..., ``fc_norm``; ``head`` -> ``fc``.
- ``huggingface``: ``VideoMAEForVideoClassification``: ``videomae.embeddings.patch_embeddings.projection``,
  ``videomae.encoder.layer.<i>.attention.attention.{query,key,value}`` (concatenated into ``qkv``; the query/value
  biases stored as ``q_bias`` / ``v_bias`` in the published files, as ``query.bias`` / ``value.bias`` by transformers
  5: conversion_mapping.py "videomae"), ``attention.output.dense``, ``layernorm_before``, ``layernorm_after``,
  ``intermediate.dense``, ``output.dense``; ``fc_norm``; ``classifier`` -> ``fc``.
- ``mmaction2``: its port (mmaction/models/backbones/vit_mae.py@8ff889af): ``backbone.patch_embed.projection``
  (mmcv ``PatchEmbed``), ``backbone.blocks.<i>.{norm1, attn.qkv, attn.q_bias, attn.v_bias, attn.proj, norm2}``,
  ``backbone.blocks.<i>.mlp.layers.0.0`` / ``.layers.1`` (mmcv ``FFN``: ``Sequential(Sequential(Linear, act, Dropout),
  Linear, Dropout)``), ``backbone.fc_norm``, the sin-cos table as the buffer ``backbone.pos_embed``; the head
  ``cls_head.fc_cls`` (TimeSformerHead).

The sin-cos table is no parameter of ours: a file's ``pos_embed`` equal to it is dropped; a different (learnt) one is
left under its name, so that the strict load reports it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidrec.errors import CheckpointError
from vidrec.models.registry import IMAGENET_MEAN, IMAGENET_STD
from vidrec.models.vit import sinusoid_table
from vidrec.models.weights.common import HF_CONFIG, to_tensor
from vidrec.models.weights.entries import KINETICS400, SOMETHING_V2, Published, WeightsEntry, add_entry
from vidrec.models.weights.formats import register_converter
from vidrec.models.weights.torch_state import find_mapping, unwrap_state_dict

log = logging.getLogger(__name__)

Rules = list[tuple[str, str]]


def rename(state: Mapping[str, torch.Tensor], rules: Rules) -> dict[str, torch.Tensor]:
    """Each key through the first rule (regex, replacement) whose pattern matches the whole key; keys no rule matches
    keep their name (the strict load then reports them)."""
    compiled = [(re.compile(pattern), repl) for pattern, repl in rules]
    out = {}
    for key, value in state.items():
        for pattern, repl in compiled:
            match = pattern.fullmatch(key)
            if match:
                key = match.expand(repl)
                break
        out[key] = value
    return out


def module_rules(modules: Mapping[str, str], layer: str | None = None) -> Rules:
    """Rules renaming whole modules, ``{their module: our module}``, every tensor under one keeping its own name; with
    ``layer`` (a regex whose one group is the block index) the names are inside block i (ours: ``blocks.<i>.``)."""
    if layer is None:
        return [(re.escape(theirs) + r"(\..+)?", ours + r"\1") for theirs, ours in modules.items()]
    return [(layer + re.escape(theirs) + r"(\..+)?", rf"blocks.\1.{ours}\2") for theirs, ours in modules.items()]


def hf_state(obj: Any, path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(config.json, tensors)`` of a Hugging Face folder as read_checkpoint returns it, or ``({}, tensors)`` of a
    weights file given alone."""
    if isinstance(obj, Mapping) and HF_CONFIG in obj:
        return dict(obj[HF_CONFIG]), {k: to_tensor(v, path, k) for k, v in obj["state_dict"].items()}
    mapping = find_mapping(obj)
    if mapping is None:
        raise CheckpointError(f"{path}: no state dict found (got {type(obj).__name__})")
    return {}, {str(k): to_tensor(v, path, str(k)) for k, v in mapping.items()}


def check_hf_config(cfg: Mapping[str, Any], model: nn.Module, path: str | Path, model_type: str,
                    settings: Mapping[str, Any]) -> None:
    """Refuse a Hugging Face config whose network differs from ``model`` in what the tensor shapes do not show (the
    model type, the head count, ``settings``); warn when only the LayerNorm eps differs."""
    if not cfg:
        return
    if cfg.get("model_type", model_type) != model_type:
        raise CheckpointError(f"{path}: a Hugging Face {cfg.get('model_type')!r} model, not {model_type}")
    heads = cfg.get("num_attention_heads", model.num_heads)
    if heads != model.num_heads:
        raise CheckpointError(f"{path}: config.json has {heads} attention heads, the model {model.num_heads}: build "
                              f"it with num_heads={heads}")
    for key, wanted in settings.items():
        if cfg.get(key, wanted) != wanted:
            raise CheckpointError(f"{path}: config.json {key}={cfg[key]!r}; vidrec's network has {key}={wanted!r}")
    eps = cfg.get("layer_norm_eps")
    if eps is not None and eps != model.norm_eps:
        log.warning("%s: config.json layer_norm_eps=%g, the model's %g: build it with norm_eps=%g for the same "
                    "outputs (python -m vidrec.weights show <entry> lists the arch)", path, eps, model.norm_eps, eps)


def drop_sinusoid_table(state: dict[str, torch.Tensor], key: str) -> dict[str, torch.Tensor]:
    """Remove ``key`` when it holds the fixed sin-cos table (then it is no weight); keep it otherwise."""
    table = state.get(key)
    if table is not None and table.ndim == 3 and torch.allclose(
            table.float(), sinusoid_table(table.shape[1], table.shape[2]), atol=1e-5):
        state = {k: v for k, v in state.items() if k != key}
    return state


#: What a pre-training checkpoint holds that a classifier has no use for (the authors' fine-tuning drops them too:
#: run_class_finetuning.py@1d5cc4f:346-355 keeps ``encoder.*`` without its prefix).
_PRETRAIN_ONLY = ("decoder.", "encoder_to_decoder.", "mask_token", "norm.")


def convert_authors(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """The authors' ``{'model' | 'module': ...}``: our names but ``head`` (-> ``fc``). A pre-training checkpoint
    (``encoder.*``, ``decoder.*``) gives the encoder; ``fc_norm`` and ``fc``, which it lacks, keep the model's own
    initialisation, as in the authors' fine-tuning (run_class_finetuning.py@1d5cc4f:346-355, 385)."""
    state = unwrap_state_dict(obj, path)
    if any(k.startswith("encoder.") for k in state):
        state = {k.removeprefix("encoder."): v for k, v in state.items() if not k.startswith(("decoder.", "encoder_to_decoder.", "mask_token"))}
        state = {k: v for k, v in state.items() if not k.startswith(_PRETRAIN_ONLY)}
        own = model.state_dict()
        kept = [k for k in own if k.startswith(("fc_norm.", "fc."))]
        state.update({k: own[k].clone() for k in kept})
        log.info("%s: a pre-training checkpoint: its encoder is loaded, %s keep their initialisation", path,
                 ", ".join(sorted({k.rsplit(".", 1)[0] for k in kept})))
    state = drop_sinusoid_table(state, "pos_embed")
    return rename(state, module_rules({"head": "fc"}))


_HF_LAYER = r"videomae\.encoder\.layer\.(\d+)\."
_HF_RULES: Rules = [
    (_HF_LAYER + r"attention\.attention\.(?:q_bias|query\.bias)", r"blocks.\1.attn.q_bias"),
    (_HF_LAYER + r"attention\.attention\.(?:v_bias|value\.bias)", r"blocks.\1.attn.v_bias"),
    *module_rules({"attention.output.dense": "attn.proj", "layernorm_before": "norm1", "layernorm_after": "norm2",
                   "intermediate.dense": "mlp.fc1", "output.dense": "mlp.fc2"}, _HF_LAYER),
    *module_rules({"videomae.embeddings.patch_embeddings.projection": "patch_embed.proj", "classifier": "fc"}),
]


def convert_huggingface(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """``VideoMAEForVideoClassification`` (a folder with config.json, or its weights file): query/key/value weights
    concatenated into ``qkv`` (the order of the authors' ``qkv``: convert_videomae_to_pytorch.py splits it so)."""
    cfg, state = hf_state(obj, path)
    check_hf_config(cfg, model, path, "videomae", {"use_mean_pooling": True, "qv_bias": True, "qkv_bias": True})
    qkv = {}
    for key in list(state):
        match = re.fullmatch(_HF_LAYER + r"attention\.attention\.(query|key|value)\.weight", key)
        if match:
            qkv.setdefault(int(match[1]), {})[match[2]] = state.pop(key)
    for layer, parts in qkv.items():
        if set(parts) == {"query", "key", "value"}:
            state[f"blocks.{layer}.attn.qkv.weight"] = torch.cat([parts["query"], parts["key"], parts["value"]])
        else:  # an incomplete triple stays under its own names for the strict load to report
            state.update({f"videomae.encoder.layer.{layer}.attention.attention.{p}.weight": v for p, v in parts.items()})
    return rename(state, _HF_RULES)


_MM_RULES: Rules = [
    *module_rules({"mlp.layers.0.0": "mlp.fc1", "mlp.layers.1": "mlp.fc2", "norm1": "norm1", "norm2": "norm2",
                   "attn": "attn", "gamma_1": "gamma_1", "gamma_2": "gamma_2"}, r"backbone\.blocks\.(\d+)\."),
    *module_rules({"backbone.patch_embed.projection": "patch_embed.proj", "backbone.fc_norm": "fc_norm",
                   "cls_head.fc_cls": "fc"}),
]


def convert_mmaction2(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """mmaction2's VideoMAE port (``backbone.*`` / ``cls_head.fc_cls``); its data_preprocessor buffers are dropped."""
    state = {k: v for k, v in unwrap_state_dict(obj, path).items() if not k.startswith("data_preprocessor.")}
    return rename(drop_sinusoid_table(state, "backbone.pos_embed"), _MM_RULES)


register_converter("videomae", "videomae", convert_authors)
register_converter("huggingface", "videomae", convert_huggingface)
register_converter("mmaction2", "videomae", convert_mmaction2)

# ------------------------------------------------------------------ entries
VM = "MCG-NJU/VideoMAE"
SSV2 = SOMETHING_V2
_ZOO = f"{VM} MODEL_ZOO.md@5cefe18"
_K400_TEST = {
    "frames 16, rate 4 (every 4th decoded frame, no resampling: fps None)": f"{VM} scripts/kinetics/*/finetune.sh "
    "(--num_frames 16 --sampling_rate 4); kinetics.py@ed5ce1f:244 range(0, len(vr), frame_sample_rate) on decord's "
    "frames",
    "test: short side 224 (bilinear, cv2 INTER_LINEAR), 3 crops of 224 along the long side": f"{VM} kinetics.py@ed5ce1f:"
    "62-65, 141-152 (--short_side_size 224, test_num_crop 3); functional.py@ed5ce1f:38-43",
    "5 clips: start int(k·(m − 16)/4) among the m every-4th frames (≈ uniform; short videos repeat the last frame)":
    f"{VM} kinetics.py@ed5ce1f:143-148, 245-246; finetune.sh --test_num_segment 5",
    "mean/std ImageNet, [0, 1] RGB": f"{VM} kinetics.py@ed5ce1f:68-69",
    "video score: mean of the softmax over 15 views": f"{VM} engine_for_finetuning.py@2254c5e:249, 275-278",
    "fc_norm on mean-pooled tokens, head": f"{VM} run_class_finetuning.py@1d5cc4f:135-136; modeling_finetune.py@cece388:"
    "224-227, 277-278",
}
_SSV2_TEST = {
    "16 frames, segment-based (TSN) sampling, 2 clips: the frames at int(tick·x) and int(tick/2 + tick·x), tick = n/16":
    f"{VM} ssv2.py@26abf53:238-248 (num_segment 16 = --num_frames), 140-147 (clip k takes every 2nd of the 32); "
    "datasets.py@00e99da:102-116",
    "test: short side 224 (bilinear), 3 crops of 224": f"{VM} ssv2.py@26abf53:59-67, 138-147",
    "mean/std ImageNet": f"{VM} ssv2.py@26abf53:65-66",
    "2 clips × 3 crops": f"{VM} scripts/ssv2/*/finetune.sh --test_num_segment 2 --test_num_crop 3; {_ZOO}:18-20 (16x2x3)",
}


def _videomae_entry(variant: str, tag: str, data: str, drive: str, acc: tuple[float, float], row: int,
                    script: str, epochs: int) -> None:
    k400 = data == KINETICS400
    add_entry(WeightsEntry(
        name=f"videomae_vit_{variant}.videomae_{'kinetics400' if k400 else 'ssv2'}", format="videomae",
        files=(f"videomae_vit_{variant}_{tag}.pth",), where=f"https://drive.google.com/file/d/{drive}/view (Google "
        "Drive, no direct link; save it under the file name of this entry: the Drive file's own name is not given)",
        url=None, classes=data, class_list="kinetics_csv" if k400 else SOMETHING_V2, mean=IMAGENET_MEAN,
        std=IMAGENET_STD, input_note="RGB scaled to [0, 1], then (x - ImageNet mean) / ImageNet std", frames=16,
        sample_rate=4 if k400 else 1, train_resize="random resized crop 224 (scale 0.08-1), RandAugment",
        test_resize=224, crop_size=224, clip_selection="uniform" if k400 else "segments", num_clips=5 if k400 else 2,
        num_crops=3, head="fc", fc_classes=400 if k400 else 174, fps=None, fps_rule=None, arch={},
        test_interpolation="bilinear",
        published=Published(acc[0], acc[1], "K400 val" if k400 else "SSv2 val",
                            f"video-level, 16 frames {'× rate 4, 5 clips' if k400 else 'by segments, 2 clips'} × 3 "
                            f"crops of 224 at short side 224, {epochs}-epoch pre-training", f"{_ZOO}:{row}"),
        sources={**(_K400_TEST if k400 else _SSV2_TEST), "file and accuracy": f"{_ZOO}:{row} (fine-tune checkpoint)",
                 "fine-tuning script": f"{VM} {script}",
                 "class order": "K400: the authors' own csv lists (DATASET.md@89d0222:28-36, order not stated; Hugging "
                 "Face's conversion labels them with kinetics400-id2label.json)" if k400 else
                 "SSv2: the label indices of the official something-something-v2-labels.json (DATASET.md@89d0222:11)"}))


_KS = "scripts/kinetics/videomae_vit_{}_patch16_224_tubemasking_ratio_0.9_epoch_1600/finetune.sh"
for _v, _size, _drive, _acc, _row in (("s", "small", "1ygjLRm1kvs9mwGsP3lLxUExhRo6TWnrx", (79.0, 93.8), 7),
                                      ("b", "base", "1MzwteHH-1yuMnFb8vRBQDvngV1Zl-d3z", (81.5, 95.1), 10),
                                      ("l", "large", "1jX1CiqxSkCfc94y8FRW1YGHy-GNvHCuD", (85.2, 96.8), 11),
                                      ("h", "huge", "104ouJZxSVPSAm0LwJXd6IzjdA_RGLqZi", (86.6, 97.1), 12)):
    # MODEL_ZOO.md:10 links the ViT-L script from the ViT-B 1600-epoch row; the ViT-B script is the one named here
    _videomae_entry(_v, "k400", KINETICS400, _drive, _acc, _row, _KS.format(_size), 1600)
for _v, _size, _drive, _acc, _row in (("s", "small", "1ajlMrT06jiiM-5YjNI2X_UFyzsuYbbtZ", (66.8, 90.3), 18),
                                      ("b", "base", "1dt_59tBIyzdZd5Ecr22lTtzs_64MOZkT", (70.8, 92.4), 20)):
    _videomae_entry(_v, "ssv2", SSV2, _drive, _acc, _row,
                    f"scripts/ssv2/videomae_vit_{_size}_patch16_224_tubemasking_ratio_0.9_epoch_2400/finetune.sh", 2400)

# Hugging Face's conversions of the ViT-B files above (convert_videomae_to_pytorch.py: VideoMAEConfig() defaults, so
# LayerNorm eps 1e-12 in the blocks and nn.LayerNorm's 1e-5 in fc_norm: the arch below gives the same outputs)
_HF_ARCH = {"norm_eps": 1e-12, "fc_norm_eps": 1e-5}
_HF_CONVERT = ("transformers src/transformers/models/videomae/convert_videomae_to_pytorch.py@01080c6 "
               "(get_videomae_config: VideoMAEConfig() defaults; logits checked with image mean = std = 0.5)")
for _data, _repo, _row, _k400 in ((KINETICS400, "videomae-base-finetuned-kinetics", 10, True),
                                  (SSV2, "videomae-base-finetuned-ssv2", 20, False)):
    _authors = f"videomae_vit_b.videomae_{'kinetics400' if _k400 else 'ssv2'}"
    add_entry(WeightsEntry(
        name=f"videomae_vit_b.hf_{'kinetics400' if _k400 else 'ssv2'}", format="huggingface", files=(_repo,),
        where=f"https://huggingface.co/MCG-NJU/{_repo} (the folder: config.json + model.safetensors)", url=None,
        classes=_data, class_list="kinetics_csv" if _k400 else SOMETHING_V2, mean=IMAGENET_MEAN, std=IMAGENET_STD,
        input_note="RGB scaled to [0, 1], then ImageNet mean/std (the authors'; the repository's preprocessor_config.json "
        "is not readable here)", frames=16, sample_rate=4 if _k400 else 1,
        train_resize="random resized crop 224 (the authors' fine-tuning)", test_resize=224, crop_size=224,
        clip_selection="uniform" if _k400 else "segments", num_clips=5 if _k400 else 2, num_crops=3, head="fc",
        fc_classes=400 if _k400 else 174, fps=None, fps_rule=None, arch=_HF_ARCH, test_interpolation="bilinear",
        published=Published((81.5 if _k400 else 70.8), (95.1 if _k400 else 92.4), "K400 val" if _k400 else "SSv2 val",
                            "the authors' protocol and figure for the file Hugging Face converted (1600 / 2400-epoch "
                            "pre-training)", f"{_ZOO}:{_row}"),
        sources={**(_K400_TEST if _k400 else _SSV2_TEST), "conversion": _HF_CONVERT,
                 "LayerNorm eps 1e-12 / fc_norm 1e-5": "transformers models/videomae/configuration_videomae.py "
                 "(layer_norm_eps: float = 1e-12), modeling_videomae.py VideoMAEForVideoClassification (nn.LayerNorm "
                 "(config.hidden_size))",
                 "mean/std UNVERIFIED": "MCG-NJU's preprocessor_config.json is not readable here; repositories "
                 "fine-tuned from it carry ImageNet mean/std (e.g. https://huggingface.co/steveice/videomae-base-"
                 "finetuned-kinetics-finetuned-engine-subset-R2-20230417_K400_2/blob/main/preprocessor_config.json); "
                 "the weights are the authors' (trained with ImageNet statistics)",
                 "q_bias / v_bias key names in published files": "transformers conversion_mapping.py 'videomae' "
                 "(attention.attention.q_bias -> query.bias)",
                 "same weights as": _authors}))

# mmaction2's ports of the authors' K400 ViT-B / ViT-L, tested by mmaction2 on its own copy of K400
_MM = "open-mmlab/mmaction2 configs/recognition/videomae"
for _v, _cfg, _file, _acc, _line in (
    ("b", "vit-base-p16_videomae-k400-pre_16x4x1_kinetics-400", "20221013-860a3cd3", (81.3, 95.0), 25),
    ("l", "vit-large-p16_videomae-k400-pre_16x4x1_kinetics-400", "20221013-229dbb03", (85.3, 96.7), 26),
):
    _link = f"https://download.openmmlab.com/mmaction/v1.0/recognition/videomae/{_cfg}_{_file}.pth"
    add_entry(WeightsEntry(
        name=f"videomae_vit_{_v}.mmaction2_kinetics400", format="mmaction2", files=(f"{_cfg}_{_file}.pth",),
        where=_link, url=_link, classes=KINETICS400, class_list="kinetics_csv", mean=IMAGENET_MEAN, std=IMAGENET_STD,
        input_note="RGB 0-255, (x - [123.675, 116.28, 103.53]) / [58.395, 57.12, 57.375] (= ImageNet on [0, 1])",
        frames=16, sample_rate=4, train_resize="(test only: mmaction2 ported the authors' fine-tuned weights)",
        test_resize=224, crop_size=224, clip_selection="uniform", num_clips=5, num_crops=3, head="fc", fps=None,
        fps_rule=None, arch={}, test_interpolation="bilinear",
        published=Published(_acc[0], _acc[1], "K400 val (mmaction2's copy, 19,796 videos)",
                            "video-level, 16×4, 5 clips × 3 crops of 224 at short side 224",
                            f"{_MM}/README.md@6cc912ba:{_line}"),
        sources={"mean/std": f"{_MM}/vit-base-p16_videomae-k400-pre_16x4x1_kinetics-400.py@908af8a1:22-25",
                 "SampleFrames clip_len 16, frame_interval 4, num_clips 5 (frame-based: fps None); offsets "
                 "round(k·(n − 64)/4)": f"{_MM}/vit-base-p16_videomae-k400-pre_16x4x1_kinetics-400.py@908af8a1:36-40; "
                 "mmaction/datasets/transforms/loading.py@96d20d38:297-311",
                 "Resize (-1, 224), ThreeCrop 224": f"{_MM}/vit-base-p16_videomae-k400-pre_16x4x1_kinetics-400.py"
                 "@908af8a1:42-43",
                 "average_clips prob": f"{_MM}/vit-base-p16_videomae-k400-pre_16x4x1_kinetics-400.py@908af8a1:21",
                 "file and accuracy": f"{_MM}/README.md@6cc912ba:{_line}; metafile.yml@908af8a1",
                 "ViT-L: embed_dims 1024, depth 24, 16 heads": f"{_MM}/vit-large-p16_videomae-k400-pre_16x4x1_kinetics-"
                 "400.py@81766c75:4-6"}))

"""VideoMAE's fine-tuned ViT classifiers (Tong et al., NeurIPS 2022; MCG-NJU/VideoMAE modeling_finetune.py).

A plain ViT on 2×16×16 tubelets (``PatchEmbed``: Conv3d, ``tubelet_size=2``), the fixed sin-cos position table,
pre-norm blocks whose attention has a bias-free ``qkv`` plus learnt ``q_bias`` / ``v_bias``, then the mean of the
tokens through ``fc_norm`` (``use_mean_pooling=True``, run_class_finetuning.py@1d5cc4f:135-136) and the classifier — the
authors' ``head``, ours ``fc``. LayerNorms use eps 1e-6 (``vit_*_patch16_224``: ``partial(nn.LayerNorm, eps=1e-6)``);
Hugging Face's conversion uses 1e-12 in the blocks and 1e-5 in ``fc_norm`` (``norm_eps`` / ``fc_norm_eps`` here).

The position table is a function of the token count: the authors build it for the ``num_patches`` of the run's clip
(modeling_finetune.py@cece388:142 ``num_patches``, 205-212 ``get_sinusoid_encoding_table(num_patches, embed_dim)``,
run_class_finetuning.py@1d5cc4f:303-317 builds the model with the run's ``all_frames`` and input size), and
row p depends on p alone, so any clip size (8×64×64, 16×224×224 ...) gets the table of its own token count. It is
computed in ``forward`` (a few sin/cos of (tokens, width), nothing stored: it is in no state dict, the authors' neither).
"""

from __future__ import annotations

import torch
from torch import nn

from vidrec.models.layers import check_dropout, stochastic_depth_rates
from vidrec.models.registry import IMAGENET_MEAN, IMAGENET_STD, register_model
from vidrec.models.vit import Block, PatchEmbed, block_stage, init_vit_weights, sinusoid_table

REFERENCE = "MCG-NJU/VideoMAE modeling_finetune.py VisionTransformer (Tong et al., NeurIPS 2022)"

# variant -> (width, depth, heads): modeling_finetune.py vit_{small,base,large,huge}_patch16_224
VARIANTS = {"s": (384, 12, 6), "b": (768, 12, 12), "l": (1024, 24, 16), "h": (1280, 32, 16)}
# run_class_finetuning.py:47 --drop_path default 0.1; the ViT-H script passes --drop_path 0.2
# (scripts/kinetics/videomae_vit_huge_patch16_224_tubemasking_ratio_0.9_epoch_1600/finetune.sh:38)
DROP_PATH = {"s": 0.1, "b": 0.1, "l": 0.1, "h": 0.2}


class VideoMAEViT(nn.Module):
    """The VideoMAE fine-tuning ViT: tubelet embedding, sin-cos positions, ``depth`` blocks, mean-pool, fc_norm, fc.

    ``dropout`` is the authors' ``fc_drop_rate`` (before the classifier); ``init_scale`` multiplies the classifier's
    initial weights (run_class_finetuning.py:132 ``--init_scale 0.001``); ``init_values > 0`` adds layer scale.
    """

    def __init__(self, num_classes: int = 400, embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, patch_size: int = 16, tubelet_size: int = 2, dropout: float = 0.0,
                 drop_path: float = 0.0, norm_eps: float = 1e-6,
                 fc_norm_eps: float = 1e-6, init_values: float = 0.0, init_scale: float = 0.001) -> None:
        super().__init__()
        self.num_heads, self.norm_eps, self.fc_norm_eps = num_heads, norm_eps, fc_norm_eps
        self.patch_embed = PatchEmbed(embed_dim, patch_size, tubelet_size)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qv_bias=True, drop_path=rate, norm_eps=norm_eps,
                  init_values=init_values)
            for rate in stochastic_depth_rates(drop_path, depth))
        self.fc_norm = nn.LayerNorm(embed_dim, eps=fc_norm_eps)
        self.dropout = nn.Dropout(check_dropout(dropout))
        self.fc = nn.Linear(embed_dim, num_classes)
        init_vit_weights(self)
        with torch.no_grad():
            self.fc.weight.mul_(init_scale)
            self.fc.bias.mul_(init_scale)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, D): the input of ``fc``."""
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, t·h·w, D), tokens in (t, h, w) order
        x = x + sinusoid_table(x.shape[1], x.shape[2], x.device).to(x.dtype)  # no weight: computed per clip size
        for block in self.blocks:
            x = block(x)
        return self.fc_norm(x.mean(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.forward_features(x)))

    def stage_of(self, name: str) -> int:
        """Freezing stages: the blocks in quarters 1..4, fc_norm 4, the patch embedding 0."""
        return block_stage(name, len(self.blocks))


def _register(variant: str) -> None:
    width, depth, heads = VARIANTS[variant]
    name = f"videomae_vit_{variant}"

    def builder(num_classes: int, dropout: float = 0.0, drop_path: float | None = None, norm_eps: float = 1e-6,
                fc_norm_eps: float = 1e-6, num_heads: int = heads, init_values: float = 0.0) -> VideoMAEViT:
        rate = DROP_PATH[variant] if drop_path is None else drop_path
        return VideoMAEViT(num_classes, width, depth, num_heads, dropout=dropout, drop_path=rate, norm_eps=norm_eps,
                           fc_norm_eps=fc_norm_eps, init_values=init_values)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = (f"VideoMAE ViT-{variant.upper()}/16 classifier (width {width}, depth {depth}, {heads} heads); "
                       "drop_path defaults to the authors' fine-tuning rate.")
    # 16 frames (--num_frames 16) at 224 (--input_size 224) in every fine-tuning script; ImageNet mean/std in the test
    # transform (kinetics.py@ed5ce1f:68-69, ssv2.py@26abf53:65-66)
    register_model(name, family="videomae", reference=REFERENCE, frames=16, size=224, mean=IMAGENET_MEAN,
                   std=IMAGENET_STD)(builder)


for _variant in VARIANTS:
    _register(_variant)

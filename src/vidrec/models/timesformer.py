"""TimeSformer with divided space-time attention (Bertasius et al., ICML 2021; facebookresearch/TimeSformer).

``timesformer/models/vit.py`` ``VisionTransformer`` (``attention_type='divided_space_time'``): a per-frame 16×16
patch embedding, a class token, learnt spatial ``pos_embed`` (1 + 14·14 rows) and ``time_embed`` (8 rows), then 12
blocks of: temporal attention over each patch's frames (``temporal_norm1``, ``temporal_attn``, ``temporal_fc``,
residual), spatial attention over each frame's patches with the class token repeated per frame and its updates
averaged over the frames (``norm1``, ``attn``), and the MLP (``norm2``, ``mlp``); the final ``norm`` and the
classifier on the class token (authors' ``head``, ours ``fc``). ViT-B/16: width 768, 12 heads, LayerNorm eps 1e-6,
``qkv`` with bias (vit.py:324).

Other clip sizes follow the authors' ``forward_features`` (vit.py:255-285): ``pos_embed``'s 14×14 grid and
``time_embed`` are resized by nearest-neighbour interpolation to the input's grid and frame count. Tokens are kept in
(frame, patch) order here (the authors' are (patch, frame)); attention does not depend on the order.
"""

from __future__ import annotations

import torch
from torch import nn

from vidrec.models.layers import check_dropout, stochastic_depth_rates
from vidrec.models.registry import register_model
from vidrec.models.vit import Attention, Block, PatchEmbed, block_stage, init_vit_weights

REFERENCE = "facebookresearch/TimeSformer timesformer/models/vit.py (Bertasius et al., ICML 2021)"
# timesformer/config/defaults.py:298, 304 DATA.MEAN [0.45] * 3, DATA.STD [0.225] * 3 (not overridden in the config)
PYSLOWFAST_MEAN = (0.45, 0.45, 0.45)
PYSLOWFAST_STD = (0.225, 0.225, 0.225)


class DividedSpaceTimeBlock(Block):
    """Temporal attention, then spatial attention, then the MLP (vit.py ``Block.forward``, divided_space_time)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0,
                 norm_eps: float = 1e-6) -> None:
        super().__init__(dim, num_heads, mlp_ratio, qkv_bias=True, drop_path=drop_path, norm_eps=norm_eps)
        self.temporal_norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.temporal_attn = Attention(dim, num_heads, qkv_bias=True)
        self.temporal_fc = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """``x``: (B, 1 + frames·patches, D), the class token first, then the patches of frame 0, frame 1, ..."""
        b, length, d = x.shape
        n = (length - 1) // frames
        cls, patches = x[:, :1], x[:, 1:]
        xt = patches.reshape(b, frames, n, d).transpose(1, 2).reshape(b * n, frames, d)
        res = self.drop_path(self.temporal_attn(self.temporal_norm1(xt)))  # stochastic depth per (clip, patch)
        patches = patches + self.temporal_fc(res.reshape(b, n, frames, d).transpose(1, 2).reshape(b, frames * n, d))
        xs = torch.cat((cls.expand(b, frames, d).reshape(b * frames, 1, d), patches.reshape(b * frames, n, d)), 1)
        res = self.drop_path(self.attn(self.norm1(xs)))  # per (clip, frame)
        cls = cls + res[:, :1].reshape(b, frames, d).mean(1, keepdim=True)
        x = torch.cat((cls, patches + res[:, 1:].reshape(b, frames * n, d)), 1)
        return x + self.drop_path(self.mlp(self.norm2(x)))


def nearest_indices(size: int, out: int) -> torch.Tensor:
    """The source index of each of ``out`` positions when ``size`` positions are resized by ``F.interpolate(mode=
    "nearest")`` (``floor(i · size / out)`` with a float32 scale, as its kernel computes it): indexing with them is that
    resize, and exports to ONNX exactly (ONNX ``Resize`` rounds its scale differently: 14 → 2 picks 0, 6, not 0, 7)."""
    scale = torch.tensor(size / out, dtype=torch.float32)
    return (torch.arange(out, dtype=torch.float32) * scale).floor().long().clamp(max=size - 1)


class TimeSformer(nn.Module):
    """TimeSformer (divided space-time attention) built for ``num_frames`` × ``img_size``; runs on any clip size."""

    def __init__(self, num_classes: int = 400, embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, patch_size: int = 16, num_frames: int = 8, img_size: int = 224,
                 dropout: float = 0.0, drop_path: float = 0.1, norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.num_heads, self.norm_eps = num_heads, norm_eps
        self.patch_embed = PatchEmbed(embed_dim, patch_size)
        grid = img_size // patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, embed_dim))
        self.time_embed = nn.Parameter(torch.zeros(1, num_frames, embed_dim))
        self.blocks = nn.ModuleList(DividedSpaceTimeBlock(embed_dim, num_heads, mlp_ratio, rate, norm_eps)
                                    for rate in stochastic_depth_rates(drop_path, depth))
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.dropout = nn.Dropout(check_dropout(dropout))
        self.fc = nn.Linear(embed_dim, num_classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        init_vit_weights(self)
        for block in list(self.blocks)[1:]:  # vit.py:219-227: every temporal_fc but the first block's starts at zero
            nn.init.zeros_(block.temporal_fc.weight)
            nn.init.zeros_(block.temporal_fc.bias)

    def _spatial_positions(self, h: int, w: int) -> torch.Tensor:
        """``pos_embed`` for an h×w patch grid: (1, 1 + h·w, D), the grid resized by nearest neighbour if needed."""
        grid = int((self.pos_embed.shape[1] - 1) ** 0.5)
        if (h, w) == (grid, grid):
            return self.pos_embed
        other = self.pos_embed[:, 1:].reshape(1, grid, grid, -1)
        other = other[:, nearest_indices(grid, h)][:, :, nearest_indices(grid, w)].flatten(1, 2)
        return torch.cat((self.pos_embed[:, :1], other), 1)

    def _time_positions(self, frames: int) -> torch.Tensor:
        """``time_embed`` for ``frames`` frames: (1, frames, D), resized by nearest neighbour if needed."""
        if frames == self.time_embed.shape[1]:
            return self.time_embed
        return self.time_embed[:, nearest_indices(self.time_embed.shape[1], frames)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised class token (B, D): the input of ``fc``."""
        b, _, frames, _, _ = x.shape
        x = self.patch_embed(x)  # (B, D, T, h, w)
        h, w = x.shape[-2:]
        x = x.flatten(3).permute(0, 2, 3, 1)  # (B, T, h·w, D)
        pos = self._spatial_positions(h, w)
        x = x + pos[:, None, 1:] + self._time_positions(frames)[:, :, None]
        cls = (self.cls_token + pos[:, :1]).expand(b, -1, -1)
        x = torch.cat((cls, x.flatten(1, 2)), 1)
        for block in self.blocks:
            x = block(x, frames)
        return self.norm(x[:, 0])  # LayerNorm is per token: norming the class token alone is the same

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.forward_features(x)))

    def stage_of(self, name: str) -> int:
        """Freezing stages: the blocks in quarters 1..4, the final norm 4, the embeddings and tokens 0."""
        return block_stage(name, len(self.blocks))


@register_model("timesformer_b", family="timesformer", reference=REFERENCE, frames=8, size=224, mean=PYSLOWFAST_MEAN,
                std=PYSLOWFAST_STD)
def timesformer_b(num_classes: int, dropout: float = 0.0, drop_path: float = 0.1, num_frames: int = 8,
                  img_size: int = 224) -> TimeSformer:
    """TimeSformer-B/16, divided space-time, 8×224 (configs/Kinetics/TimeSformer_divST_8x32_224.yaml: NUM_FRAMES 8,
    TRAIN_CROP_SIZE 224); ``num_frames`` / ``img_size`` size ``time_embed`` / ``pos_embed`` for other releases
    (TimeSformer-HR: 16 × 448). ``drop_path`` 0.1 as vit.py:324."""
    return TimeSformer(num_classes, num_frames=num_frames, img_size=img_size, dropout=dropout, drop_path=drop_path)

"""Vision-transformer parts shared by VideoMAE and TimeSformer: patch embedding, attention, pre-norm block.

Module names follow the authors' code (timm's ViT names, which both use), so their state dicts map key for key:
``patch_embed.proj``, ``blocks.<i>.norm1``, ``.attn.qkv``, ``.attn.proj``, ``.norm2``, ``.mlp.fc1``, ``.mlp.fc2``
(VideoMAE modeling_finetune.py; TimeSformer timesformer/models/vit.py). VideoMAE's attention has a bias-free
``qkv`` and separate ``q_bias`` / ``v_bias`` (the key bias is zero); TimeSformer's ``qkv`` has a bias.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from vidrec.models.layers import DropPath, Mlp


class PatchEmbed(nn.Module):
    """Non-overlapping (tubelet, patch, patch) patches as one strided Conv3d (key ``proj``); returns (B, D, t, h, w).

    TimeSformer's per-frame Conv2d is the ``tubelet=1`` case (its 2D kernel gains a temporal axis of 1).
    """

    def __init__(self, dim: int, patch_size: int = 16, tubelet: int = 1, in_channels: int = 3) -> None:
        super().__init__()
        kernel = (tubelet, patch_size, patch_size)
        self.proj = nn.Conv3d(in_channels, dim, kernel, stride=kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Attention(nn.Module):
    """Multi-head self-attention through ``scaled_dot_product_attention`` (scale head_dim^-0.5).

    ``qv_bias=True`` is VideoMAE's variant: ``qkv`` without bias, learnt ``q_bias`` and ``v_bias``, zero key bias
    (modeling_finetune.py ``Attention.forward``: ``torch.cat((q_bias, zeros_like(v_bias), v_bias))``).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, qv_bias: bool = False,
                 attn_dropout: float = 0.0, proj_dropout: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embedding width {dim} is not a multiple of the {num_heads} heads")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias and not qv_bias)
        self.q_bias = nn.Parameter(torch.zeros(dim)) if qv_bias else None
        self.v_bias = nn.Parameter(torch.zeros(dim)) if qv_bias else None
        self.attn_dropout = attn_dropout
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        bias = self.qkv.bias
        if self.q_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_dropout if self.training else 0.0)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, n, c)))


class Block(nn.Module):
    """Pre-norm transformer block ``x + attn(norm1(x))``, ``x + mlp(norm2(x))``, each branch with stochastic depth
    and, when ``init_values > 0``, a learnt per-channel scale ``gamma_1`` / ``gamma_2`` (VideoMAE's layer scale)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True, qv_bias: bool = False,
                 drop_path: float = 0.0, norm_eps: float = 1e-6, init_values: float = 0.0, dropout: float = 0.0,
                 attn_dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, qv_bias, attn_dropout, dropout)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), dropout=dropout)
        self.drop_path = DropPath(drop_path)
        self.gamma_1 = nn.Parameter(torch.full((dim,), float(init_values))) if init_values > 0 else None
        self.gamma_2 = nn.Parameter(torch.full((dim,), float(init_values))) if init_values > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = self.attn(self.norm1(x))
        x = x + self.drop_path(attn if self.gamma_1 is None else self.gamma_1 * attn)
        mlp = self.mlp(self.norm2(x))
        return x + self.drop_path(mlp if self.gamma_2 is None else self.gamma_2 * mlp)


def sinusoid_table(positions: int, dim: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The fixed sin-cos table (1, positions, dim) of VideoMAE: angle ``p / 10000^(2·(j//2)/dim)``, sin on even j,
    cos on odd j, computed in float64 and returned as float32 (modeling_finetune.py ``get_sinusoid_encoding_table``).
    Row p depends on p alone, so the table of n positions is the first n rows of any longer one."""
    pos = torch.arange(positions, dtype=torch.float64, device=device)[:, None]
    j = torch.arange(dim, device=device)
    exponent = (2 * (j // 2)).to(torch.float64) / dim
    angle = pos / torch.pow(torch.tensor(10000.0, dtype=torch.float64, device=device), exponent)
    table = torch.where(j % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.to(torch.float32)[None]


def init_vit_weights(module: nn.Module) -> None:
    """timm's ViT init, as both authors use: Linear weights truncated-normal (std 0.02) with zero bias, LayerNorm
    (1, 0); the patch convolution keeps PyTorch's default."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def block_stage(name: str, depth: int) -> int:
    """Stage of a parameter name for freezing (vidrec.models.finetune): ``blocks.<i>`` in quarters 1..4 of the depth,
    the final norms with the last quarter (4), the embeddings 0 (``fc`` is handled by finetune: 5)."""
    parts = name.split(".")
    if parts[0] == "blocks" and len(parts) > 1 and parts[1].isdigit():
        return 1 + (4 * int(parts[1])) // depth
    if parts[0] in ("norm", "fc_norm"):
        return 4
    return 0

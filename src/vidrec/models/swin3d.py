"""Video Swin Transformer (Liu et al., CVPR 2022; SwinTransformer/Video-Swin-Transformer), as torchvision's swin3d.

Patch embedding (2x4x4 conv, LayerNorm), four stages of Swin blocks — window attention over 3D windows (8x7x7; the
SSv2 model 16x7x7) with a learned relative position bias, every second block on windows shifted by half a window —
with a patch merging (2x2 spatial neighbours concatenated, LayerNorm, linear 4C -> 2C) between stages, a final
LayerNorm, the mean over all positions and the classifier ``fc``. Where the feature map is no larger than the window
along a dimension, the window shrinks to the map and that dimension is not shifted; the bias is then the first rows
and columns of the full window's table (Video-Swin-Transformer ``get_window_size`` and ``WindowAttention3D.forward``
``relative_position_index[:N, :N]``; torchvision ``_get_window_and_shift_size``), so any clip size runs.

Module names are torchvision's (``patch_embed``, ``features.<2i>.<j>`` blocks of stage i + 1,
``features.<2i + 1>`` patch merging, ``norm``; the MLP's linears ``mlp.0`` / ``mlp.3``), so torchvision's
state dicts load once their ``head`` is called ``fc``. The authors' head (I3DHead: average pool, dropout,
``fc_cls``) is ``fc`` on the pooled features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidrec.models.layers import (
    Triple,
    biased_attention,
    check_dropout,
    drop_path,
    stochastic_depth_rates,
    triple,
)
from vidrec.models.registry import IMAGENET_MEAN, IMAGENET_STD, register_model

REFERENCE = "SwinTransformer/Video-Swin-Transformer mmaction/models/backbones/swin_transformer.py; torchvision swin3d"
MASKED = -100.0  # the additive mask between tokens of different regions of a shifted window (both references)


def fit_window(size: Triple, window: Triple, shift: Triple) -> tuple[Triple, Triple]:
    """Window and shift for a feature map of ``size``: a dimension no larger than the window takes the map's size
    and no shift."""
    fitted = [(s, 0) if s <= w else (w, h) for s, w, h in zip(size, window, shift)]
    return tuple(w for w, _ in fitted), tuple(h for _, h in fitted)


def _pad_to(x: torch.Tensor, multiple: Triple) -> torch.Tensor:
    """Zero-pad the (T, H, W) dimensions of a (B, T, H, W, C) tensor at their ends up to multiples of ``multiple``."""
    t, h, w = ((-s) % m for s, m in zip(x.shape[1:4], multiple))
    return F.pad(x, (0, 0, 0, w, 0, h, 0, t)) if t or h or w else x


def shift_mask(size: Triple, window: Triple, shift: Triple, device: torch.device) -> torch.Tensor:
    """(windows, N, N) additive mask of the shifted windows of a padded map of ``size``: tokens that the cyclic
    shift brought together from different regions of the map do not attend to each other."""
    labels = []
    for s, w, h in zip(size, window, shift):
        axis = torch.full((s,), 2, dtype=torch.int64, device=device)  # the last ``shift`` positions (all, when 0)
        if h:
            axis[: s - w] = 0
            axis[s - w: s - h] = 1
        labels.append(axis)
    region = labels[0].view(-1, 1, 1) * 9 + labels[1].view(1, -1, 1) * 3 + labels[2].view(1, 1, -1)
    region = partition(region[None, ..., None], window).flatten(0, 1).squeeze(-1)  # (windows, N)
    return (region[:, None, :] != region[:, :, None]).float() * MASKED


def partition(x: torch.Tensor, window: Triple) -> torch.Tensor:
    """(B, T, H, W, C) -> (B, windows, N, C), windows in (T, H, W) order, tokens in (t, h, w) order."""
    b, t, h, w, c = x.shape
    x = x.reshape(b, t // window[0], window[0], h // window[1], window[1], w // window[2], window[2], c)
    return x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(b, -1, window[0] * window[1] * window[2], c)


def unpartition(x: torch.Tensor, window: Triple, size: Triple) -> torch.Tensor:
    """The inverse of :func:`partition` for a map of ``size`` (T, H, W)."""
    b, c = x.shape[0], x.shape[-1]
    grid = [s // w for s, w in zip(size, window)]
    x = x.reshape(b, *grid, *window, c).permute(0, 1, 4, 2, 5, 3, 6, 7)
    return x.reshape(b, *size, c)


class WindowAttention3d(nn.Module):
    """Multi-head self-attention inside 3D windows, with a relative position bias (``relative_position_bias_table``
    of (2Wd-1)(2Wh-1)(2Ww-1) x heads entries, indexed by the buffer ``relative_position_index``)."""

    def __init__(self, dim: int, heads: int, window: Triple) -> None:
        super().__init__()
        self.heads, self.window_size = heads, tuple(window)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window[0] - 1) * (2 * window[1] - 1) * (2 * window[2] - 1), heads))
        grid = torch.stack(torch.meshgrid(*(torch.arange(w) for w in window), indexing="ij")).flatten(1)
        offset = (grid[:, :, None] - grid[:, None, :]).permute(1, 2, 0) + torch.tensor(window) - 1  # (N, N, 3), >= 0
        strides = torch.tensor([(2 * window[1] - 1) * (2 * window[2] - 1), 2 * window[2] - 1, 1])
        self.register_buffer("relative_position_index", (offset * strides).sum(-1))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def bias(self, tokens: int) -> torch.Tensor:
        """(heads, N, N) bias of a window of ``tokens`` positions (the first rows/columns of the full window's)."""
        index = self.relative_position_index[:tokens, :tokens].reshape(-1)
        return self.relative_position_bias_table[index].view(tokens, tokens, -1).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, windows, N, C) -> same; ``mask`` (windows, N, N) for shifted windows.

        The bias (+ mask) is the additive bias of ``layers.biased_attention``; without a mask windows
        join the batch (B·windows, heads), with one they join the heads (B, windows·heads) so the (windows, heads)
        mask broadcasts over the batch without a copy.
        """
        b, windows, n, c = x.shape
        bias = self.bias(n)[None]  # (1, heads, N, N)
        if mask is not None:
            bias = bias + mask[:, None]  # (windows, heads, N, N)
        groups = bias.shape[0]
        qkv = self.qkv(x).view(b, windows, n, 3, self.heads, c // self.heads).permute(3, 0, 1, 4, 2, 5)
        q, k, v = qkv.reshape(3, b * windows // groups, groups * self.heads, n, c // self.heads).unbind(0)
        attn_mask = bias.reshape(1, groups * self.heads, n, n).to(q.dtype)
        out = biased_attention(q, k, v, attn_mask)
        out = out.view(b, windows, self.heads, n, c // self.heads).transpose(2, 3).reshape(b, windows, n, c)
        return self.proj(out)


class SwinBlock3d(nn.Module):
    """``x + attn(norm1(x))`` over (shifted) windows, then ``x + mlp(norm2(x))``; both branches with drop path."""

    def __init__(self, dim: int, heads: int, window: Triple, shifted: bool, drop_path: float = 0.0,
                 mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.shifted = shifted
        self.drop_rate = drop_path
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention3d(dim, heads, window)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)  # indices of torchvision's MLP: mlp.0 and mlp.3 (the dropouts have rate 0)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.0), nn.Linear(hidden, dim))

    def attention(self, x: torch.Tensor, window: Triple, shift: Triple, mask: torch.Tensor | None) -> torch.Tensor:
        """Pad to whole windows, roll by ``-shift``, attend per window, roll back, crop."""
        t, h, w = x.shape[1:4]
        x = _pad_to(x, window)
        size = tuple(x.shape[1:4])
        if any(shift):
            x = torch.roll(x, tuple(-s for s in shift), dims=(1, 2, 3))
        x = unpartition(self.attn(partition(x, window), mask), window, size)
        if any(shift):
            x = torch.roll(x, shift, dims=(1, 2, 3))
        return x[:, :t, :h, :w]

    def forward(self, x: torch.Tensor, window: Triple, shift: Triple, mask: torch.Tensor | None) -> torch.Tensor:
        x = x + drop_path(self.attention(self.norm1(x), window, shift, mask), self.drop_rate, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_rate, self.training)


class SwinStage(nn.ModuleList):
    """The blocks of one stage (keys ``<j>.*``); the window, shift and shift mask are computed once per stage."""

    def __init__(self, blocks: list[SwinBlock3d], window: Triple) -> None:
        super().__init__(blocks)
        self.window = window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = tuple(x.shape[1:4])
        window, shift = fit_window(size, self.window, tuple(w // 2 for w in self.window))
        mask = None
        if any(shift):
            padded = tuple(s + (-s) % w for s, w in zip(size, window))
            mask = shift_mask(padded, window, shift, x.device)
        for block in self:
            if block.shifted and mask is not None:
                x = block(x, window, shift, mask)
            else:
                x = block(x, window, (0, 0, 0), None)
        return x


class PatchMerging(nn.Module):
    """2x2 spatial neighbours concatenated (C -> 4C, order (0,0), (1,0), (0,1), (1,1)), LayerNorm, linear to 2C."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _pad_to(x, (1, 2, 2))
        x = torch.cat([x[:, :, 0::2, 0::2], x[:, :, 1::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x))


class PatchEmbed3d(nn.Module):
    """Non-overlapping patches (the input zero-padded to whole patches), projected by a conv, then LayerNorm;
    (B, 3, T, H, W) -> (B, T', H', W', C)."""

    def __init__(self, dim: int, patch: Triple) -> None:
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv3d(3, dim, patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, h, w = ((-s) % p for s, p in zip(x.shape[2:], self.patch))
        if t or h or w:
            x = F.pad(x, (0, w, 0, h, 0, t))
        return self.norm(self.proj(x).permute(0, 2, 3, 4, 1))


class SwinTransformer3d(nn.Module):
    """Video Swin Transformer: ``embed_dim`` channels in stage 1, doubled by each patch merging."""

    def __init__(self, embed_dim: int, depths: tuple[int, ...], heads: tuple[int, ...], num_classes: int = 400,
                 window_size: int | Triple = (8, 7, 7), patch_size: int | Triple = (2, 4, 4), dropout: float = 0.0,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        window = triple(window_size)
        self.patch_embed = PatchEmbed3d(embed_dim, triple(patch_size))
        rates = iter(stochastic_depth_rates(drop_path, sum(depths)))
        layers: list[nn.Module] = []
        for i, (depth, head_count) in enumerate(zip(depths, heads)):
            dim = embed_dim * 2 ** i
            layers.append(SwinStage([SwinBlock3d(dim, head_count, window, j % 2 == 1, next(rates))
                                     for j in range(depth)], window))
            if i < len(depths) - 1:
                layers.append(PatchMerging(dim))
        self.features = nn.Sequential(*layers)
        self.num_features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(self.num_features)
        self.dropout = nn.Dropout(check_dropout(dropout))
        self.fc = nn.Linear(self.num_features, num_classes)
        for m in self.modules():  # torchvision's init (the authors': the same, with fc_cls ~ N(0, 0.01))
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, WindowAttention3d):
                nn.init.trunc_normal_(m.relative_position_bias_table, std=0.02)

    def stage_of(self, name: str) -> int:
        """0 patch embedding, 1-4 the stages (the patch merging that follows a stage belongs to it, as the authors'
        ``layers.<i>.downsample``), 4 the final norm, 5 ``fc``."""
        top, _, rest = name.partition(".")
        if top == "features":
            return int(rest.split(".", 1)[0]) // 2 + 1
        return {"norm": 4, "fc": 5}.get(top, 0)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> pooled features (B, num_features), the input of ``fc``."""
        x = self.norm(self.features(self.patch_embed(x)))
        return x.mean(dim=(1, 2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.forward_features(x)))


# Variants: torchvision swin3d_t/s/b (models/video/swin_transformer.py) = Video-Swin-Transformer configs/_base_/models/
# swin/swin_{tiny,small,base}.py with patch_size (2, 4, 4) (configs/recognition/swin/*.py:4). Default drop path: the
# authors' Kinetics-400 configs (swin_{tiny,small}_..._kinetics400_1k.py:4 drop_path_rate=0.1, swin_base_..._1k.py:4 0.3).
_ARCH = {"t": (96, (2, 2, 6, 2), (3, 6, 12, 24), 0.1), "s": (96, (2, 2, 18, 2), (3, 6, 12, 24), 0.1),
         "b": (128, (2, 2, 18, 2), (4, 8, 16, 32), 0.3)}


def _swin3d(variant: str, num_classes: int, dropout: float, drop_path: float | None,
            window_size: int | Triple) -> SwinTransformer3d:
    dim, depths, heads, default_rate = _ARCH[variant]
    return SwinTransformer3d(dim, depths, heads, num_classes, window_size, dropout=dropout,
                             drop_path=default_rate if drop_path is None else drop_path)


_REGISTER = dict(family="swin3d", reference=REFERENCE, frames=32, size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD)


@register_model("swin3d_t", **_REGISTER)
def swin3d_t(num_classes: int, dropout: float = 0.0, drop_path: float | None = None,
             window_size: int | Triple = (8, 7, 7)) -> SwinTransformer3d:
    """Swin-T: 96 channels, depths 2-2-6-2, 28.2 M parameters (at 400 classes)."""
    return _swin3d("t", num_classes, dropout, drop_path, window_size)


@register_model("swin3d_s", **_REGISTER)
def swin3d_s(num_classes: int, dropout: float = 0.0, drop_path: float | None = None,
             window_size: int | Triple = (8, 7, 7)) -> SwinTransformer3d:
    """Swin-S: 96 channels, depths 2-2-18-2, 49.8 M parameters."""
    return _swin3d("s", num_classes, dropout, drop_path, window_size)


@register_model("swin3d_b", **_REGISTER)
def swin3d_b(num_classes: int, dropout: float = 0.0, drop_path: float | None = None,
             window_size: int | Triple = (8, 7, 7)) -> SwinTransformer3d:
    """Swin-B: 128 channels, depths 2-2-18-2, 88.0 M parameters; ``window_size=(16, 7, 7)`` for the SSv2 model."""
    return _swin3d("b", num_classes, dropout, drop_path, window_size)

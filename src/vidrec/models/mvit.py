"""Multiscale Vision Transformers: MViT v1 (Fan et al., ICCV 2021) and MViTv2 (Li et al., CVPR 2022).

One :class:`MViT` class serves both, built from a list of :class:`BlockSpec` that :func:`block_specs` derives the
way PySlowFast derives them from its config (slowfast/models/video_model_builder.py@88bb4c9:915-1030: ``DIM_MUL``,
``HEAD_MUL``, ``POOL_Q_STRIDE``, ``POOL_KV_STRIDE_ADAPTIVE``, ``POOL_KVQ_KERNEL``):

- a 3x7x7 conv stride (2, 4, 4) patch embedding, a class token, then stages of blocks; the first block of stages
  2-4 pools q by (1, 2, 2) and doubles the heads and the width (v1: the width doubles in the MLP of the block
  before it, ``DIM_MUL_IN_ATT`` False; v2: in the attention of the block itself); k and v are pooled by a stride
  that starts at (1, 8, 8) and divides by the q stride at each stage;
- v1 (``mvit_v1_b``, torchvision's port of pytorchvideo / PySlowFast MViT-B 16×4): separable absolute position
  embeddings (temporal + spatial, plus one for the class token); q pooled only where its stride is > 1;
- v2 (``mvit_v2_s``, ``mvit_v2_b``): decomposed relative position biases (h, w, t tables per block), residual
  pooling (q added after attention, class token excepted), q pooled (3x3x3, stride 1) in every block.

The classifier ``fc`` takes the final LayerNorm of the class token (the authors' ``TransformerBasicHead``, whose
softmax in eval mode is left to the test stage). Attention runs through ``layers.biased_attention``; v2's
relative position terms are additive to the attention logits, its ``bias``.

Other clip sizes than the one a network was built for (``temporal_size``, ``spatial_size``): the relative
position tables are interpolated linearly to the new distance range (PySlowFast attention.py@198bf9d:48-61
``get_rel_pos``; torchvision ``_interpolate``); v1's separable embeddings are resized as PySlowFast's
``_get_pos_embed`` resizes their sum (video_model_builder.py@88bb4c9:1118-1141, trilinear,
align_corners=False) — done here per factor (temporal linear, spatial bilinear), equal by linearity since the
weights of each axis sum to one.

Module names are torchvision's (``conv_proj``, ``pos_encoding.*``, ``blocks.N.attn.qkv``, ``attn.project.0``,
``attn.pool_q.pool`` / ``pool_q.norm_act.0``, ``mlp.0`` / ``mlp.3``, ``project``, ``norm``), so torchvision's
state dicts load once ``head.1`` is named ``fc`` (vidrec.models.weights.mvit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import accumulate

import torch
import torch.nn.functional as F
from torch import nn

from vidrec.models.layers import DropPath, Triple, biased_attention, check_dropout, stochastic_depth_rates
from vidrec.models.registry import register_model

REFERENCE = "torchvision models/video/mvit.py (MViT); facebookresearch/SlowFast slowfast/models/video_model_builder.py"
# PySlowFast DATA.MEAN / DATA.STD (slowfast/config/defaults.py@287ec00:687, 693); torchvision's MViT weights use the
# same (torchvision 0.29.1 models/video/mvit.py:609-610, 642-643)
MVIT_MEAN = (0.45, 0.45, 0.45)
MVIT_STD = (0.225, 0.225, 0.225)
EMBED_DIM = 96
KV_STRIDE = (1, 8, 8)  # POOL_KV_STRIDE_ADAPTIVE of every Kinetics config
QKV_KERNEL = (3, 3, 3)  # POOL_KVQ_KERNEL of the v1 16x4 and every v2 config


def _layer_norm(dim: int, eps: float = 1e-6) -> nn.LayerNorm:
    return nn.LayerNorm(dim, eps=eps)  # MVIT.NORM "layernorm": partial(nn.LayerNorm, eps=1e-6)


@dataclass(frozen=True)
class BlockSpec:
    """One block: heads, widths in and out, pooling kernels (None: no pooling) and strides of q and of k/v."""

    heads: int
    dim_in: int
    dim_out: int
    kernel_q: Triple | None
    kernel_kv: Triple | None
    stride_q: Triple
    stride_kv: Triple


def block_specs(depths: tuple[int, ...], v2: bool, kvq_kernel: Triple | None = QKV_KERNEL,
                embed_dim: int = EMBED_DIM, kv_stride: Triple = KV_STRIDE) -> list[BlockSpec]:
    """The blocks of an MViT with ``depths`` blocks per stage, as PySlowFast builds them from its config.

    ``kvq_kernel`` None is PySlowFast's default rule: a pooling kernel of ``s + 1`` where the stride ``s`` > 1, else 1
    (video_model_builder.py@88bb4c9:928-954).
    """
    def kernel(stride: Triple) -> Triple:
        return tuple(kvq_kernel) if kvq_kernel is not None else tuple(s + 1 if s > 1 else s for s in stride)

    def pooled(k: Triple | None, stride: Triple) -> Triple | None:  # PySlowFast skips a 1x1x1 stride-1 pool
        return k if k is not None and (math.prod(k) > 1 or math.prod(stride) > 1) else None

    starts = set(list(accumulate(depths))[:-1])  # the first block of stages 2..4
    heads, dim, kv = 1, embed_dim, tuple(kv_stride)
    specs = []
    for i in range(sum(depths)):
        down = i in starts
        stride_q = (1, 2, 2) if down else (1, 1, 1)
        if down:
            heads *= 2
            kv = tuple(max(s // q, 1) for s, q in zip(kv, stride_q))
        dim_out = 2 * dim if (down if v2 else i + 1 in starts) else dim
        kernel_q = kernel(stride_q) if v2 or down else None  # v1 lists POOL_Q_STRIDE for the stage starts only
        specs.append(BlockSpec(heads, dim, dim_out, pooled(kernel_q, stride_q), pooled(kernel(kv), kv), stride_q, kv))
        dim = dim_out
    return specs


def _pool_tokens(x: torch.Tensor, thw: Triple, pool) -> tuple[torch.Tensor, Triple]:
    """Apply ``pool`` (on (N, C, T, H, W)) to the tokens of ``x`` (..., 1 + T·H·W, C), the class token left apart."""
    lead, c = x.shape[:-2], x.shape[-1]
    cls, tokens = x[..., :1, :], x[..., 1:, :]
    grid = tokens.reshape(-1, *thw, c).permute(0, 4, 1, 2, 3)
    grid = pool(grid)
    thw = tuple(grid.shape[2:])
    tokens = grid.flatten(2).transpose(1, 2).reshape(*lead, -1, c)
    return torch.cat((cls, tokens), dim=-2), thw


class Pool(nn.Module):
    """Depthwise conv pooling of each head's tokens, then LayerNorm over all tokens (torchvision keys ``pool``,
    ``norm_act.0``)."""

    def __init__(self, dim: int, kernel: Triple, stride: Triple, eps: float = 1e-6) -> None:
        super().__init__()
        self.pool = nn.Conv3d(dim, dim, kernel, stride, [k // 2 for k in kernel], groups=dim, bias=False)
        self.norm_act = nn.Sequential(_layer_norm(dim, eps))

    def forward(self, x: torch.Tensor, thw: Triple) -> tuple[torch.Tensor, Triple]:
        x, thw = _pool_tokens(x, thw, self.pool)
        return self.norm_act(x), thw


def _rel_pos(table: torch.Tensor, q_size: int, k_size: int) -> torch.Tensor:
    """The (q_size, k_size, C) embeddings of the q-k distances along one axis (PySlowFast attention.py@198bf9d:48-61,
    79-94): the table resized linearly to 2·max(q, k) − 1 rows, distances scaled up on the shorter axis."""
    rows = 2 * max(q_size, k_size) - 1
    if table.shape[0] != rows:
        table = F.interpolate(table.t().unsqueeze(0), size=rows, mode="linear").squeeze(0).t()
    q_ratio, k_ratio = max(k_size / q_size, 1.0), max(q_size / k_size, 1.0)
    q_pos = torch.arange(q_size, device=table.device)[:, None] * q_ratio
    k_pos = torch.arange(k_size, device=table.device)[None, :] * k_ratio
    return table[(q_pos - k_pos + (k_size - 1) * k_ratio).long()]


class MultiscaleAttention(nn.Module):
    """Pooling attention: q, k, v pooled per head; v2 adds decomposed relative position biases and q after it."""

    def __init__(self, spec: BlockSpec, dim_out: int, input_size: Triple, v2: bool, pool_norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.num_heads = spec.heads
        self.dim_out = dim_out
        head_dim = dim_out // spec.heads
        self.qkv = nn.Linear(spec.dim_in, 3 * dim_out)
        self.project = nn.Sequential(nn.Linear(dim_out, dim_out))
        eps = pool_norm_eps
        self.pool_q = Pool(head_dim, spec.kernel_q, spec.stride_q, eps) if spec.kernel_q is not None else None
        self.pool_k = Pool(head_dim, spec.kernel_kv, spec.stride_kv, eps) if spec.kernel_kv is not None else None
        self.pool_v = Pool(head_dim, spec.kernel_kv, spec.stride_kv, eps) if spec.kernel_kv is not None else None
        self.residual_pool = v2
        self.rel_pos_h = self.rel_pos_w = self.rel_pos_t = None
        if v2:  # table sizes of the build-time grid (attention.py@198bf9d:274-289)
            size = max(input_size[1:])
            spatial = 2 * max(size // spec.stride_q[1], size // spec.stride_kv[1]) - 1
            self.rel_pos_h = nn.Parameter(torch.zeros(spatial, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(spatial, head_dim))
            self.rel_pos_t = nn.Parameter(torch.zeros(2 * input_size[0] - 1, head_dim))

    def rel_pos_bias(self, q: torch.Tensor, q_thw: Triple, k_thw: Triple) -> torch.Tensor:
        """The additive attention bias (B, heads, Nq, Nk) of the decomposed relative positions (zero for the class
        token's row and column): q·R_t + q·R_h + q·R_w (attention.py@198bf9d:64-147)."""
        b, n, _, c = q.shape
        r_q = q[:, :, 1:].reshape(b, n, *q_thw, c)
        tables = (self.rel_pos_t, self.rel_pos_h, self.rel_pos_w)
        rt, rh, rw = (_rel_pos(t, qs, ks) for t, qs, ks in zip(tables, q_thw, k_thw))
        rel_t = torch.einsum("bnthwc,tkc->bnthwk", r_q, rt)
        rel_h = torch.einsum("bnthwc,hkc->bnthwk", r_q, rh)
        rel_w = torch.einsum("bnthwc,wkc->bnthwk", r_q, rw)
        bias = rel_t[..., :, None, None] + rel_h[..., None, :, None] + rel_w[..., None, None, :]
        return F.pad(bias.reshape(b, n, math.prod(q_thw), math.prod(k_thw)), (1, 0, 1, 0))

    def forward(self, x: torch.Tensor, thw: Triple) -> tuple[torch.Tensor, Triple]:
        b, n, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        k_thw = thw
        if self.pool_k is not None:
            k, k_thw = self.pool_k(k, thw)
            v = self.pool_v(v, thw)[0]
        if self.pool_q is not None:
            q, thw = self.pool_q(q, thw)
        bias = self.rel_pos_bias(q, thw, k_thw) if self.rel_pos_h is not None else None
        out = biased_attention(q, k, v, bias)
        if self.residual_pool:
            out = out + F.pad(q[:, :, 1:], (0, 0, 1, 0))
        return self.project(out.transpose(1, 2).reshape(b, -1, self.dim_out)), thw


class MultiscaleBlock(nn.Module):
    """``x + attn(norm1(x))`` (the skip max-pooled like q, projected to the new width in v2), then the MLP."""

    def __init__(self, spec: BlockSpec, input_size: Triple, v2: bool, drop_path: float,
                 pool_norm_eps: float = 1e-6) -> None:
        super().__init__()
        attn_dim = spec.dim_out if v2 else spec.dim_in
        self.proj_after_attn = v2
        self.norm1 = _layer_norm(spec.dim_in)
        self.attn = MultiscaleAttention(spec, attn_dim, input_size, v2, pool_norm_eps)
        self.norm2 = _layer_norm(attn_dim)
        # torchvision's MLP keys: Linear (0), GELU, dropout slot (2), Linear (3)
        self.mlp = nn.Sequential(nn.Linear(attn_dim, 4 * attn_dim), nn.GELU(), nn.Identity(),
                                 nn.Linear(4 * attn_dim, spec.dim_out))
        self.project = nn.Linear(spec.dim_in, spec.dim_out) if spec.dim_in != spec.dim_out else None
        self.skip_stride = spec.stride_q if math.prod(spec.stride_q) > 1 else None
        self.drop_path = DropPath(drop_path)

    def _skip(self, grid: torch.Tensor) -> torch.Tensor:
        kernel = [s + 1 if s > 1 else s for s in self.skip_stride]
        return F.max_pool3d(grid, kernel, self.skip_stride, [k // 2 for k in kernel])

    def forward(self, x: torch.Tensor, thw: Triple) -> tuple[torch.Tensor, Triple]:
        x_norm = self.norm1(x)
        x_attn, thw_out = self.attn(x_norm, thw)
        if self.project is not None and self.proj_after_attn:
            x = self.project(x_norm)
        if self.skip_stride is not None:
            x = _pool_tokens(x, thw, self._skip)[0]
        x = x + self.drop_path(x_attn)
        x_norm = self.norm2(x)
        if self.project is not None and not self.proj_after_attn:
            x = self.project(x_norm)
        return x + self.drop_path(self.mlp(x_norm)), thw_out


class PositionalEncoding(nn.Module):
    """The class token, and v1's separable absolute embeddings (``spatial_pos`` + ``temporal_pos``, ``class_pos``)."""

    def __init__(self, dim: int, grid: Triple, absolute: bool) -> None:
        super().__init__()
        self.grid = tuple(grid)
        self.class_token = nn.Parameter(torch.zeros(dim))
        self.spatial_pos = self.temporal_pos = self.class_pos = None
        if absolute:
            self.spatial_pos = nn.Parameter(torch.zeros(grid[1] * grid[2], dim))
            self.temporal_pos = nn.Parameter(torch.zeros(grid[0], dim))
            self.class_pos = nn.Parameter(torch.zeros(dim))

    def embedding(self, thw: Triple) -> torch.Tensor:
        """The (T·H·W, C) embedding of a ``thw`` token grid, resized from the build-time grid where they differ."""
        t, h, w = thw
        spatial, temporal = self.spatial_pos, self.temporal_pos
        if (h, w) != self.grid[1:]:
            grid = spatial.t().reshape(1, -1, *self.grid[1:])
            spatial = F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False).flatten(2)[0].t()
        if t != self.grid[0]:
            temporal = F.interpolate(temporal.t().unsqueeze(0), size=t, mode="linear", align_corners=False)[0].t()
        return (temporal[:, None] + spatial[None]).flatten(0, 1)

    def forward(self, x: torch.Tensor, thw: Triple) -> torch.Tensor:
        cls = self.class_token.expand(x.shape[0], 1, -1)
        if self.spatial_pos is None:
            return torch.cat((cls, x), dim=1)
        return torch.cat((cls + self.class_pos, x + self.embedding(thw)), dim=1)


class MViT(nn.Module):
    """MViT v1 / v2 on clips (B, 3, T, H, W): patch embedding, :class:`MultiscaleBlock` stages, class-token ``fc``.

    ``temporal_size`` / ``spatial_size`` are the clip the position tables are built for (the authors' training
    clip); other clips resize them. ``drop_path``: stochastic depth rising linearly over the blocks.
    ``pool_norm_eps``: the epsilon of the LayerNorms after q/k/v pooling (1e-6 as the other norms; pytorchvideo's
    MViT of its 2021 model zoo used ``nn.LayerNorm``'s 1e-5 there: layers/attention.py@6a05090:521).
    """

    def __init__(self, specs: list[BlockSpec], v2: bool, num_classes: int = 400, temporal_size: int = 16,
                 spatial_size: int = 224, dropout: float = 0.0, drop_path: float = 0.0,
                 pool_norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.conv_proj = nn.Conv3d(3, specs[0].dim_in, (3, 7, 7), (2, 4, 4), (1, 3, 3))
        size = (temporal_size // 2, spatial_size // 4, spatial_size // 4)
        self.pos_encoding = PositionalEncoding(specs[0].dim_in, size, absolute=not v2)
        self.blocks = nn.ModuleList()
        for spec, rate in zip(specs, stochastic_depth_rates(drop_path, len(specs))):
            self.blocks.append(MultiscaleBlock(spec, size, v2, rate, pool_norm_eps))
            size = tuple(s // q for s, q in zip(size, spec.stride_q))
        self.norm = _layer_norm(specs[-1].dim_out)
        self.dropout = nn.Dropout(check_dropout(dropout))
        self.fc = nn.Linear(specs[-1].dim_out, num_classes)
        # the stage of each block: one more after each q-pooling (stage start) block
        self._block_stage = list(accumulate((int(math.prod(s.stride_q) > 1) for s in specs[1:]), initial=1))
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's init: Linear trunc-normal (0.02), bias 0; LayerNorm (1, 0); position tables trunc-normal."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for name, p in self.named_parameters():
            if name.startswith("pos_encoding.") or ".rel_pos_" in name:
                nn.init.trunc_normal_(p, std=0.02)

    def stage_of(self, name: str) -> int:
        """Freezing stage of a parameter or module name: patch embedding and position tables 0, the blocks of each
        resolution 1-4 (the final norm with stage 4), ``fc`` 5."""
        top, _, rest = name.partition(".")
        if top == "fc":
            return 5
        if top == "norm":
            return self._block_stage[-1]
        if top == "blocks" and rest:
            return self._block_stage[int(rest.split(".", 1)[0])]
        return 0

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised class token (B, C): the input of ``fc``."""
        x = self.conv_proj(x)
        thw = tuple(x.shape[2:])
        x = self.pos_encoding(x.flatten(2).transpose(1, 2), thw)
        for block in self.blocks:
            x, thw = block(x, thw)
        return self.norm(x[:, 0])  # LayerNorm acts per token: the class token's alone is needed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.forward_features(x)))


def _mvit(v2: bool, depths: tuple[int, ...], num_classes: int, dropout: float, drop_path: float, temporal_size: int,
          spatial_size: int, kvq_kernel: Triple | None = QKV_KERNEL, pool_norm_eps: float = 1e-6) -> MViT:
    return MViT(block_specs(tuple(depths), v2, kvq_kernel), v2, num_classes, temporal_size, spatial_size, dropout,
                drop_path, pool_norm_eps)


# Default drop-path rates: the authors' DROPPATH_RATE (PySlowFast configs/Kinetics/MVIT_B_16x4_CONV.yaml@64f8d7e:31,
# MVITv2_S_16x4.yaml@1aebd71:33, MVITv2_B_32x3.yaml@1aebd71:33; torchvision's stochastic_depth_prob 0.2).


@register_model("mvit_v1_b", family="mvit", reference=REFERENCE, frames=16, size=224, mean=MVIT_MEAN, std=MVIT_STD)
def mvit_v1_b(num_classes: int, dropout: float = 0.0, drop_path: float = 0.2, temporal_size: int = 16,
              spatial_size: int = 224, depths: tuple[int, ...] = (1, 2, 11, 2),
              kvq_kernel: Triple | None = QKV_KERNEL, pool_norm_eps: float = 1e-6) -> MViT:
    """MViT-B 16×4 (v1), torchvision's ``mvit_v1_b``. ``depths=(2, 3, 16, 3), kvq_kernel=None, temporal_size=32`` is
    PySlowFast's MViT-B 32×3 (configs/Kinetics/MVIT_B_32x3_CONV.yaml@a58a647: DEPTH 24, no POOL_KVQ_KERNEL);
    ``pool_norm_eps=1e-5`` is pytorchvideo's 2021 network (see :class:`MViT`)."""
    return _mvit(False, depths, num_classes, dropout, drop_path, temporal_size, spatial_size, kvq_kernel, pool_norm_eps)


@register_model("mvit_v2_s", family="mvit", reference=REFERENCE, frames=16, size=224, mean=MVIT_MEAN, std=MVIT_STD)
def mvit_v2_s(num_classes: int, dropout: float = 0.0, drop_path: float = 0.2, temporal_size: int = 16,
              spatial_size: int = 224) -> MViT:
    """MViTv2-S 16×4, torchvision's ``mvit_v2_s`` (PySlowFast configs/Kinetics/MVITv2_S_16x4.yaml)."""
    return _mvit(True, (1, 2, 11, 2), num_classes, dropout, drop_path, temporal_size, spatial_size)


@register_model("mvit_v2_b", family="mvit", reference=REFERENCE, frames=32, size=224, mean=MVIT_MEAN, std=MVIT_STD)
def mvit_v2_b(num_classes: int, dropout: float = 0.0, drop_path: float = 0.3, temporal_size: int = 32,
              spatial_size: int = 224) -> MViT:
    """MViTv2-B 32×3 (PySlowFast configs/Kinetics/MVITv2_B_32x3.yaml: DEPTH 24, stages start at blocks 2, 5, 21)."""
    return _mvit(True, (2, 3, 16, 3), num_classes, dropout, drop_path, temporal_size, spatial_size)

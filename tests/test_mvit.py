"""MViT v1 / v2 (vidrec.models.mvit): logits equal torchvision's ``mvit_v1_b`` / ``mvit_v2_s``, torchvision's MViT
class built with PySlowFast's MViTv2-B 32×3 config, and pytorchvideo's ``mvit_base_16x4``; every release layout
(torchvision, PySlowFast, pytorchvideo, mmaction2) loads and is recognised; parameter counts; position tables resized
as the authors resize them; stages; stochastic depth; attention through ``scaled_dot_product_attention``."""

from __future__ import annotations

import functools
from pathlib import Path
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import compose_resolved, import_torchvision
from vidrec.models import build_model, load_pretrained
from vidrec.models.finetune import freeze
from vidrec.models.layers import biased_attention
from vidrec.models.mvit import block_specs
from vidrec.models.weights.entries import get_weights

torch.set_num_threads(1)

SMALL = {"temporal_size": 8, "spatial_size": 64}  # 4×16×16 tokens: every stage keeps ≥ 2×2 of them
CLIP = torch.randn(1, 3, 8, 64, 64, generator=torch.Generator().manual_seed(0))
# torchvision's meta num_params (0.29.1 models/video/mvit.py:621, 654); v2_b: torchvision's MViT class with
# PySlowFast's MViTv2-B config (test_parameter_counts_equal_the_references checks it; README: 51.2M)
PARAMS = {"mvit_v1_b": 36_610_672, "mvit_v2_s": 34_537_744, "mvit_v2_b": 51_230_128}

# The MVIT keys of PySlowFast's Kinetics configs that shape the network (configs/Kinetics/MVITv2_S_16x4.yaml@1aebd71
# :25-44, MVITv2_B_32x3.yaml@1aebd71:25-44, MVIT_B_16x4_CONV.yaml@64f8d7e:23-39; EMBED_DIM 96, NUM_HEADS 1,
# POOL_KVQ_KERNEL [3, 3, 3], POOL_KV_STRIDE_ADAPTIVE [1, 8, 8] in all three)
MVITV2_S_16X4 = {
    "DEPTH": 16, "DIM_MUL": [[1, 2.0], [3, 2.0], [14, 2.0]], "HEAD_MUL": [[1, 2.0], [3, 2.0], [14, 2.0]],
    "POOL_Q_STRIDE": [[0, 1, 1, 1], [1, 1, 2, 2], [2, 1, 1, 1], [3, 1, 2, 2], [4, 1, 1, 1], [5, 1, 1, 1],
                      [6, 1, 1, 1], [7, 1, 1, 1], [8, 1, 1, 1], [9, 1, 1, 1], [10, 1, 1, 1], [11, 1, 1, 1],
                      [12, 1, 1, 1], [13, 1, 1, 1], [14, 1, 2, 2], [15, 1, 1, 1]],
    "DIM_MUL_IN_ATT": True}
MVITV2_B_32X3 = {
    "DEPTH": 24, "DIM_MUL": [[2, 2.0], [5, 2.0], [21, 2.0]], "HEAD_MUL": [[2, 2.0], [5, 2.0], [21, 2.0]],
    "POOL_Q_STRIDE": [[0, 1, 1, 1], [1, 1, 1, 1], [2, 1, 2, 2], [3, 1, 1, 1], [4, 1, 1, 1], [5, 1, 2, 2],
                      [6, 1, 1, 1], [7, 1, 1, 1], [8, 1, 1, 1], [9, 1, 1, 1], [10, 1, 1, 1], [11, 1, 1, 1],
                      [12, 1, 1, 1], [13, 1, 1, 1], [14, 1, 1, 1], [15, 1, 1, 1], [16, 1, 1, 1], [17, 1, 1, 1],
                      [18, 1, 1, 1], [19, 1, 1, 1], [20, 1, 1, 1], [21, 1, 2, 2], [22, 1, 1, 1], [23, 1, 1, 1]],
    "DIM_MUL_IN_ATT": True}
MVIT_B_16X4 = {
    "DEPTH": 16, "DIM_MUL": [[1, 2.0], [3, 2.0], [14, 2.0]], "HEAD_MUL": [[1, 2.0], [3, 2.0], [14, 2.0]],
    "POOL_Q_STRIDE": [[1, 1, 2, 2], [3, 1, 2, 2], [14, 1, 2, 2]], "DIM_MUL_IN_ATT": False}


def round_width(width: float, multiplier: float, min_width: int = 1, divisor: int = 1) -> int:
    """PySlowFast slowfast/models/utils.py@198bf9d:10-23."""
    width *= multiplier
    min_width = min_width or divisor
    out = max(min_width, int(width + divisor / 2) // divisor * divisor)
    return int(out + divisor if out < 0.9 * width else out)


def pyslowfast_blocks(cfg: dict) -> list[dict]:
    """Each block's settings as PySlowFast's MViT derives them from its config (video_model_builder.py@88bb4c9:915-1030),
    in torchvision's MSBlockConfig terms."""
    depth, kernel = cfg["DEPTH"], [3, 3, 3]
    dim_mul, head_mul = [1.0] * (depth + 1), [1.0] * (depth + 1)
    for i, m in cfg["DIM_MUL"]:
        dim_mul[i] = m
    for i, m in cfg["HEAD_MUL"]:
        head_mul[i] = m
    stride_q, pool_q = [[] for _ in range(depth)], [[] for _ in range(depth)]
    for i, *stride in cfg["POOL_Q_STRIDE"]:
        stride_q[i], pool_q[i] = stride, kernel
    stride_kv, kv = [], [1, 8, 8]
    for i in range(depth):
        if stride_q[i]:
            kv = [max(kv[d] // stride_q[i][d], 1) for d in range(3)]
        stride_kv.append(kv)
    blocks, dim, heads = [], 96, 1
    for i in range(depth):
        heads = round_width(heads, head_mul[i])
        step = i if cfg["DIM_MUL_IN_ATT"] else i + 1
        dim_out = round_width(dim, dim_mul[step], divisor=round_width(heads, head_mul[step]))
        blocks.append({"num_heads": heads, "input_channels": dim, "output_channels": dim_out, "kernel_q": pool_q[i],
                       "kernel_kv": kernel, "stride_q": stride_q[i], "stride_kv": stride_kv[i]})
        dim = dim_out
    return blocks


def perturb(model: nn.Module, seed: int = 1) -> nn.Module:
    """Non-trivial LayerNorm affine parameters and Linear biases (they start at 1 and 0), so a wrong mapping shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.add_(torch.randn(m.weight.shape, generator=g) * 0.1)
                m.bias.add_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.add_(torch.randn(m.bias.shape, generator=g) * 0.02)
    return model


def fresh(name: str, seed: int = 0, num_classes: int = 400, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(name, num_classes, **kwargs).eval()


@functools.lru_cache(maxsize=2)
def network(name: str, num_classes: int = 400, arch: tuple = ()) -> nn.Module:
    """One network per architecture, built for 8×64×64 and shared by the tests (building one takes seconds): a test
    that loads weights into it first fills it with NaN, so every tensor must come from the file."""
    return fresh(name, 0, num_classes, **{**dict(arch), **SMALL})


def blank(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.fill_(float("nan"))
    return model


def logits(model: nn.Module, x: torch.Tensor = CLIP) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


def torchvision_reference(name: str, temporal_size: int, spatial_size: int) -> nn.Module:
    """torchvision's ``mvit_v1_b`` / ``mvit_v2_s`` (its own block settings) built for another clip, or — ``mvit_v2_b``
    — its MViT class with PySlowFast's MViTv2-B 32×3 settings: v2 options as PySlowFast's config sets them
    (REL_POS_SPATIAL/TEMPORAL, RESIDUAL_POOLING, DIM_MUL_IN_ATT True; the class token out of the residual pooling,
    attention.py@198bf9d:381-385)."""
    tv = import_torchvision("torchvision.models.video.mvit")
    size = {"spatial_size": (spatial_size, spatial_size), "temporal_size": temporal_size}
    if name == "mvit_v2_b":
        blocks = [tv.MSBlockConfig(**b) for b in pyslowfast_blocks(MVITV2_B_32X3)]
        return tv.MViT(block_setting=blocks, residual_pool=True, residual_with_cls_embed=False, rel_pos_embed=True,
                       proj_after_attn=True, stochastic_depth_prob=0.3, **size)
    build = tv._mvit
    with mock.patch.object(tv, "_mvit", lambda **kw: build(**{**kw, **size})):
        return getattr(tv, name)()


def torchvision_file(reference: nn.Module, name: str, folder: Path) -> Path:
    """The reference's state dict saved as torchvision publishes it (a plain state dict, the release's file name)."""
    entry = f"{name}.tv_kinetics400"
    path = folder / (get_weights(entry).files[0] if name != "mvit_v2_b" else "mvit_v2_b.pth")
    torch.save(reference.state_dict(), path)
    return path


# ---------------------------------------------------------------- exactness

@pytest.mark.parametrize("name", ["mvit_v1_b", "mvit_v2_s", "mvit_v2_b"])
def test_logits_equal_the_reference_built_for_a_small_clip(name: str, tmp_path: Path) -> None:
    """The whole network (every block) built for 8×64×64, its torchvision file loaded strictly: logits within 1e-4."""
    torch.manual_seed(1)
    reference = perturb(torchvision_reference(name, 8, 64)).eval()
    ours = blank(network(name))
    report = load_pretrained(ours, torchvision_file(reference, name, tmp_path))
    assert report.format == "state_dict" and not (report.missing or report.unexpected or report.mismatched)
    assert report.entry == (f"{name}.tv_kinetics400" if name != "mvit_v2_b" else None)
    assert (logits(ours) - logits(reference)).abs().max() <= 1e-4


@pytest.mark.parametrize("name", ["mvit_v2_s", "mvit_v2_b"])
def test_relative_position_tables_resize_as_the_authors_do(name: str, tmp_path: Path) -> None:
    """Tables built for the authors' clip, run on 8×64×64: torchvision's own path (``_interpolate``, PySlowFast's
    ``get_rel_pos``: linear) made to run on that grid gives the same logits."""
    torch.manual_seed(1)
    frames = {"mvit_v2_s": 16, "mvit_v2_b": 32}[name]
    reference = perturb(torchvision_reference(name, frames, 224)).eval()
    ours = fresh(name, seed=2)
    load_pretrained(ours, torchvision_file(reference, name, tmp_path))
    reference.pos_encoding.temporal_size, reference.pos_encoding.spatial_size = 4, (16, 16)  # its token grid
    assert ours.blocks[0].attn.rel_pos_t.shape[0] == frames - 1  # built for the authors' clip (frames / 2 tokens)
    assert (logits(ours) - logits(reference)).abs().max() <= 1e-4


def test_v1_position_embeddings_resize_as_pyslowfast_does() -> None:
    """PySlowFast's ``_get_pos_embed`` (video_model_builder.py@88bb4c9:1118-1141, 1189-1199): the separable tables
    summed on the build grid, resized trilinearly to the clip's grid; ours resizes each factor (equal by linearity)."""
    model = perturb(fresh("mvit_v1_b"))
    enc = model.pos_encoding
    t, h, w = enc.grid
    full = enc.spatial_pos[None].repeat(1, t, 1) + torch.repeat_interleave(enc.temporal_pos[None], h * w, dim=1)
    for thw in [(4, 16, 16), (5, 12, 20), (8, 56, 56)]:
        grid = full.reshape(1, t, h, w, -1).permute(0, 4, 1, 2, 3)
        expected = F.interpolate(grid, size=thw, mode="trilinear").reshape(1, -1, thw[0] * thw[1] * thw[2])
        torch.testing.assert_close(enc.embedding(thw), expected[0].t(), rtol=1e-5, atol=1e-6)
    assert logits(model, torch.randn(1, 3, 10, 48, 80)).shape == (1, 400)  # odd grids run too


def test_pytorchvideo_release_loads_and_equals_pytorchvideo_and_the_torchvision_port(tmp_path: Path) -> None:
    """pytorchvideo's ``mvit_base_16x4`` (random, for 8×64×64) saved as its zoo file: recognised, logits equal
    pytorchvideo's (its pooling LayerNorms have nn.LayerNorm's eps 1e-5: the entry's arch); the same weights in
    torchvision's port ``mvit_v1_b`` (eps 1e-6) equal ours built with 1e-6."""
    hub = import_torchvision("pytorchvideo.models.hub.vision_transformers")
    torch.manual_seed(1)
    reference = perturb(hub.mvit_base_16x4(spatial_size=64, temporal_size=8)).eval()
    path = tmp_path / "MVIT_B_16x4.pyth"
    torch.save({"model_state": reference.state_dict()}, path)  # hub/utils.py: checkpoint["model_state"]
    entry = get_weights("mvit_v1_b.ptv_kinetics400")
    ours = blank(network("mvit_v1_b", arch=tuple(entry.arch.items())))
    report = load_pretrained(ours, path)
    assert (report.format, report.entry) == ("pytorchvideo", entry.name) and not report.missing
    expected = logits(reference)
    assert (logits(ours) - expected).abs().max() <= 1e-4
    port = torchvision_reference("mvit_v1_b", 8, 64).eval()
    port.load_state_dict({"head.1." + k[3:] if k.startswith("fc.") else k: v for k, v in ours.state_dict().items()})
    assert (logits(port) - expected).abs().max() > 1e-5  # the epsilon shows: the two networks are not the same
    for m in reference.modules():  # pytorchvideo's code since c85fa64 (vision_transformers.py@f3142bb:333-335)
        if isinstance(m, nn.LayerNorm):
            m.eps = 1e-6
    assert (logits(port) - logits(reference)).abs().max() <= 1e-4


# ---------------------------------------------------------------- release layouts built from the authors' key names

def authors_state(model: nn.Module, layout: str) -> dict[str, torch.Tensor]:
    """The model's tensors under the key names of ``layout``, walked module by module: PySlowFast's
    (video_model_builder.py@88bb4c9:863-1056, attention.py@198bf9d:188-289, 428-489, stem_helper.py PatchEmbed
    ``proj``, head_helper.py TransformerBasicHead ``projection``), pytorchvideo's (separate q/k/v,
    ``cls_positional_encoding``, ``patch_embed.patch_model``, ``norm_embed``, ``head.proj``) or mmaction2's
    (backbones/mvit.py@cc5612b1: ``backbone.patch_embed.projection``, ``backbone.norm3``; ``cls_head.fc_cls``)."""
    out: dict[str, torch.Tensor] = {}

    def put(name: str, module: nn.Module) -> None:
        out[f"{name}.weight"] = module.weight.detach().clone()
        if getattr(module, "bias", None) is not None:
            out[f"{name}.bias"] = module.bias.detach().clone()

    stem, pos, blocks, norm, head = {
        "pyslowfast": ("patch_embed.proj", "", "blocks", "norm", "head.projection"),
        "pytorchvideo": ("patch_embed.patch_model", "cls_positional_encoding.", "blocks", "norm_embed", "head.proj"),
        "mmaction2": ("backbone.patch_embed.projection", "backbone.", "backbone.blocks", "backbone.norm3",
                      "cls_head.fc_cls")}[layout]
    put(stem, model.conv_proj)
    enc = model.pos_encoding
    out[f"{pos}cls_token"] = enc.class_token.detach().reshape(1, 1, -1).clone()
    if enc.spatial_pos is not None:
        out[f"{pos}pos_embed_spatial"] = enc.spatial_pos.detach()[None].clone()
        out[f"{pos}pos_embed_temporal"] = enc.temporal_pos.detach()[None].clone()
        out[f"{pos}pos_embed_class"] = enc.class_pos.detach().reshape(1, 1, -1).clone()
    for i, block in enumerate(model.blocks):
        p, attn = f"{blocks}.{i}", block.attn
        put(f"{p}.norm1", block.norm1)
        put(f"{p}.norm2", block.norm2)
        if layout == "pytorchvideo":
            for part, w, b in zip("qkv", attn.qkv.weight.detach().chunk(3), attn.qkv.bias.detach().chunk(3)):
                out[f"{p}.attn.{part}.weight"], out[f"{p}.attn.{part}.bias"] = w.clone(), b.clone()
        else:
            put(f"{p}.attn.qkv", attn.qkv)
        put(f"{p}.attn.proj", attn.project[0])
        for part in "qkv":
            pool = getattr(attn, f"pool_{part}")
            if pool is not None:
                out[f"{p}.attn.pool_{part}.weight"] = pool.pool.weight.detach().clone()
                put(f"{p}.attn.norm_{part}", pool.norm_act[0])
        for axis in "hwt":
            table = getattr(attn, f"rel_pos_{axis}")
            if table is not None:
                out[f"{p}.attn.rel_pos_{axis}"] = table.detach().clone()
        put(f"{p}.mlp.fc1", block.mlp[0])
        put(f"{p}.mlp.fc2", block.mlp[3])
        if block.project is not None:
            put(f"{p}.proj", block.project)
    put(norm, model.norm)
    put(head, model.fc)
    assert sum(v.numel() for v in out.values()) == sum(p.numel() for p in model.parameters())  # every tensor named
    return out


def save_release(state: dict[str, torch.Tensor], layout: str, path: Path) -> Path:
    """Wrapped as each framework saves: PySlowFast slowfast/utils/checkpoint.py@281b819:133-138, pytorchvideo
    ``{'model_state'}``, mmaction2/mmengine ``{'meta', 'state_dict'}``."""
    if layout == "pyslowfast":
        ckpt = {"epoch": 200, "model_state": state, "optimizer_state": {"state": {}, "param_groups": []},
                "cfg": "MODEL:\n  ARCH: mvit\n  MODEL_NAME: MViT\n"}
    elif layout == "pytorchvideo":
        ckpt = {"model_state": state}
    else:
        ckpt = {"meta": {"mmengine_version": "0.7.0", "epoch": 200}, "state_dict": state}
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize("entry", [  # grouped by network, which the tests share
    "mvit_v2_s.pyslowfast_kinetics400", "mvit_v2_s.mmaction2_kinetics400", "mvit_v2_s.mmaction2_trained_kinetics400",
    "mvit_v2_s.pyslowfast_ssv2", "mvit_v2_s.mmaction2_ssv2", "mvit_v2_s.mmaction2_trained_ssv2",
    "mvit_v2_b.pyslowfast_kinetics400", "mvit_v2_b.mmaction2_kinetics400", "mvit_v2_b.pyslowfast_ssv2",
    "mvit_v2_b.mmaction2_ssv2", "mvit_v1_b.pyslowfast_kinetics400_32x3", "mvit_v1_b.ptv_kinetics400_32x3"])
def test_release_layout_loads_and_is_recognised(entry: str, tmp_path: Path) -> None:
    """A file in the entry's layout, named as its authors name it, of the entry's network (built for 8×64×64): every
    tensor loads where it came from (the network is blanked with NaN in between)."""
    e = get_weights(entry)
    model = perturb(network(e.model, e.fc_classes, tuple(e.arch.items())), seed=len(entry))
    expected = logits(model)
    path = save_release(authors_state(model, e.format), e.format, tmp_path / e.files[0])
    report = load_pretrained(blank(model), path)
    assert (report.format, report.entry) == (e.format, entry)
    assert not (report.missing or report.unexpected or report.mismatched)
    assert torch.equal(logits(model), expected)
    assert model.pretrained_cfg == e.pretrained_cfg()


def test_pyslowfast_v1_32x3_network_has_the_configs_kernels() -> None:
    """MVIT_B_32x3_CONV.yaml@a58a647 sets no POOL_KVQ_KERNEL: kernels are stride + 1 (1x3x3 q, 1x9x9 k/v in stage 1)
    and the last stage pools no k/v (stride 1, kernel 1)."""
    with torch.device("meta"):
        model = build_model("mvit_v1_b", 400, **get_weights("mvit_v1_b.pyslowfast_kinetics400_32x3").arch)
    assert len(model.blocks) == 24 and model.pos_encoding.temporal_pos.shape[0] == 16
    assert model.blocks[0].attn.pool_k.pool.kernel_size == (1, 9, 9) and model.blocks[0].attn.pool_q is None
    assert model.blocks[2].attn.pool_q.pool.kernel_size == (1, 3, 3)
    assert model.blocks[23].attn.pool_k is None and model.blocks[21].attn.pool_k is None


# ---------------------------------------------------------------- sizes, settings, stages

def test_parameter_counts() -> None:
    for name, count in PARAMS.items():
        with torch.device("meta"):
            model = build_model(name, 400)
        assert sum(p.numel() for p in model.parameters()) == count, name


def test_parameter_counts_equal_the_references() -> None:
    with torch.device("meta"):
        refs = {name: torchvision_reference(name, 32 if name == "mvit_v2_b" else 16, 224) for name in PARAMS}
    assert {name: sum(p.numel() for p in ref.parameters()) for name, ref in refs.items()} == PARAMS


def test_block_settings_are_pyslowfasts_and_torchvisions() -> None:
    """PySlowFast's derivation from each config gives torchvision's block settings (v1_b, v2_s) and ours (all)."""
    tv = import_torchvision("torchvision.models.video.mvit")
    seen = []
    for name, cfg, depths, v2 in [("mvit_v1_b", MVIT_B_16X4, (1, 2, 11, 2), False),
                                  ("mvit_v2_s", MVITV2_S_16X4, (1, 2, 11, 2), True)]:
        with mock.patch.object(tv, "_mvit", lambda **kw: seen.append(kw["block_setting"])):
            getattr(tv, name)()
        assert [vars(b) for b in seen[-1]] == pyslowfast_blocks(cfg)
        assert_same_blocks(block_specs(depths, v2), pyslowfast_blocks(cfg), v2)
    assert_same_blocks(block_specs((2, 3, 16, 3), True), pyslowfast_blocks(MVITV2_B_32X3), True)


def assert_same_blocks(specs: list, blocks: list[dict], v2: bool) -> None:
    for spec, b in zip(specs, blocks, strict=True):
        assert (spec.heads, spec.dim_in, spec.dim_out) == (b["num_heads"], b["input_channels"], b["output_channels"])
        assert list(spec.kernel_q or []) == b["kernel_q"] and list(spec.kernel_kv) == b["kernel_kv"]
        assert list(spec.stride_kv) == b["stride_kv"]
        assert list(spec.stride_q) == (b["stride_q"] or [1, 1, 1])


@pytest.mark.parametrize("name,stages", [("mvit_v2_s", [1] + [2] * 2 + [3] * 11 + [4] * 2),
                                         ("mvit_v1_b", [1] + [2] * 2 + [3] * 11 + [4] * 2),
                                         ("mvit_v2_b", [1] * 2 + [2] * 3 + [3] * 16 + [4] * 3)])
def test_stages_follow_the_resolutions(name: str, stages: list[int]) -> None:
    model = network(name)
    assert [model.stage_of(f"blocks.{i}.attn.qkv.weight") for i in range(len(model.blocks))] == stages
    assert [model.stage_of(n) for n in ("conv_proj.weight", "pos_encoding.class_token", "norm.bias", "fc.weight")] \
        == [0, 0, 4, 5]
    # the q-pooling block opens its stage: the token grid halves there
    grids = []
    hooks = [b.register_forward_hook(lambda m, i, o: grids.append(o[1])) for b in model.blocks]
    logits(model)
    for h in hooks:
        h.remove()
    assert [g[1] for g in grids] == [16 // 2 ** (s - 1) for s in stages]
    with torch.device("meta"):
        model = build_model(name, 400)
    freeze(model, "until_layer2")
    trainable = {n.split(".")[1] for n, p in model.named_parameters() if p.requires_grad and n.startswith("blocks.")}
    assert trainable == {str(i) for i, s in enumerate(stages) if s > 2}


def test_drop_path_rises_linearly_and_attention_uses_sdpa() -> None:
    with torch.device("meta"):
        rates = [b.drop_path.rate for b in build_model("mvit_v2_b", 5, drop_path=0.25).blocks]
        defaults = [build_model(n, 5).blocks[-1].drop_path.rate for n in ("mvit_v1_b", "mvit_v2_s", "mvit_v2_b")]
    torch.testing.assert_close(torch.tensor(rates), torch.linspace(0, 0.25, 24))  # PySlowFast's dpr
    assert defaults == pytest.approx([0.2, 0.2, 0.3])  # the authors' DROPPATH_RATE
    calls = []
    sdpa = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kw):
        calls.append(attn_mask is not None)
        return sdpa(q, k, v, attn_mask=attn_mask, **kw)

    for name, biased in [("mvit_v2_s", True), ("mvit_v1_b", False)]:
        calls.clear()
        with mock.patch.object(F, "scaled_dot_product_attention", spy):
            logits(network(name))
        assert calls == [biased] * 16


@pytest.mark.parametrize("variant", ["v1_b", "v2_s", "v2_b"])
def test_config_builds_each_variant(variant: str) -> None:
    cfg = compose_resolved(["model=mvit", f"model.variant={variant}"])
    assert cfg["model"]["net"]["name"] == f"mvit_{variant}"


# ---------------------------------------------------------------- the authors' full inputs

@pytest.mark.slow
@pytest.mark.parametrize("name,frames", [("mvit_v1_b", 16), ("mvit_v2_s", 16), ("mvit_v2_b", 32)])
def test_logits_equal_the_reference_at_the_authors_input(name: str, frames: int, tmp_path: Path) -> None:
    torch.manual_seed(1)
    reference = perturb(torchvision_reference(name, frames, 224)).eval()
    ours = fresh(name, seed=2)
    load_pretrained(ours, torchvision_file(reference, name, tmp_path))
    x = torch.randn(1, 3, frames, 224, 224, generator=torch.Generator().manual_seed(3))
    assert (logits(ours, x) - logits(reference, x)).abs().max() <= 1e-4


@pytest.mark.slow
def test_pytorchvideo_at_the_authors_input(tmp_path: Path) -> None:
    hub = import_torchvision("pytorchvideo.models.hub.vision_transformers")
    torch.manual_seed(1)
    reference = perturb(hub.mvit_base_16x4()).eval()
    path = tmp_path / "MVIT_B_16x4.pyth"
    torch.save({"model_state": reference.state_dict()}, path)
    ours = fresh("mvit_v1_b", seed=2, **get_weights("mvit_v1_b.ptv_kinetics400").arch)
    load_pretrained(ours, path)
    x = torch.randn(1, 3, 16, 224, 224, generator=torch.Generator().manual_seed(3))
    assert (logits(ours, x) - logits(reference, x)).abs().max() <= 1e-4


def test_biased_attention_under_cpu_autocast_is_the_fused_call_written_out():
    """Under CPU bf16 autocast with a bias, attention is the explicit softmax(q kᵀ/√d + bias) v (faster there than
    scaled_dot_product_attention): the same values within bf16 precision, gradients reaching the bias; outside
    autocast it is the fused call itself."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, n, 16, generator=g) for n in (50, 20, 20))
    bias = torch.randn(2, 3, 50, 20, generator=g, requires_grad=True)
    assert torch.equal(biased_attention(q, k, v, bias), F.scaled_dot_product_attention(q, k, v, attn_mask=bias))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        explicit = biased_attention(q, k, v, bias)
        fused = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    assert explicit.shape == fused.shape
    torch.testing.assert_close(explicit.float(), fused.float(), atol=3e-2, rtol=3e-2)
    explicit.float().sum().backward()
    assert bias.grad is not None and bool(torch.isfinite(bias.grad).all()) and bias.grad.abs().sum() > 0

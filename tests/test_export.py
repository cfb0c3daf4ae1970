"""export.py: every registry model round-trips through ONNX (onnxruntime) and TorchScript within 1e-4 of PyTorch,
with a dynamic batch; the sidecar alone lets a deployment reproduce eval.py's video scores."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from conftest import REPO, read_json, run_entry
from vidrec.data.decoding import count_frames, read_frames
from vidrec.data.sampling import test_clip_indices
from vidrec.data.spec import DataSpec
from vidrec.data.synthetic import SyntheticSpec, ensure_synthetic
from vidrec.data.transforms import ClipTransform
from vidrec.errors import VidrecError
from vidrec.export import FORMATS, export_model
from vidrec.inference import InferenceModel
from vidrec.models import build_model, list_models

SHAPE = (3, 4, 32, 32)  # small views keep the test fast; every registry model accepts them but the 32×2 I3Ds,
SHAPE_32X2 = (3, 8, 32, 32)  # whose temporal stride of 8 needs 8 frames
#: Models above ~45 M parameters: their part of the round trip is `slow` (it still runs in CI).
HEAVY = {"slowfast_r101_8x8", "mvit_v2_b", "swin3d_s", "swin3d_b", "videomae_vit_b", "videomae_vit_l", "videomae_vit_h",
         "timesformer_b", "ir_csn_152", "ip_csn_152", "i3d_nl_r101", "i3d_r101", "i3d_nl_r101_8x8", "i3d_r101_8x8", "i3d_nl_r101_32x2", "i3d_r101_32x2", "r2plus1d_34", "resnet3d_34", "resnet3d_50", "resnet3d_101", "resnet3d_152",
         "resnet3d_200", "resnext3d_101"}


def shape_of(name: str) -> tuple[int, int, int, int]:
    """8 frames for the networks with a total temporal stride of 8 (or SlowFast 4×16's α of 8)."""
    return SHAPE_32X2 if name.endswith(("_32x2", "_4x16")) or name == "s3d" else SHAPE


def calibrated(name: str, shape: tuple[int, ...] | None = None) -> nn.Module:
    """A randomly initialised model whose BatchNorm statistics come from one batch, so its logits are O(1) and
    an absolute tolerance of 1e-4 means what it says (unnormalised deep nets reach logits of 1e4)."""
    torch.manual_seed(0)
    net = build_model(name, num_classes=5)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one batch sets the statistics
    net.train()
    with torch.no_grad():
        net(torch.randn(2, *(shape or shape_of(name))))
    return net.eval()


def run_onnx(path, x: torch.Tensor) -> torch.Tensor:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["video"]
    return torch.from_numpy(session.run(None, {"video": x.numpy()})[0])


def run_torchscript(path, x: torch.Tensor) -> torch.Tensor:
    # the plain interpreter: the JIT's profiling passes would triple the cost of a single call on big graphs
    with torch.no_grad(), torch.jit.optimized_execution(False):
        return torch.jit.load(str(path))(x)


#: ViT-H: 2.5 GB of weights, copied several times by the exporters (its ONNX file keeps them in <file>.data)
HUGE = {"videomae_vit_h"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow, pytest.mark.memory]) if n in HUGE else
                                  pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in list_models()])
def test_every_model_round_trips(name, tmp_path):
    assert HEAVY <= set(list_models())
    net = calibrated(name)
    model = InferenceModel(net, name, [f"c{i}" for i in range(5)], source="test", spec=DataSpec.from_config({
        "clip": {"frames": shape_of(name)[1], "sample_rate": 2}, "train": {"crop_size": SHAPE[2]},
        "test": {"num_clips": 1, "num_crops": 1, "scale": SHAPE[2], "crop_size": SHAPE[2]}}))
    x = torch.randn(3, *shape_of(name), generator=torch.Generator().manual_seed(1))  # batch 3: exported with batch 1
    with torch.no_grad():
        ref = net(x)
    for fmt, run in (("onnx", run_onnx), ("torchscript", run_torchscript)):
        path, sidecar = export_model(model, fmt, tmp_path / f"{name}{FORMATS[fmt]}", verify=False)
        out = run(path, x)
        assert out.shape == (3, 5)
        # 1e-4, relative to the logit scale once logits exceed 1 (float32 sums reordered by the runtime)
        assert (out - ref).abs().max() <= 1e-4 * max(1.0, ref.abs().max()), (fmt, float((out - ref).abs().max()))
        assert sidecar["input"]["shape"] == ["batch", *shape_of(name)] and sidecar["labels"] == model.labels
        assert read_json(path.with_name(path.name + ".json")) == sidecar
        path.unlink()
        data = path.with_name(path.name + ".data")
        assert not data.exists() or (fmt == "onnx" and name in HUGE)  # weights beside the graph only over 2 GiB
        data.unlink(missing_ok=True)  # ViT-H's 2.5 GB: the disk holds one export at a time


def test_exported_checkpoint_and_sidecar_reproduce_eval(trained, data_dir, tmp_path):
    """A deployment that knows only the .onnx file and its sidecar gets eval.py's video scores."""
    run, _ = trained
    best = next((run / "checkpoints").glob("best-epoch*.ckpt"))
    run_entry("export.py", f"ckpt_path={best}", "format=onnx", f"output={tmp_path}/model.onnx")
    side = json.loads((tmp_path / "model.onnx.json").read_text())
    assert side["input"]["shape"] == ["batch", 3, 4, 56, 56] and side["format"] == "onnx" and side["opset"] == 17
    assert side["labels"][:2] == ["move_left", "move_right"] and side["max_abs_diff"] < 1e-4
    p = side["protocol"]
    with open(run / "predictions.csv") as f:
        row = next(csv.DictReader(f))
    folder = ensure_synthetic(data_dir, SyntheticSpec(**OmegaConf.load(run / ".hydra" / "config.yaml").dataset.synthetic))
    video = folder / "videos" / row["label"] / f"{row['video_id']}.mp4"
    idx = test_clip_indices(count_frames(video), p["clip_frames"], p["sample_rate"], p["num_clips"])
    frames = read_frames(video, idx)
    transform = ClipTransform(side["mean"], side["std"], crop_size=p["crop_size"], test_scale=p["scale"],
                              num_crops=p["num_crops"])
    views = torch.cat([transform.eval(frames[k * p["clip_frames"] : (k + 1) * p["clip_frames"]]) for k in range(p["num_clips"])])
    probs = run_onnx(tmp_path / "model.onnx", views).softmax(-1).mean(0)
    top = probs.topk(5)
    assert [side["labels"][i] for i in top.indices] == [row[f"pred{k}"] for k in range(1, 6)]
    np.testing.assert_allclose(top.values.numpy(), [float(row[f"score{k}"]) for k in range(1, 6)], atol=2e-6)


def test_an_export_the_disk_cannot_hold_stops_before_writing(tmp_path, monkeypatch):
    """A full disk is told before the export starts, with the sizes and the way out, and nothing is left behind."""
    net = build_model("r2plus1d_tiny", num_classes=3)
    model = InferenceModel(net, "r2plus1d_tiny", ["a", "b", "c"], source="test", spec=DataSpec.from_config({}))
    weights = sum(p.numel() * 4 for p in net.parameters()) + sum(b.numel() * b.element_size() for b in net.buffers())
    monkeypatch.setattr("vidrec.export.free_bytes", lambda folder: weights)  # the weights fit, the margin does not
    with pytest.raises(VidrecError, match=r"exporting r2plus1d_tiny to onnx needs about 0\.1 GiB free in .*"
                                          r"which has 0\.0 GiB: free disk space there or pass output="):
        export_model(model, "onnx", tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_export_a_model_without_checkpoint(tmp_path):
    out = tmp_path / "tiny.torchscript"
    proc = run_entry("export.py", "model=tiny", "num_classes=3", "format=torchscript", f"output={out}")
    assert str(out) in proc.stdout
    side = read_json(tmp_path / "tiny.torchscript.json")
    assert side["model"] == "r2plus1d_tiny" and side["weights"] == "random initialisation"
    assert side["input"]["shape"] == ["batch", 3, 8, 64, 64] and side["labels"] == ["class_0", "class_1", "class_2"]
    assert run_torchscript(out, torch.zeros(2, 3, 8, 64, 64)).shape == (2, 3)


def test_export_errors_are_one_line(tmp_path):
    proc = run_entry("export.py", "model=tiny", "format=tflite", f"output={tmp_path}/m", check=False)
    assert proc.returncode == 1 and "format=tflite" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_entry("export.py", check=False)
    assert proc.returncode == 1 and "ckpt_path=" in proc.stderr and "Traceback" not in proc.stderr


def run_example(model: Path, video: Path) -> list[tuple[str, float]]:
    """examples/onnx_predict.py as a user runs it: ``python examples/onnx_predict.py <model.onnx> <video>``."""
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "onnx_predict.py"), str(model), str(video)],
                          capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return [(line.split(None, 1)[1], float(line.split()[0])) for line in proc.stdout.splitlines()]


def predicted(*overrides: str) -> list[tuple[str, float]]:
    out = json.loads(run_entry("predict.py", *overrides, "json=true", "progress=false").stdout)
    return [(t["label"], t["prob"]) for t in out["top"]]


def assert_same_top(example: list[tuple[str, float]], reference: list[tuple[str, float]]) -> None:
    assert [label for label, _ in example] == [label for label, _ in reference]
    np.testing.assert_allclose([p for _, p in example], [p for _, p in reference], atol=1e-4)


def test_the_onnx_example_matches_predict(trained, data_dir, tmp_path):
    """The documented example, fed the exported file and its sidecar only, gives predict.py's top-5."""
    run, _ = trained
    best = next((run / "checkpoints").glob("best-epoch*.ckpt"))
    run_entry("export.py", f"ckpt_path={best}", "format=onnx", f"output={tmp_path}/model.onnx")
    side = read_json(tmp_path / "model.onnx.json")
    assert "antialiased when shrinking" in side["protocol"]["resize_filter"] and side["protocol"]["crop_positions"]
    folder = ensure_synthetic(data_dir, SyntheticSpec(**OmegaConf.load(run / ".hydra" / "config.yaml").dataset.synthetic))
    video = next((folder / "videos").glob("*/*.mp4"))
    assert_same_top(run_example(tmp_path / "model.onnx", video), predicted(f"video={video}", f"ckpt_path={best}"))


def test_a_whole_video_export_has_a_dynamic_time_axis(data_dir, tmp_path):
    """Inception-I3D under the whole-video protocol: the ONNX file takes any clip length (checked at two more by
    export.py), and the example scores a 32-frame video as predict.py does."""
    weights = tmp_path / "i3d.pth"
    torch.save(calibrated("i3d_inception", (3, 16, 64, 64)).state_dict(), weights)
    protocol = ["model=i3d_inception", "num_classes=5", f"model.pretrained={weights}", "test.clip_selection=whole",
                "test.num_clips=1", "test.num_crops=1", "test.scale=72", "test.crop_size=64", "clip.frames=16",
                "clip.sample_rate=1"]
    run_entry("export.py", *protocol, "format=onnx", f"output={tmp_path}/i3d.onnx")
    side = read_json(tmp_path / "i3d.onnx.json")
    assert side["input"]["shape"] == ["batch", 3, "frames", 64, 64] and side["protocol"]["clip_selection"] == "whole"
    assert set(side["frames_checked"]) == {"9", "25"} and max(side["frames_checked"].values()) < 1e-3
    video = next((ensure_synthetic(data_dir, SyntheticSpec(frames=32)) / "videos").glob("*/*.mp4"))
    assert_same_top(run_example(tmp_path / "i3d.onnx", video), predicted(f"video={video}", *protocol))

"""Every family since 2019 works in the tools: predict.py's and extract.py's code paths on a real video (the smallest
network of each family, a small clip), and eval.py on a released layout writes a receipt under the entry's protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from conftest import REPO, moving_bar_frames, read_json, run_entry
from vidrec.config import model_overrides
from vidrec.data.synthetic import write_video
from vidrec.features import pooled_features
from vidrec.inference import load_inference_model
from vidrec.models.finetune import get_head
from vidrec.predict import predict_video

torch.set_num_threads(1)
#: the smallest network of each family added since 2019 (and video-nonlocal-net's C2D)
FAMILIES = ["slowfast_r50_8x8", "slow_r50_8x8", "x3d_xs", "csn_r101", "tsm_r50", "tsn_r50", "s3d", "mvit_v2_s",
            "swin3d_t", "videomae_vit_s", "timesformer_b", "c2d_r50"]
SMALL = ["clip.frames=8", "clip.sample_rate=2", "test.num_clips=2", "test.num_crops=1", "test.scale=72",
         "test.crop_size=64", "num_classes=5"]


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    write_video(path, moving_bar_frames(40, 72, 96), fps=25)
    return path


def inference_model(name: str, video: Path):
    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        return load_inference_model(compose("predict", overrides=[*model_overrides(name).split(), f"video={video}",
                                                                  *SMALL]))


@pytest.mark.parametrize("name", FAMILIES)
def test_predict_and_extract_run_every_family(name, video):
    model = inference_model(name, video)
    assert model.name == name
    result = predict_video(model, video, topk=3, device="cpu")
    assert result["views"] == 2 and len(result["top"]) == 3
    assert 0 < sum(t["prob"] for t in result["top"]) <= 1 + 1e-5
    features = pooled_features(model, video)
    fc = get_head(model.net)
    assert features.features.shape == (fc.in_features,) and features.logits.shape == (2, 5)
    with torch.no_grad():  # the classifier is linear: fc of the pooled features is the mean of the views' logits
        pooled = fc(torch.from_numpy(features.features)[None])[0].numpy()
    np.testing.assert_allclose(pooled, features.logits.mean(0), atol=1e-4 * max(1.0, float(np.abs(pooled).max())))


@pytest.mark.slow
def test_eval_of_a_pyslowfast_x3d_release_writes_its_receipt(tmp_path):
    """eval.py model=x3d model.variant=xs model.pretrained=<x3d_xs.pyth> dataset=...: PySlowFast's protocol (30 fps by
    its rule, 4×12 frames, 10 clips × 3 crops of 182, fully convolutional) and the receipt."""
    from test_x3d import write_release  # the PySlowFast .pyth layout

    from vidrec.data.annotations import make_entry, write_annotation
    from vidrec.models import build_model

    labels = [f"class_{i}" for i in range(400)]
    root = tmp_path / "data"
    for i in range(2):
        (root / labels[i]).mkdir(parents=True)
        write_video(root / labels[i] / f"v{i}.mp4", moving_bar_frames(60, 182, 242, seed=i), fps=30)
    write_annotation(root / "ann.json", labels, {f"v{i}": make_entry("validation", labels[i], 60) for i in range(2)})
    weights = write_release("x3d_xs.pyslowfast_kinetics400", build_model("x3d_xs.pyslowfast_kinetics400"), tmp_path)
    out = tmp_path / "eval"
    run_entry("eval.py", "model=x3d", "model.variant=xs", f"model.pretrained={weights}", "dataset=ucf101",
              f"dataset.root={root}", f"dataset.annotation_path={root / 'ann.json'}", "dataset.num_classes=400",
              "dataset.source=video", "dataset.video_ext=.mp4", "dataset.num_workers=0", f"hydra.run.dir={out}",
              "trainer.enable_progress_bar=false", timeout=1200)
    results = read_json(out / "results.json")
    protocol = results["protocol"]
    assert results["weights"]["entry"] == "x3d_xs.pyslowfast_kinetics400"
    assert (protocol["fps"], protocol["fps_rule"], protocol["clip_frames"], protocol["sample_rate"]) == (30, "pyslowfast", 4, 12)
    assert (protocol["num_clips"], protocol["num_crops"], protocol["crop_size"], protocol["fully_conv"]) == (10, 3, 182, True)
    assert results["views_per_video"] == 30 and results["published"]["top1"] == 69.5
    assert results["difference"] is None and results["not_comparable"]  # the coverage of the official list is unknown

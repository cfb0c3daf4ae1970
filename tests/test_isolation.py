"""Decoders that crash or hang cost one video, not the run (issue #14), with real processes and real signals.

``tests/faults/sitecustomize.py`` (put on PYTHONPATH here only) makes ``av.open`` of chosen files SIGSEGV or
sleep forever in whatever process opens them. Without isolation the first would kill the loader worker and the
second would stall the run; with it both are skipped with their reason, and a 1-process run, a 2-process DDP
run and a run cut after one epoch and resumed list the same skipped videos and reach the same metrics.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, TINY, read_json, run_entry
from vidrec.data import isolation
from vidrec.data.synthetic import SyntheticSpec, ensure_synthetic, write_video

SEGV, HANG, SEGV_TEST = "move_up_tra_001", "grow_tra_002", "shrink_tes_000"
FAULTS = {
    "VIDREC_TEST_FAULTS": f"segv:{SEGV},hang:{HANG},segv:{SEGV_TEST}",
    "PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "faults"), os.environ.get("PYTHONPATH", "")]),
    "OMP_NUM_THREADS": "1",
}
TIMEOUT = 5  # seconds; a tiny synthetic video decodes in milliseconds
STEPS_PER_EPOCH = 3  # 24 training videos / batch 8
COMMON = [*[o for o in TINY if not o.startswith("dataset.synthetic.")], "dataset.synthetic=null", "model.freeze=bn",
          "optimizer=sgd", "optimizer.lr=0.01", "trainer.max_epochs=2", "checkpoint.every_n_epochs=1",
          "dataset.num_workers=1", f"data.decode_timeout_s={TIMEOUT}"]


@pytest.fixture(scope="module")
def copy(data_dir, tmp_path_factory) -> Path:
    spec = SyntheticSpec(per_class_train=3, per_class_val=1, per_class_test=2, frames=12)  # what TINY generates
    return Path(shutil.copytree(ensure_synthetic(data_dir, spec), tmp_path_factory.mktemp("faults") / "synthetic"))


def train(copy: Path, run: Path, *overrides: str, env: dict | None = None):
    return run_entry("train.py", *COMMON, f"dataset.root={copy / 'videos'}",
                     f"dataset.annotation_path={copy / 'annotation.json'}", f"hydra.run.dir={run}", *overrides,
                     env={**FAULTS, **(env or {})})


def skipped_rows(run: Path) -> list[tuple[str, str, str]]:
    with open(run / "skipped_videos.csv") as f:
        return [(r["stage"], r["video_id"], r["reason"]) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def runs(copy, tmp_path_factory):
    root = tmp_path_factory.mktemp("isolation")
    one, two, cut = root / "one", root / "two", root / "cut"
    with ThreadPoolExecutor(2) as pool:
        jobs = [pool.submit(train, copy, one, "dataset.batch_size=8"),
                pool.submit(train, copy, two, "dataset.batch_size=4", "trainer=ddp", "trainer.accelerator=cpu",
                            "trainer.devices=2")]
        procs = [j.result() for j in jobs]
    train(copy, cut, f"trainer.max_steps={STEPS_PER_EPOCH}", "test=false")
    first_half = skipped_rows(cut)
    resumed = train(copy, cut, "ckpt_path=last")
    return {"one": one, "two": two, "cut": cut, "first_half": first_half, "procs": procs, "resumed": resumed}


def test_supervised_read_equals_the_plain_read_and_survives_real_faults(tmp_path):
    """In this process: a real SIGSEGV and a real SIGABRT in the child, a stuck child killed, then a good read."""
    frames = np.random.default_rng(0).integers(0, 255, (12, 48, 64, 3), dtype=np.uint8)
    write_video(tmp_path / "good.mp4", frames)
    from vidrec.data.decoding import read_frames

    assert torch.equal(isolation.read_frames(tmp_path / "good.mp4", [5, 0, 5]), read_frames(tmp_path / "good.mp4", [5, 0, 5]))
    sup = isolation.Supervisor()
    for sig, name in ((signal.SIGSEGV, "SIGSEGV"), (signal.SIGABRT, "SIGABRT")):
        with pytest.raises(isolation.DecodeCrash, match=f"bad.mp4: crashed: {name}"):
            sup.call(_kill_self, (sig,), 10, "bad.mp4")
    start = time.monotonic()
    with pytest.raises(isolation.DecodeTimeout, match="bad.mp4: timed out after 1 s"):
        sup.call(time.sleep, (3600,), 1, "bad.mp4")
    assert time.monotonic() - start < 1 + isolation.REAP_S
    assert sup.call(isolation._read_array, (str(tmp_path / "good.mp4"), [1], "auto"), 10, "good.mp4")[0].shape == (1, 48, 64, 3)
    sup.close()


class _Items:
    """A shared object for :func:`isolation.map_items`: item ``"segv"`` kills the child, ``"hang"`` never returns."""

    def work(self, item: str) -> tuple[str, int]:
        if item == "segv":
            _kill_self(signal.SIGSEGV)
        if item == "hang":
            time.sleep(3600)
        return item, os.getpid()


def test_a_batch_in_one_round_trip_costs_only_the_crashing_and_the_hanging_item():
    """``map_items`` runs a batch in one child; an item that crashes it or hangs past the timeout comes back as its
    error in its place, and the others as if nothing happened (computed again in a fresh child)."""
    obj = _Items()
    out = isolation.map_items(obj, "work", ["a", "b", "c"], 10, path=str)
    assert [o[0] for o in out] == ["a", "b", "c"] and len({o[1] for o in out}) == 1 and out[0][1] != os.getpid()
    start = time.monotonic()
    out = isolation.map_items(obj, "work", ["a", "segv", "b", "hang", "c"], 1, path=lambda item: f"{item}.mp4")
    assert time.monotonic() - start < 1 + isolation.REAP_S + 5
    assert [o[0] for o in (out[0], out[2], out[4])] == ["a", "b", "c"]
    assert isinstance(out[1], isolation.DecodeCrash) and "segv.mp4: crashed: SIGSEGV" in str(out[1])
    assert isinstance(out[3], isolation.DecodeTimeout) and "hang.mp4: timed out after 1 s" in str(out[3])
    assert isolation.map_items(obj, "work", ["a"], None, path=str) == [("a", os.getpid())]  # None: in this process


def _kill_self(sig: int) -> None:
    """Runs in the decoder child: it dies of ``sig``."""
    os.kill(os.getpid(), sig)


@pytest.mark.slow  # multi-process runs: make test-slow
def test_runs_finish_and_list_both_videos_with_their_reasons(runs):
    rows = skipped_rows(runs["one"])
    assert {(stage, vid) for stage, vid, _ in rows} == {("train", SEGV), ("train", HANG), ("test", SEGV_TEST)}
    reasons = {vid: reason for _, vid, reason in rows}
    assert f"{SEGV}.mp4: crashed: SIGSEGV" in reasons[SEGV]
    assert f"{HANG}.mp4: timed out after {TIMEOUT} s" in reasons[HANG]
    assert "crashed: SIGSEGV" in reasons[SEGV_TEST]
    results = read_json(runs["one"] / "results.json")
    assert results["num_videos"] == 15 and results["skipped_videos"] == 1  # metrics over the 15 others
    with open(runs["one"] / "predictions.csv") as f:
        assert SEGV_TEST not in {r["video_id"] for r in csv.DictReader(f)}
    out = runs["procs"][0].stdout + runs["procs"][0].stderr
    assert "2 unreadable video(s) skipped this epoch" in out
    assert "Unexpected segmentation fault" not in out  # the decoder child does not run the worker's handlers


@pytest.mark.slow  # multi-process runs: make test-slow
def test_ddp_and_resume_agree_with_one_process(runs):
    one = skipped_rows(runs["one"])
    assert skipped_rows(runs["two"]) == one  # both ranks' records, once each, in index order
    assert skipped_rows(runs["cut"]) == one  # the resumed second epoch skips what the unbroken one skipped
    assert [r for r in runs["first_half"] if r[0] == "train"] == [r for r in one if r[0] == "train"]
    m_one, m_two, m_cut = (read_json(runs[k] / "metrics.json") for k in ("one", "two", "cut"))
    for key in ("test/top1", "test/top5", "test/mean_class_acc", "val/top1"):
        assert m_one[key] == m_two[key] == m_cut[key], key
    assert "MEMBER: 2/2" in runs["procs"][1].stdout + runs["procs"][1].stderr


@pytest.mark.parametrize("setting", ["data.strict=true", "data.max_skip_ratio=0.05"])
def test_strict_and_max_skip_ratio_apply_to_crashes_and_timeouts(copy, tmp_path, setting):
    from conftest import one_error_line

    proc = run_entry("train.py", *COMMON, f"dataset.root={copy / 'videos'}", "trainer.max_epochs=1", "test=false",
                     "+trainer.limit_val_batches=0", f"dataset.annotation_path={copy / 'annotation.json'}",
                     f"hydra.run.dir={tmp_path}", setting, env=FAULTS, check=False)
    line = one_error_line(proc)
    if setting == "data.strict=true":
        assert "data.strict=true" in line and (f"{SEGV}.mp4: crashed: SIGSEGV" in line or f"{HANG}.mp4: timed out" in line)
    else:
        assert "train: 2 of 24 videos could not be decoded" in line and "data.max_skip_ratio=0.05" in line
        assert SEGV in (tmp_path / "skipped_videos.csv").read_text()


# ---------------------------------------------------------------- the pre-flight scan and data.exclude
def check(*args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vidrec.data.check", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, **FAULTS, **(env or {})}, **kw)


@pytest.mark.slow  # multi-process runs: make test-slow
def test_scan_finds_the_bad_videos_resumes_after_kill_9_and_exclude_leaves_them_out(copy, tmp_path):
    scanned = Path(shutil.copytree(copy, tmp_path / "synthetic"))
    truncated = scanned / "videos" / "move_down" / "move_down_val_000.mp4"
    truncated.write_bytes(truncated.read_bytes()[:300])
    args = [f"dataset.root={scanned / 'videos'}", f"dataset.annotation_path={scanned / 'annotation.json'}",
            "dataset.synthetic=null", "--decode", "--workers", "1", "--timeout", str(TIMEOUT), "--out", str(tmp_path / "scan")]
    manifest = tmp_path / "scan" / "decode_manifest.jsonl"
    first = check(*args)
    while not (manifest.is_file() and manifest.read_text().count("\n") >= 3):
        assert first.poll() is None, first.communicate()[0]
        time.sleep(0.02)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    lines_at_kill = manifest.read_text().count("\n")
    assert lines_at_kill < 48  # stopped part-way
    second = check(*args)
    out = second.communicate(timeout=300)[0]
    assert second.returncode == 0, out
    records = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    assert len(records) == len({r["path"] for r in records}) == 48  # the rerun skipped what was done
    with open(tmp_path / "scan" / "bad_videos.csv") as f:
        bad = {r["video_id"]: r["reason"] for r in csv.DictReader(f)}
    assert set(bad) == {SEGV, HANG, SEGV_TEST, truncated.stem}
    assert bad[SEGV].startswith("crashed: SIGSEGV") and bad[HANG].startswith(f"timed out after {TIMEOUT} s")
    assert "cannot decode" in bad[truncated.stem] or "no" in bad[truncated.stem]
    assert "4 bad" in out

    run = tmp_path / "excluded"
    train(scanned, run, "trainer.max_epochs=1", f"data.exclude={tmp_path / 'scan' / 'bad_videos.csv'}")
    assert not (run / "skipped_videos.csv").exists()  # excluded, not skipped
    results = read_json(run / "results.json")
    assert results["excluded_videos"] == 1 and results["skipped_videos"] == 0 and results["num_videos"] == 15
    assert results["coverage"] == {"reference": "annotation", "split": "testing", "listed": 16, "present": 16,
                                   "fraction": 1.0, "missing": 0, "skipped": 0, "videos_evaluated": 15}


def test_official_csv_coverage_per_split_and_class(tmp_path, capsys):
    """3 of 4 listed validation videos present: 75 %; class b (1 of 2) is below 90 %, class a (2 of 2) is not."""
    from vidrec.data.annotations import make_entry, write_annotation
    from vidrec.data.check import main

    rows = [("a", "yt1", 0, 10), ("a", "yt2", 5, 15), ("b", "yt3", 1, 11), ("b", "yt4", 2, 12)]
    database = {}
    for label, yid, start, end in rows:
        vid = f"{yid}_{start:06d}_{end:06d}"
        database[vid] = make_entry("validation", label, 12)
        if yid != "yt4":
            (tmp_path / "videos" / label).mkdir(parents=True, exist_ok=True)
            (tmp_path / "videos" / label / f"{vid}.mp4").write_bytes(b"x")
    write_annotation(tmp_path / "annotation.json", ["a", "b"], database)
    official = tmp_path / "kinetics_400_val.csv"
    official.write_text("label,youtube_id,time_start,time_end,split\n"
                        + "".join(f"{label},{yid},{start},{end},val\n" for label, yid, start, end in rows))
    assert main(["--annotation", str(tmp_path / "annotation.json"), "--root", str(tmp_path / "videos"),
                 "--source", "video", "--official-csv", str(official), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "official validation: 3 of 4 videos present (75.0%); 1 of 2 classes below 90% (e.g. b)" in out
    written = read_json(tmp_path / "out" / "coverage.json")["validation"]
    assert written["classes"] == {"a": [2, 2], "b": [1, 2]} and written["classes_below_90"] == ["b"]
    from types import SimpleNamespace

    from vidrec.data.coverage import for_results
    from vidrec.data.spec import DataSpec

    spec = DataSpec.from_config({"test": {"subset": "validation"}}, {"coverage": str(tmp_path / "out" / "coverage.json")})
    dm = SimpleNamespace(test_ids=lambda: ["x"], missing={}, excluded={})
    assert for_results(spec, dm) == {"reference": str(tmp_path / "out" / "coverage.json"), "split": "validation",
                                    "listed": 4, "present": 3, "fraction": 0.75, "classes_below_90": 1}


def test_frame_extraction_lists_a_crashing_video_as_a_failure(tmp_path):
    """Preprocessing: the video whose decode segfaults is a row of failures.csv; the other videos are extracted."""
    import official_layouts as layouts

    ucf = layouts.make_ucf101(tmp_path)
    crash = "v_Archery_g08_c01"
    jpg = tmp_path / "jpg"
    proc = subprocess.run([sys.executable, str(REPO / "preprocess" / "video_jpg_ucf101_hmdb51.py"), str(ucf["videos"]),
                           str(jpg), "--size", "32", "--workers", "1"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **FAULTS, "VIDREC_TEST_FAULTS": f"segv:{crash}"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(jpg / "failures.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [Path(r["video"]).stem for r in rows] == [crash] and rows[0]["reason"].startswith("crashed: SIGSEGV")
    assert "extracted 8 videos" in proc.stdout + proc.stderr and not (jpg / "Archery" / crash).exists()

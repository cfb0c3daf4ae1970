"""preprocess/reencode_videos.py on real files: frame counts and order kept, GOP and no B-frames, resumable
after SIGKILL, bad sources left out, read_frames gives the same frames as from the source."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from av.video.frame import PictureType

from conftest import REPO, SHARED_CLIPS, read_json
from vidrec.data.decoding import count_frames, read_frames
from vidrec.data.synthetic import write_video
from vidrec.errors import DecodeError
from vidrec.preprocess.frames import Job
from vidrec.preprocess.reencode import Encoding, check, encode, output_size, reencode

SCRIPT = REPO / "preprocess" / "reencode_videos.py"


def command(*args: object, rc: int = 0, env: dict | None = None) -> str:
    proc = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})
    assert proc.returncode == rc, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def frames(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """A textured background, a bright square moving right and a brightness ramp: every frame is distinct."""
    rng = np.random.default_rng(seed)
    base = np.clip(rng.normal(80, 30, (h, w, 3)), 0, 255)
    out = np.empty((n, h, w, 3), dtype=np.uint8)
    for k in range(n):
        img = base + 4 * k
        x = (k * 5) % max(1, w - h // 3)
        img[h // 3: 2 * h // 3, x: x + h // 3] = 250
        out[k] = np.clip(img, 0, 255)
    return out


def write_vfr(path: Path, images: np.ndarray, pts: list[int]) -> None:
    """An MP4 whose frames have irregular timestamps (variable frame rate), in time base 1/30."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = images.shape[2], images.shape[1], "yuv420p"
        for image, t in zip(images, pts):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 30)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> dict[str, Path]:
    """SRC: generated videos (H.264 with B-frames, MPEG-4 AVI, VFR MP4), the real clips when present, one
    garbage file and one truncated file; DST: the command's output with the default settings."""
    root = tmp_path_factory.mktemp("reencode")
    src, dst = root / "src", root / "dst"
    (src / "gen" / "bframes").mkdir(parents=True)
    (src / "gen" / "avi").mkdir()
    write_video(src / "gen" / "bframes" / "big.mp4", frames(40, 240, 320), fps=25)
    write_video(src / "gen" / "avi" / "small.avi", frames(30, 96, 128, seed=1), fps=30)
    write_vfr(src / "gen" / "vfr.mp4", frames(24, 120, 160, seed=2), [0, 1, 2, 4, 5, 9, *range(10, 28)])
    (src / "gen" / "broken.mp4").write_bytes(b"not a video at all " * 200)
    whole = (src / "gen" / "avi" / "small.avi").read_bytes()
    (src / "gen" / "truncated.avi").write_bytes(whole[: len(whole) * 6 // 10])
    if (SHARED_CLIPS / "MANIFEST.json").is_file():
        shutil.copytree(SHARED_CLIPS, src / "real", ignore=shutil.ignore_patterns("*.json"))
    output = command(src, dst, "--workers", 2)
    return {"src": src, "dst": dst, "output": output}


def outputs(tree: dict[str, Path]) -> list[tuple[Path, Path]]:
    """(source, re-encoded) pairs of every source that was written."""
    pairs = [(s, tree["dst"] / s.relative_to(tree["src"]).with_suffix(".mp4")) for s in sorted(tree["src"].rglob("*.*"))]
    return [(s, d) for s, d in pairs if d.is_file()]


def test_frame_counts_are_those_of_the_sources_sequential_decode(tree):
    pairs = outputs(tree)
    assert len(pairs) == 3 + len(list((tree["src"] / "real").glob("*.avi")))
    for source, encoded in pairs:
        assert count_frames(encoded) == count_frames(source), source.name
        with av.open(str(encoded)) as c:  # the header is exact too (HMDB51's AVIs claim one frame more)
            assert c.streams.video[0].frames == count_frames(source), source.name
            assert not c.streams.audio
    assert read_json(tree["dst"] / "reencode.json")["settings"]["gop"] == 16
    assert f"re-encoded {len(pairs)} videos" in tree["output"]


def test_real_clips_keep_their_frame_count(tree):
    if not (SHARED_CLIPS / "MANIFEST.json").is_file():
        pytest.skip("../shared/clips is absent")
    manifest = read_json(SHARED_CLIPS / "MANIFEST.json")
    for name, info in manifest.items():
        if name.startswith("_"):
            continue
        encoded = tree["dst"] / "real" / Path(name).with_suffix(".mp4")
        assert count_frames(encoded) == info["decoded_frames_pyav"], name
        with av.open(str(encoded)) as c:
            s = c.streams.video[0]
            assert min(s.width, s.height) == 160 and s.width % 2 == 0, name
            assert abs(float(s.average_rate) - info["fps"]) < 0.01, name


def test_keyframe_every_gop_frames_and_no_b_frames(tree):
    for source, encoded in outputs(tree):
        with av.open(str(encoded)) as c:
            stream = c.streams.video[0]
            keys = [i for i, p in enumerate(c.demux(stream)) if p.size and p.is_keyframe]
        with av.open(str(encoded)) as c:
            decoded = list(c.decode(video=0))
        n = len(decoded)
        assert keys == list(range(0, n, 16)), source.name
        assert [i for i, f in enumerate(decoded) if f.key_frame] == keys, source.name
        assert {PictureType(f.pict_type).name for f in decoded} == {"I", "P"}, source.name
        assert [f.pts for f in decoded] == sorted(f.pts for f in decoded), source.name


def test_read_frames_gives_the_same_frames_as_the_source(tree):
    for source, encoded in outputs(tree):
        n = count_frames(source)
        idx = [n - 1, 0, 7, 7, n // 2, 3, n - 2]  # any order, repeats
        got = read_frames(encoded, idx).permute(0, 3, 1, 2).float()
        ref = read_frames(source, list(range(n))).permute(0, 3, 1, 2).float()
        ref = torch.nn.functional.interpolate(ref, size=got.shape[-2:], mode="bicubic", antialias=True).clamp(0, 255)
        error = (got - ref[idx]).abs().mean(dim=(1, 2, 3))
        assert error.max() < 8, (source.name, error)
        if source.parent.name != "real":  # generated content: every frame differs, so the index is the right one
            nearest = [int((ref - g).abs().mean(dim=(1, 2, 3)).argmin()) for g in got]
            assert nearest == idx, source.name


def test_bad_sources_are_reported_and_left_out(tree):
    with open(tree["dst"] / "failures.csv", newline="") as handle:
        rows = {Path(r["video"]).name: r["reason"] for r in csv.DictReader(handle)}
    assert set(rows) == {"broken.mp4", "truncated.avi"}
    assert "Invalid data" in rows["broken.mp4"] and "looks truncated" in rows["truncated.avi"]
    assert not (tree["dst"] / "gen" / "broken.mp4").exists() and not (tree["dst"] / "gen" / "truncated.mp4").exists()
    assert "2 failed" in tree["output"] and "failures.csv" in tree["output"]
    assert not [p for p in tree["dst"].rglob(".*")]  # no temporary file left


def test_the_check_catches_dropped_duplicated_and_swapped_frames(tmp_path):
    source = tmp_path / "v.mp4"
    write_video(source, frames(32, 64, 80), fps=30)
    data, signatures = encode(source, Encoding(short_side=48))
    check(data, signatures, source)  # the real encoding passes
    with pytest.raises(DecodeError, match="32 frames, the source decodes 31"):
        check(data, np.delete(signatures, 5, axis=0), source)
    swapped = signatures.copy()
    swapped[[10, 20]] = signatures[[20, 10]]
    with pytest.raises(DecodeError, match=r"v\.mp4: re-encoded frame 10 differs"):
        check(data, swapped, source)
    duplicated = np.concatenate([signatures[:1], signatures[:-1]])  # frame 0 twice, the last one dropped
    with pytest.raises(DecodeError, match="re-encoded frame 1 differs"):
        check(data, duplicated, source)


def test_output_size_is_even_keeps_aspect_and_never_upscales():
    assert output_size(340, 256, 160) == (212, 160)
    assert output_size(240, 320, 160) == (160, 214)
    assert output_size(320, 240, 256) == (320, 240)
    assert output_size(171, 97, 0) == (170, 96)


def _video_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.mp4") if not p.name.startswith(".")]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-specific")
def test_killed_run_resumes_and_leaves_no_temporary_file(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    for k in range(6):
        (src / f"c{k % 2}").mkdir(parents=True, exist_ok=True)
        write_video(src / f"c{k % 2}" / f"v{k}.mp4", frames(24, 64, 80, seed=k), fps=30)
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(src), str(dst), "--workers", "2"],
                            env={**os.environ, "VIDREC_PREPROCESS_FRAME_DELAY": "0.03"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while not _video_files(dst) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # the parent only: its workers die with it
    proc.wait()
    time.sleep(0.5)
    done = _video_files(dst)
    assert 1 <= len(done) < 6
    for encoded in done:  # an output in place is always complete
        assert count_frames(encoded) == 24
    output = command(src, dst, "--workers", 2)
    assert f"{len(done)} already done" in output and "0 failed" in output
    assert len(_video_files(dst)) == 6 and all(count_frames(p) == 24 for p in _video_files(dst))
    assert not list(dst.rglob(".*"))
    other = command(src, dst, "--crf", 30, rc=2)  # another encoding is not mixed into the same tree
    assert other.strip().startswith("error: ") and "reencode.json" in other and len(other.strip().splitlines()) == 1


def test_reencoding_one_file_directly(tmp_path):
    source = tmp_path / "in.avi"
    write_video(source, frames(20, 96, 128), fps=15)
    dest = tmp_path / "out" / "in.mp4"
    assert reencode(Job(source, dest), Encoding(short_side=64, gop=4)).frames == 20
    with av.open(str(dest)) as c:
        s = c.streams.video[0]
        assert (s.width, s.height, s.average_rate) == (86, 64, 15)
        assert [i for i, p in enumerate(c.demux(s)) if p.size and p.is_keyframe] == [0, 4, 8, 12, 16]


@pytest.mark.slow  # ~15 s of CPU, 40 s on a loaded machine
def test_train_py_reads_a_reencoded_ucf101_tree_with_the_same_annotation(tmp_path):
    """``dataset.source=video dataset.dirs.video=<DST> dataset.video_ext=.mp4``: the annotation is unchanged,
    every video is found and decodes, and the saved config records the tree the run used."""
    import official_layouts as layouts
    from conftest import run_entry

    data_dir = tmp_path / "data"
    ucf = layouts.make_ucf101(data_dir)
    subprocess.run([sys.executable, str(REPO / "preprocess" / "ucf101_json.py"), str(ucf["annotations"]),
                    "--dst-dir", str(data_dir / "ucf101")], check=True, capture_output=True, timeout=120)
    dst = tmp_path / "ucf101_160"
    command(ucf["videos"], dst, "--workers", 2)
    run = tmp_path / "run"
    run_entry("train.py", "dataset=ucf101", f"paths.data_dir={data_dir}", f"dataset.num_classes={len(ucf['labels'])}",
              "dataset.source=video", f"dataset.dirs.video={dst}", "dataset.video_ext=.mp4", "model=tiny",
              "dataset.num_workers=0", "dataset.batch_size=4", "dataset.clip.frames=4", "dataset.train.crop_size=32",
              "dataset.train.scale=[36,40]", "dataset.test.scale=36", "dataset.test.crop_size=32",
              "dataset.test.num_clips=1", "dataset.test.num_crops=1", "trainer.max_epochs=1",
              "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", f"hydra.run.dir={run}")
    assert read_json(run / "results.json")["num_videos"] == 3  # split 1 tests on one group: one video per class
    assert not (run / "skipped_videos.csv").exists()
    assert str(dst) in (run / ".hydra" / "config.yaml").read_text()


@pytest.mark.slow  # the full default run: 10-16 min on 2 shared cores (generation and re-encode included)
def test_default_synthetic_run_trained_from_a_reencoded_copy_reaches_095(tmp_path):
    """The default synthetic recipe (``experiment=synthetic``, 24 epochs) trained and tested on a re-encoded copy
    of its generated videos, the generator's annotation unchanged: video-level test top-1 >= 0.95."""
    from conftest import run_entry, val_curve
    from vidrec.data.spec import SyntheticSpec
    from vidrec.data.synthetic import ensure_synthetic

    folder = ensure_synthetic(tmp_path / "data", SyntheticSpec())  # what the bare train.py generates
    dst = tmp_path / "videos_160"
    command(folder / "videos", dst, "--workers", 2)
    assert sum(1 for _ in dst.rglob("*.mp4")) == sum(1 for _ in (folder / "videos").rglob("*.mp4"))
    run = tmp_path / "run"
    run_entry("train.py", "experiment=synthetic", "dataset.synthetic=null", f"dataset.root={dst}",
              f"dataset.annotation_path={folder / 'annotation.json'}", "dataset.video_ext=.mp4",
              "trainer.enable_progress_bar=false", f"hydra.run.dir={run}", timeout=1800)
    results = read_json(run / "results.json")
    assert results["num_videos"] == 8 * SyntheticSpec().per_class_test
    assert results["top1"] >= 0.95, f"{results} {val_curve(run)}"
    assert str(dst) in (run / ".hydra" / "config.yaml").read_text()

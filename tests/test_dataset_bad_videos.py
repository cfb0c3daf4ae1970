"""Bad videos and frames through the real VideoDataModule, and train.py on a dataset with corrupted videos.

Every case is read correctly, or skipped with a reason that names the file (counted, listed in
skipped_videos.csv), or fatal with one clear line under ``data.strict=true`` — never a crash of the epoch.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil

import av
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import (
    TINY,
    data_module,
    dataset_cfg,
    make_dataset,
    moving_bar_frames,
    one_error_line,
    run_entry,
)
from vidrec.data.annotations import make_entry, write_annotation
from vidrec.data.check import check_dataset, format_report
from vidrec.data.decoding import count_frames, frame_path, read_frames, truncated_frame_count
from vidrec.data.sampling import test_clip_indices, train_clip_indices, val_clip_indices
from vidrec.data.synthetic import SyntheticSpec, ensure_synthetic, write_video

CLIP = (4, 2)  # dataset_cfg's clip: 4 frames every 2nd (span 7); crops 32 px


# ---------------------------------------------------------------- writers of odd files
def write_audio_only(path) -> None:
    """An MP4 holding one AAC audio stream and no video stream."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=16000)
        for k in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, k * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_gray(path, frames: np.ndarray) -> None:
    """A real single-channel video stream (FFV1, pix_fmt gray) from uint8 ``(T, H, W)`` frames."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("ffv1", rate=16)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "gray"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="gray")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def gradient_frames(n: int, h: int, w: int) -> np.ndarray:
    """Smooth frames (cheap to encode even at 4K): a horizontal ramp brightening by 30 per frame."""
    ramp = np.linspace(0, 150, w, dtype=np.float32)[None, :, None] + np.zeros((h, 1, 3), np.float32)
    return np.stack([np.clip(ramp + 30 * k, 0, 255).astype(np.uint8) for k in range(n)])


def write_frame_folder(folder, frames: np.ndarray, n_frames_file: int | None = None) -> None:
    folder.mkdir(parents=True)
    for k, f in enumerate(frames):
        Image.fromarray(f).save(frame_path(folder, k), quality=95)
    if n_frames_file is not None:
        (folder / "n_frames").write_text(f"{n_frames_file}\n")


# ---------------------------------------------------------------- helpers
def single_video(root, write, n_frames: int | None, source: str = "video", ext: str = ".mp4", **cfg):
    """A dataset of one video (id ``vid``, label ``x``) used by train, val and test; ``write(path)`` makes it."""
    (root / "x").mkdir(parents=True)
    write(root / "x" / ("vid" + (ext if source == "video" else "")))
    write_annotation(root / "annotation.json", ["x"], {"vid": make_entry("validation", "x", n_frames)})
    dm = data_module(dataset_cfg(root, source, ext, num_classes=1,
                                     train={"subset": "validation", "crop_size": 32, "scale": [40, 48]}, **cfg),
                         mean=(0, 0, 0), std=(1, 1, 1))
    dm.setup("fit")
    dm.setup("test")
    return dm


def assert_reads_in_every_mode(dm) -> None:
    for mode, shape in (("train", (3, 4, 32, 32)), ("val", (3, 4, 32, 32)), ("test", (9, 3, 4, 32, 32))):
        item = dm.datasets[mode][0]
        assert item["ok"], f"{mode}: {item.get('reason')}"
        assert item["video"].shape == shape and item["video"].dtype == torch.uint8  # normalised on the device


def epoch(dm, mode: str) -> tuple[int, list]:
    """Run one epoch of the mode's loader: (videos decoded, skipped records)."""
    loader = {"train": dm.train_dataloader, "val": dm.val_dataloader, "test": dm.test_dataloader}[mode]()
    batches = list(loader)
    return sum(len(b.get("label", [])) for b in batches), [s for b in batches for s in b["skipped"]]


def clip_brightness(item) -> list[float]:
    """Mean pixel value (0-255) of each frame of a val item (uint8 clips from the loader)."""
    return item["video"].float().mean(dim=(0, 2, 3)).tolist()


# ---------------------------------------------------------------- broken files are skipped, named
BROKEN = {
    "zero_byte": (lambda path, good: path.write_bytes(b""), "empty (0 bytes)"),
    "truncated_half": (lambda path, good: path.write_bytes(good[: len(good) // 2]), "cannot decode"),
    "random_bytes": (lambda path, good: path.write_bytes(np.random.default_rng(0).bytes(len(good))), "cannot decode"),
    "audio_only": (lambda path, good: write_audio_only(path), "no video stream"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_video_is_skipped_with_its_name(tmp_path, case):
    make_dataset(tmp_path, "video")
    bad = tmp_path / "right" / "right_1.mp4"  # a validation video
    write, phrase = BROKEN[case]
    write(bad, bad.read_bytes())
    dm = data_module(dataset_cfg(tmp_path, "video"))
    dm.setup("fit")
    decoded, skipped = epoch(dm, "val")
    assert decoded == 2 and len(skipped) == 1
    _, video_id, reason = skipped[0]
    assert video_id == "right_1" and str(bad) in reason and phrase in reason


def test_header_overcount_avi_reads_its_last_claimed_frame(tmp_path, shared_clips):
    """HMDB51 AVIs claim one frame more than decode; the test clips end on the claimed last frame."""
    manifest = json.loads((shared_clips / "MANIFEST.json").read_text())
    lying = {n: i for n, i in manifest.items() if not n.startswith("_") and i["header_frames"] > i["decoded_frames_pyav"]}
    assert lying, "MANIFEST.json lists no clip whose header overcounts"
    database = {n.removesuffix(".avi"): make_entry("validation", "x", i["header_frames"]) for n, i in lying.items()}
    write_annotation(tmp_path / "annotation.json", ["x"], database)
    for decoder in ("auto", "pyav"):
        cfg = dataset_cfg(shared_clips, "video", ".avi", num_classes=1, path_format="{video_id}",
                          annotation_path=str(tmp_path / "annotation.json"),
                          test={"scale": 40, "crop_size": 32, "num_clips": 2, "num_crops": 1, "batch_size": 2})
        dm = data_module(cfg, data={"decoder": decoder})
        dm.setup("test")
        decoded, skipped = epoch(dm, "test")
        assert (decoded, skipped) == (len(lying), []), decoder
    for name, info in lying.items():  # the index past the real frames loops back to frame 0
        last, first = read_frames(shared_clips / name, [info["header_frames"] - 1, 0], backend="pyav")
        assert last.shape == (info["height"], info["width"], 3) and bool((last == first).all())


def truncation_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "truncated" in r.getMessage()]


def test_truncated_avi_samples_from_the_frames_that_decode(tmp_path, shared_clips, caplog):
    """A real UCF101 AVI cut to half its bytes: its header claims 240 frames, 121 decode. Clips are sampled from
    the 121 (not looped over 240), one warning names the file and both counts, the data check reports it."""
    whole = shared_clips / "v_SoccerJuggling_g23_c01.avi"
    dm = single_video(tmp_path, lambda p: p.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2]), None, ext=".avi")
    cut = tmp_path / "x" / "vid.avi"
    train, val, test = (dm.datasets[m] for m in ("train", "val", "test"))
    assert train.num_frames(0) == 240  # the header's claim, before any read
    with caplog.at_level(logging.WARNING, logger="vidrec.data.decoding"):
        first = train[(0, 7)]  # this read finds the truncation: the clip is sampled again over the real count
        again = train[(0, 7)]  # the count is known now: the same draws give the same clip
        items = [val[0], val[0], test[0]]
    assert first["ok"] and torch.equal(first["video"], again["video"]) and all(it["ok"] for it in items)
    (warning,) = truncation_warnings(caplog)
    assert str(cut) in warning and "claims 240 frames but only 121 decode" in warning
    assert truncated_frame_count(cut) == 121 and val.num_frames(0) == 121
    generator = torch.Generator().manual_seed(3)
    assert torch.equal(train.indices(0, generator), train_clip_indices(121, *CLIP, torch.Generator().manual_seed(3)))
    assert torch.equal(test.indices(0, generator), test_clip_indices(121, *CLIP, test.num_clips))
    centre = val_clip_indices(121, *CLIP)  # 57, 59, 61, 63; over the claimed 240 it would be 116 ... 122 (122 ≡ 1)
    assert torch.equal(items[0]["video"], val.transform.eval_views(read_frames(cut, centre), num_crops=1)[0])
    assert torch.equal(read_frames(cut, [0, 60, 119]), read_frames(whole, [0, 60, 119]))  # frame 120 is cut mid-packet
    assert count_frames(cut) == 121

    hmdb = json.loads((shared_clips / "MANIFEST.json").read_text())
    name = next(n for n, i in hmdb.items() if not n.startswith("_") and i["header_frames"] == i["decoded_frames_pyav"] + 1)
    (tmp_path / "x" / "hmdb.avi").symlink_to(shared_clips / name)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vidrec.data.decoding"):  # one frame too many is no truncation
        read_frames(tmp_path / "x" / "hmdb.avi", [hmdb[name]["header_frames"] - 1])
    assert truncation_warnings(caplog) == [] and truncated_frame_count(tmp_path / "x" / "hmdb.avi") is None

    write_annotation(tmp_path / "check.json", ["x"], {v: make_entry("validation", "x") for v in ("vid", "hmdb")})
    result = check_dataset(tmp_path / "check.json", tmp_path, "video", video_ext=".avi", count_frames=True)
    stats = result["subsets"]["validation"]
    assert (stats["truncated"], stats["truncated_examples"], stats["unreadable"]) == (1, ["x/vid.avi (header 240 frames, 121 stored)"], 0)
    assert result["complete"] is False
    assert "1 videos truncated" in format_report(result) and "x/vid.avi (header 240 frames, 121 stored)" in format_report(result)
    assert check_dataset(tmp_path / "check.json", tmp_path, "video", video_ext=".avi")["complete"] is True  # not asked


ODD_FRAMES = {
    "grayscale": (lambda p: write_gray(p, moving_bar_frames(12)[..., 0]), ".mkv"),
    "odd_97x61": (lambda p: write_video(p, moving_bar_frames(12, h=61, w=97)), ".avi"),
    "portrait_112x64": (lambda p: write_video(p, moving_bar_frames(12, h=112, w=64)), ".mp4"),
    "4k_3840x2160": (lambda p: write_video(p, gradient_frames(2, 2160, 3840)), ".mp4"),
}


@pytest.mark.parametrize("case", list(ODD_FRAMES))
def test_unusual_frames_decode_to_rgb_clips(tmp_path, case):
    write, ext = ODD_FRAMES[case]
    dm = single_video(tmp_path, write, None, ext=ext)
    assert_reads_in_every_mode(dm)
    raw = read_frames(dm.datasets["val"].path(0), [0, 1])
    assert raw.dtype == torch.uint8 and raw.ndim == 4 and raw.shape[-1] == 3
    if case == "grayscale":
        assert bool((raw[..., 0] == raw[..., 1]).all() and (raw[..., 1] == raw[..., 2]).all())


def test_video_shorter_than_the_clip_span(tmp_path):
    dm = single_video(tmp_path, lambda p: write_video(p, moving_bar_frames(3)), 3)  # span 7 > 3 frames
    assert_reads_in_every_mode(dm)
    # val: the centre clip of a 3-frame video loops: frames 0, 2, 1, 0 (brightness 10 + 10k)
    assert np.allclose(clip_brightness(dm.datasets["val"][0]), [10, 30, 20, 10], atol=4)


def test_frame_folder_with_a_missing_image_is_skipped(tmp_path):
    hole = int(val_clip_indices(20, *CLIP)[1])
    dm = single_video(tmp_path, lambda p: write_frame_folder(p, moving_bar_frames(20), 20), 20, source="frames")
    missing = frame_path(tmp_path / "x" / "vid", hole)
    missing.unlink()
    item = dm.datasets["val"][0]
    assert not item["ok"] and str(missing) in item["reason"] and "missing" in item["reason"]


def test_unreadable_jpeg_is_skipped(tmp_path):
    dm = single_video(tmp_path, lambda p: write_frame_folder(p, moving_bar_frames(20), 20), 20, source="frames")
    broken = frame_path(tmp_path / "x" / "vid", int(val_clip_indices(20, *CLIP)[2]))
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 20)
    item = dm.datasets["val"][0]
    assert not item["ok"] and str(broken) in item["reason"] and "unreadable image" in item["reason"]


@pytest.mark.parametrize("source", ["frames", "video"])
def test_missing_n_frames_uses_the_real_count(tmp_path, source):
    def write(path):
        if source == "video":
            write_video(path, moving_bar_frames(20))
        else:
            write_frame_folder(path, moving_bar_frames(20))  # no n_frames file either

    dm = single_video(tmp_path, write, None, source=source)
    assert dm.datasets["val"].entries[0].n_frames is None
    # the centre clip of 20 frames: 6, 8, 10, 12
    assert np.allclose(clip_brightness(dm.datasets["val"][0]), [70, 90, 110, 130], atol=4)
    assert_reads_in_every_mode(dm)


@pytest.mark.parametrize("source", ["frames", "video"])
def test_n_frames_larger_than_the_frames_present_loops_back(tmp_path, source):
    """The annotation says 40 frames, 20 exist: reads past the end loop back on the 20, the epoch completes."""
    def write(path):
        if source == "video":
            write_video(path, moving_bar_frames(20))
        else:
            write_frame_folder(path, moving_bar_frames(20), n_frames_file=40)

    dm = single_video(tmp_path, write, 40, source=source)
    # the centre clip of 40 frames: 16, 18, 20 → 0, 22 → 2
    assert np.allclose(clip_brightness(dm.datasets["val"][0]), [170, 190, 10, 30], atol=4)
    for mode in ("train", "val", "test"):
        assert epoch(dm, mode) == (1, []), mode


# ---------------------------------------------------------------- train.py end to end
@pytest.fixture(scope="module")
def corrupted_copy(data_dir, tmp_path_factory):
    """A copy of the TINY synthetic dataset with two broken training videos and one broken test video."""
    spec = SyntheticSpec(per_class_train=3, per_class_val=1, per_class_test=2, frames=12)  # what TINY generates
    copy = tmp_path_factory.mktemp("corrupted") / "synthetic"
    shutil.copytree(ensure_synthetic(data_dir, spec), copy)
    videos = copy / "videos"
    (videos / "move_up" / "move_up_tra_001.mp4").write_bytes(b"")
    truncated = videos / "grow" / "grow_tra_002.mp4"
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    (videos / "shrink" / "shrink_tes_000.mp4").write_bytes(np.random.default_rng(1).bytes(3000))
    return copy


def train_on(copy, run, *overrides: str, check: bool = True):
    tiny = [o for o in TINY if not o.startswith("dataset.synthetic.")]
    return run_entry("train.py", *tiny, "dataset.synthetic=null", f"dataset.root={copy / 'videos'}",
                     f"dataset.annotation_path={copy / 'annotation.json'}", f"hydra.run.dir={run}", *overrides, check=check)


TRAIN_ONLY = ("test=false", "+trainer.limit_val_batches=0")  # the broken videos are training videos


def test_train_finishes_and_lists_the_broken_videos(corrupted_copy, tmp_path):
    proc = train_on(corrupted_copy, tmp_path)
    with open(tmp_path / "skipped_videos.csv") as f:
        rows = {(r["stage"], r["video_id"]): r["reason"] for r in csv.DictReader(f)}
    assert set(rows) == {("train", "move_up_tra_001"), ("train", "grow_tra_002"), ("test", "shrink_tes_000")}
    assert "move_up_tra_001.mp4" in rows["train", "move_up_tra_001"] and "0 bytes" in rows["train", "move_up_tra_001"]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["skipped_videos"] == 1 and results["num_videos"] == 15
    assert "skipped_videos.csv" in proc.stdout + proc.stderr  # shown at the end of the run


def test_strict_makes_the_first_broken_video_fatal(corrupted_copy, tmp_path):
    line = one_error_line(train_on(corrupted_copy, tmp_path, "data.strict=true", *TRAIN_ONLY, check=False))
    assert "data.strict=true" in line and ("move_up_tra_001.mp4" in line or "grow_tra_002.mp4" in line)


def test_max_skip_ratio_stops_a_broken_run(corrupted_copy, tmp_path):
    line = one_error_line(train_on(corrupted_copy, tmp_path, "data.max_skip_ratio=0.05", *TRAIN_ONLY, check=False))
    assert "train: 2 of 24 videos could not be decoded" in line and "data.max_skip_ratio=0.05" in line
    assert "move_up_tra_001" in (tmp_path / "skipped_videos.csv").read_text()  # listed although the run stopped

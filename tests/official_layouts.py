"""Miniature official downloads, written for real: small videos encoded with PyAV and label files in the
exact official formats. Each ``make_*`` function builds one dataset under a folder and returns a dict of
paths plus ``expected`` ground truth::

    {"root": Path, "videos" | "frames": Path (the download), "annotations" | "*_csv": label files,
     "labels": [class names in the order the JSON must list them],
     "expected": {video_id: {"label": str | None, "n_frames": int (real, after any cut),
                             "first_index": int (index of the first extracted frame in the source),
                             "subset": str  or  "subsets": {split: str | None}  (UCF101/HMDB51)}}}

Kinetics, UCF101 and HMDB51 frame folders go to ``<label>/<video_id>`` (``test/`` when unlabelled),
Something-Something to ``<video_id>``. Building all five takes well under a second.

Every written frame carries its index in two grey blocks at its top-left (:func:`frame_levels`), which
:func:`frame_index` recovers from decoded pixels, resized or not (to check cuts and frame order).
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

#: Encoder settings per container suffix: (codec, options).
CODECS = {
    ".avi": ("mpeg4", {"qscale": "2"}),
    ".mp4": ("libx264", {"crf": "12", "preset": "ultrafast"}),
    ".webm": ("libvpx-vp9", {"crf": "12", "b": "0", "deadline": "realtime", "cpu-used": "8"}),
}


def frame_levels(index: int) -> tuple[int, int]:
    """Grey levels of the two index blocks of frame ``index`` (base-8 digits; indices 0..63)."""
    return 16 + 32 * (index // 8 % 8), 16 + 32 * (index % 8)


def frame_index(frame: np.ndarray) -> int:
    """Recover the frame index from a decoded frame (H, W, 3) uint8 of any size (the blocks scale with it)."""
    h, w = frame.shape[:2]
    rows = slice(h * 2 // 64, max(h * 2 // 64 + 1, h * 14 // 64))
    high = frame[rows, w * 2 // 80: max(w * 2 // 80 + 1, w * 14 // 80)].mean()
    low = frame[rows, w * 18 // 80: max(w * 18 // 80 + 1, w * 30 // 80)].mean()
    return round((float(high) - 16) / 32) * 8 + round((float(low) - 16) / 32)


def frame_array(index: int, width: int, height: int) -> np.ndarray:
    """A synthetic RGB frame: a gradient, a moving square, and two index blocks along the top-left edge."""
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([(x * 255 // max(1, width - 1)), (y * 255 // max(1, height - 1)),
                    np.full_like(x, 128)], axis=-1).astype(np.uint8)
    side = max(4, height // 4)
    left = (index * 3) % max(1, width - side)
    img[height // 2: height // 2 + side, left: left + side] = (255, 64, 0)
    high, low = frame_levels(index)
    img[: height * 16 // 64, : width * 16 // 80] = high
    img[: height * 16 // 64, width * 16 // 80: width * 32 // 80] = low
    return img


def write_video(path: Path, n_frames: int, width: int = 80, height: int = 64, fps: int = 10) -> Path:
    """Encode ``n_frames`` synthetic frames into ``path`` (codec from the suffix: see :data:`CODECS`)."""
    codec, options = CODECS[path.suffix]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps), options=dict(options))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(frame_array(i, width, height), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def write_jpeg_folder(folder: Path, n_frames: int, width: int, height: int) -> Path:
    """A shipped frame folder as Something-Something V1: ``00001.jpg``, ``00002.jpg``..."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_frames):
        Image.fromarray(frame_array(i, width, height)).save(folder / f"{i + 1:05d}.jpg", quality=95)
    return folder


def _write(path: Path, text: str, newline: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def make_kinetics(tmp: Path) -> dict[str, Any]:
    """Crawler-style Kinetics: ``videos/<label>/<yid>_<start>_<end>.mp4``, ``videos/test/``, crawler CSVs.

    Includes a whole YouTube video ``videos/air drumming/<yid>.mp4`` (6 s at 10 fps) whose CSV segment is
    [2, 4) s (20 frames from frame 20), a whole video saved under its trimmed name (segment [3, 5) s: 20
    frames from frame 30) and a clip in an underscored class folder ``air_drumming/``.
    """
    root = tmp / "kinetics"
    videos = root / "videos"
    rows = [  # (subset, label, youtube_id, start, end, n_frames, folder or None for a whole video named <yid>)
        ("training", "abseiling", "-_aB3_xY9-z", 0, 10, 20, "abseiling"),
        ("training", "abseiling", "b2Cd4Ef6Gh8", 5, 15, 24, "abseiling"),
        ("training", "air drumming", "c3De5Fg7Hi9", 2, 4, 20, None),
        ("training", "air drumming", "d4Ef6Gh8Ij0", 30, 40, 26, "air drumming"),
        ("training", "abseiling", "i9Jk0Lm2No5", 3, 5, 20, "abseiling"),  # whole video under its trimmed name
        ("validation", "abseiling", "e5Fg7Hi9Jk1", 1, 11, 28, "abseiling"),
        ("validation", "air drumming", "f6Gh8Ij0Kl2", 12, 22, 30, "air_drumming"),
        ("testing", None, "g7Hi8Jk0Lm3", 0, 10, 22, "test"),
        ("testing", None, "h8Ij9Kl1Mn4", 3, 13, 21, "test"),
    ]
    expected = {}
    for subset, label, yid, start, end, n_frames, folder in rows:
        video_id = f"{yid}_{start:06d}_{end:06d}"
        whole = folder is None or end - start < 10
        name = f"{yid}.mp4" if folder is None else f"{video_id}.mp4"
        write_video(videos / (folder or label) / name, 60 if whole else n_frames, 64, 48)
        expected[video_id] = {"subset": subset, "label": label, "n_frames": n_frames,
                              "first_index": start * 10 if whole else 0}
    train = "label,youtube_id,time_start,time_end,split,is_cc\n" + "".join(
        f"{label},{yid},{s},{e},train,0\n" for sub, label, yid, s, e, _, _ in rows if sub == "training")
    val = "label,youtube_id,time_start,time_end,split\n" + "".join(
        f"{label},{yid},{s},{e},val\n" for sub, label, yid, s, e, _, _ in rows if sub == "validation")
    test = "youtube_id,time_start,time_end,split\n" + "".join(
        f"{yid},{s},{e},test\n" for sub, _, yid, s, e, _, _ in rows if sub == "testing")
    return {"root": root, "videos": videos, "train_csv": _write(root / "kinetics_train.csv", train),
            "val_csv": _write(root / "kinetics_val.csv", val), "test_csv": _write(root / "kinetics_test.csv", test),
            "labels": ["abseiling", "air drumming"], "expected": expected}


def make_kinetics_real_lengths(tmp: Path) -> dict[str, Any]:
    """Kinetics files of the lengths public copies really have, all named ``<yid>_<start>_<end>.mp4``: trimmed
    clips of 11.08 s (segment [121, 131): the file ends before its segment starts), 10.0 s and 9.5 s, and a
    140 s untrimmed video (2 fps, 64x48) under a trimmed name, whose segment [121, 131) is frames 242-261.

    ``expected`` as :func:`make_kinetics`, plus ``rule`` (the decision :func:`segment_decision` must give).
    """
    videos = tmp / "kinetics_real" / "videos"
    rows = [  # (label, youtube_id, start, end, frames, fps, expected n_frames, first index, rule)
        ("abseiling", "k11s080msAa", 121, 131, 277, 25, 277, 0, "trimmed: shorter than the segment's start"),
        ("abseiling", "k10s000msBb", 5, 15, 250, 25, 250, 0, "trimmed: about the segment's length"),
        ("air drumming", "k09s500msCc", 0, 10, 95, 10, 95, 0, "trimmed: about the segment's length"),
        ("air drumming", "k140sWholeD", 121, 131, 280, 2, 20, 242,
         "untrimmed: longer than the segment and reaching its start"),
    ]
    expected = {}
    for label, yid, start, end, frames, fps, n_frames, first, rule in rows:
        video_id = f"{yid}_{start:06d}_{end:06d}"
        write_video(videos / label / f"{video_id}.mp4", frames, 64, 48, fps=fps)
        expected[video_id] = {"label": label, "n_frames": n_frames, "first_index": first, "rule": rule,
                              "segment": (start, end), "frames": frames, "fps": fps}
    return {"videos": videos, "expected": expected}


UCF_CLASSES = [("ApplyEyeMakeup", "ApplyEyeMakeup"), ("Archery", "Archery"), ("HandstandPushups", "HandStandPushups")]
UCF_TEST_GROUP = {1: "g01", 2: "g08", 3: "g15"}  # the group each split tests on (official: g01-07, g08-14, g15-21)


def make_ucf101(tmp: Path) -> dict[str, Any]:
    """``UCF-101/<Class>/v_<Name>_gXX_c01.avi`` (mpeg4 AVI, 80x60) and ``ucfTrainTestlist/`` with CRLF lines.

    As shipped, class ``HandstandPushups`` holds files named ``v_HandStandPushups_...``.
    ``expected[video_id]["subsets"]`` maps split → subset.
    """
    root = tmp / "ucf101"
    videos, lists = root / "UCF-101", root / "ucfTrainTestlist"
    expected: dict[str, Any] = {}
    for c, (label, name) in enumerate(UCF_CLASSES):
        for g, group in enumerate(UCF_TEST_GROUP.values()):
            video_id = f"v_{name}_{group}_c01"
            n_frames = 20 + 3 * c + g
            write_video(videos / label / f"{video_id}.avi", n_frames, 80, 60)
            subsets = {s: "validation" if UCF_TEST_GROUP[s] == group else "training" for s in UCF_TEST_GROUP}
            expected[video_id] = {"label": label, "n_frames": n_frames, "subsets": subsets, "first_index": 0}
    _write(lists / "classInd.txt", "".join(f"{i + 1} {label}\n" for i, (label, _) in enumerate(UCF_CLASSES)), "\r\n")
    for split in UCF_TEST_GROUP:
        train = test = ""
        for video_id, info in expected.items():
            index = [label for label, _ in UCF_CLASSES].index(info["label"]) + 1
            if info["subsets"][split] == "training":
                train += f"{info['label']}/{video_id}.avi {index}\n"
            else:
                test += f"{info['label']}/{video_id}.avi\n"
        _write(lists / f"trainlist0{split}.txt", train, "\r\n")
        _write(lists / f"testlist0{split}.txt", test, "\r\n")
    return {"root": root, "videos": videos, "annotations": lists, "labels": [c for c, _ in UCF_CLASSES],
            "expected": expected}


HMDB_VIDEOS = {  # class → video names (real HMDB51 naming, odd characters included)
    "brush_hair": ["April_09_brush_hair_u_nm_np1_ba_goo_0", "Brushing_Hair_with_Beth_brush_hair_h_nm_np1_le_goo_0",
                   "atempting_to_brush_my_hair_brush_hair_u_nm_np2_le_goo_0"],
    "cartwheel": ["Bodenturnen_2004_cartwheel_f_cm_np1_le_med_0", "(Rad)Schlag_die_Bank!_cartwheel_f_cm_np1_le_med_0",
                  "Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8"],
    "wave": ["20060723sfjffbartsinger_wave_f_cm_np1_ba_med_0", "21_wave_u_nm_np1_fr_goo_5",
             "winKen_wave_u_cm_np1_ri_bad_0"],
}
HMDB_FLAGS = {1: ["1", "2", "0"], 2: ["2", "1", "1"], 3: ["0", "1", "2"]}  # per split, flag of the n-th video


def make_hmdb51(tmp: Path) -> dict[str, Any]:
    """``hmdb51_org/<class>/<video>.avi`` (mpeg4 AVI, 80x60) and ``testTrainMulti_7030_splits/`` split files.

    Split lines are ``<video>.avi <flag> `` (with the official trailing space); ``expected[video_id]["subsets"]``
    maps split → subset (``None`` when the flag is 0).
    """
    root = tmp / "hmdb51"
    videos, splits = root / "hmdb51_org", root / "testTrainMulti_7030_splits"
    subset_of = {"0": None, "1": "training", "2": "validation"}
    expected: dict[str, Any] = {}
    for c, (label, names) in enumerate(HMDB_VIDEOS.items()):
        for n, name in enumerate(names):
            n_frames = 21 + 2 * c + n
            write_video(videos / label / f"{name}.avi", n_frames, 80, 60)
            subsets = {s: subset_of[flags[n]] for s, flags in HMDB_FLAGS.items()}
            expected[name] = {"label": label, "n_frames": n_frames, "subsets": subsets, "first_index": 0}
        for split, flags in HMDB_FLAGS.items():
            _write(splits / f"{label}_test_split{split}.txt", "".join(f"{nm}.avi {f} \n" for nm, f in zip(names, flags)))
    return {"root": root, "videos": videos, "annotations": splits, "labels": sorted(HMDB_VIDEOS), "expected": expected}


SOMETHING_LABELS = ["Holding something", "Putting something on a surface",
                    "Something falling like a feather or paper", "Moving part of something",
                    # the six real classes a horizontal flip swaps (configs/dataset/something_v1.yaml's map)
                    "Pushing something from left to right", "Pushing something from right to left",
                    "Pulling something from left to right", "Pulling something from right to left",
                    "Turning the camera left while filming something",
                    "Turning the camera right while filming something"]


def make_something_v1(tmp: Path) -> dict[str, Any]:
    """``20bn-something-something-v1/<id>/00001.jpg`` (120x100 JPEGs) and the ``;``-separated label CSVs."""
    root = tmp / "something_v1"
    frames = root / "20bn-something-something-v1"
    rows = [("100218", "training", 2, 24), ("100219", "training", 0, 20), ("8", "training", 1, 22),
            ("40001", "validation", 2, 21), ("40002", "validation", 3, 25), ("999", "testing", None, 23),
            ("100220", "training", 4, 22)]
    expected = {}
    for video_id, subset, label_index, n_frames in rows:
        write_jpeg_folder(frames / video_id, n_frames, 120, 100)
        label = SOMETHING_LABELS[label_index] if label_index is not None else None
        expected[video_id] = {"subset": subset, "label": label, "n_frames": n_frames, "first_index": 0}
    _write(root / "something-something-v1-labels.csv", "".join(f"{label}\n" for label in SOMETHING_LABELS))
    for subset, suffix in (("training", "train"), ("validation", "validation"), ("testing", "test")):
        text = "".join(f"{vid};{info['label']}\n" if info["label"] else f"{vid}\n"
                       for vid, info in expected.items() if info["subset"] == subset)
        _write(root / f"something-something-v1-{suffix}.csv", text)
    return {"root": root, "frames": frames, "annotations": root, "labels": SOMETHING_LABELS, "expected": expected}


SOMETHING_V2_TEMPLATES = {"Holding something": "Holding [something]",
                          "Putting something on a surface": "Putting [something] on a surface",
                          "Something falling like a feather or paper": "[Something] falling like a feather or paper",
                          "Moving part of something": "Moving [part] of [something]",
                          "Pushing something from left to right": "Pushing [something] from left to right"}


def make_something_v2(tmp: Path) -> dict[str, Any]:
    """``20bn-something-something-v2/<id>.webm`` (VP9, 12 fps, 80x64) and ``labels/`` JSON files."""
    root = tmp / "something_v2"
    videos, labels_dir = root / "20bn-something-something-v2", root / "labels"
    rows = [("78687", "training", 0, 24), ("42326", "training", 1, 20), ("3", "training", 3, 26),
            ("1420", "validation", 2, 22), ("24511", "validation", 3, 21), ("1", "testing", None, 20),
            ("5", "training", 4, 20)]
    expected: dict[str, Any] = {}
    items: dict[str, list] = {"training": [], "validation": [], "testing": []}
    for video_id, subset, label_index, n_frames in rows:
        write_video(videos / f"{video_id}.webm", n_frames, 80, 64, fps=12)
        label = SOMETHING_LABELS[label_index] if label_index is not None else None
        expected[video_id] = {"subset": subset, "label": label, "n_frames": n_frames, "first_index": 0}
        if label is None:
            items[subset].append({"id": video_id})
        else:
            template = SOMETHING_V2_TEMPLATES[label]
            placeholders = ["a pen", "a cup"][: template.count("[")]
            items[subset].append({"id": video_id, "label": template.replace("[something]", "a pen").lower(),
                                  "template": template, "placeholders": placeholders})
    order = [3, 0, 2, 1, *range(len(SOMETHING_LABELS) - 1, 3, -1)]  # labels.json is not in index order
    _write(labels_dir / "labels.json", json.dumps({SOMETHING_LABELS[i]: str(i) for i in order}, indent=1))
    for subset, name in (("training", "train"), ("validation", "validation"), ("testing", "test")):
        _write(labels_dir / f"{name}.json", json.dumps(items[subset], indent=1))
    return {"root": root, "videos": videos, "annotations": labels_dir, "labels": SOMETHING_LABELS, "expected": expected}

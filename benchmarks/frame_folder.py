"""Frame-folder reading: vidrec's JPEG clip loader vs a plain ``cv2.imread`` loop over the same files, same run.

Candidate: ``read_frames(folder, indices)`` for random 16×4 training clips (simplejpeg, libjpeg-turbo, when
installed; PIL otherwise), returning the stacked uint8 RGB clip. Reference: ``[cv2.imread(f) for f in
files]`` over the same 16 files (BGR arrays in a list: less work than the candidate's RGB stacked clip).
Without OpenCV the reference is a PIL loop (``np.asarray(Image.open(f).convert("RGB"))``) and the output
says so. Frames: 150 JPEGs (quality 90) of the 340×256 benchmark video and of a UCF101 clip (320×240)
when ../shared/clips is present. CPU time, one torch thread (as in a loader worker).

    python benchmarks/frame_folder.py [--clips 24] [--rounds 5]
"""

from __future__ import annotations

import argparse
import zlib
from pathlib import Path

import av  # PyAV before decord (see vidrec.data.decoding)
import common
import numpy as np
from PIL import Image

from vidrec.data import jpeg
from vidrec.data.decoding import frame_path, read_frames

TARGET = 1.0
FRAMES = 150

try:
    import cv2

    cv2.setNumThreads(1)

    def reference_read(file: Path) -> np.ndarray:
        return cv2.imread(str(file))

    REFERENCE = f"cv2.imread (OpenCV {cv2.__version__})"
except ImportError:  # pragma: no cover - depends on the environment

    def reference_read(file: Path) -> np.ndarray:
        with Image.open(file) as img:
            return np.asarray(img.convert("RGB"))

    REFERENCE = "PIL Image.open().convert('RGB') (OpenCV is not installed)"


def extract(video: Path) -> Path:
    """The first ``FRAMES`` frames of ``video`` as ``image_00001.jpg``... (cached)."""
    folder = common.CACHE / f"frames_{video.stem}"
    if not (folder / "n_frames").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with av.open(str(video), metadata_errors="ignore") as container:
            for i, frame in enumerate(container.decode(container.streams.video[0])):
                if i == FRAMES:
                    break
                frame.to_image().save(frame_path(folder, i), quality=90)
        (folder / "n_frames").write_text(str(min(i, FRAMES)))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    common.header(f"frame folders: read_frames vs {REFERENCE} (16x4 clips, CPU time)")
    common.one_worker_thread()
    decoder = "simplejpeg (libjpeg-turbo)" if jpeg.simplejpeg is not None else "PIL"
    print(f"vidrec JPEG decoder: {decoder}; reference: {REFERENCE}")
    sources = [common.bench_video()] + [c for c in common.shared_clips() if c.name.startswith("v_")][:1]
    ratios, figures = [], {}
    for video in sources:
        folder = extract(video)
        n = int((folder / "n_frames").read_text())
        work = common.random_clip_indices(n, args.clips, seed=zlib.crc32(folder.name.encode()))
        files = [[frame_path(folder, i) for i in idx] for idx in work]

        def candidate(work=work, folder=folder) -> None:
            for idx in work:
                read_frames(folder, idx)

        def reference(files=files) -> None:
            for clip in files:
                [reference_read(f) for f in clip]

        cmp = common.compare(candidate, reference, args.clips * 16, args.rounds)
        print(f"{folder.name} ({n} JPEGs {Image.open(files[0][0]).size[0]}x{Image.open(files[0][0]).size[1]}): "
              f"vidrec {cmp.rate('candidate'):,.0f} frames/s, reference {cmp.rate('reference'):,.0f} frames/s, "
              f"ratio {cmp.ratio:.2f}")
        figures[folder.name] = {"frames_per_s": cmp.rate("candidate"), "reference_frames_per_s": cmp.rate("reference"),
                                "ratio": cmp.ratio, "decoder": decoder, "reference": REFERENCE}
        ratios.append(cmp.ratio)
    common.finish("frame_folder", min(ratios), TARGET, figures)


if __name__ == "__main__":
    main()

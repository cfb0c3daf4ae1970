"""Shared helpers of the ratio benchmarks: interleaved timing, test videos, machine description, output.

Every benchmark measures vidrec against a reference in the same run and prints ``ratio: X (target >= Y)``
as its last line. Candidate and reference run in alternating rounds on the same work, and the ratio is
the median of the per-round ratios, so load from other processes hits both sides alike. Single-process
benchmarks time CPU seconds of this process (``time.process_time``, threads included): on a shared
machine that is the cost a loader worker pays, and it does not count time spent waiting for a core.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_CLIPS = Path(os.environ.get("VIDREC_SHARED_CLIPS") or REPO.parent / "shared" / "clips")  # env: for a checkout elsewhere
CACHE = Path(os.environ.get("VIDREC_BENCH_CACHE", "/tmp/vidrec-bench"))
sys.path.insert(0, str(REPO / "src"))


def one_worker_thread() -> None:
    """Run torch ops on one thread, as in a DataLoader worker (PyTorch sets 1 there); with more, idle OpenMP
    threads spin and CPU time no longer measures the work."""
    import torch

    torch.set_num_threads(1)


def frame_shape(path: Path) -> tuple[int, int, int]:
    """``(H, W, 3)`` of a video's frames."""
    import av

    with av.open(str(path), metadata_errors="ignore") as c:
        s = c.streams.video[0]
        return s.height, s.width, 3


def clock(kind: str) -> Callable[[], float]:
    """``cpu`` (this process's CPU time, all threads) or ``wall``."""
    return {"cpu": time.process_time, "wall": time.perf_counter}[kind]


@dataclass
class Comparison:
    """Per-round seconds of a candidate and a reference over the same work."""

    candidate: list[float]
    reference: list[float]
    work: int  # items (clips, frames, steps) per round

    @property
    def ratio(self) -> float:
        """Median over rounds of reference time / candidate time (> 1: the candidate is faster)."""
        return statistics.median(r / c for c, r in zip(self.candidate, self.reference))

    def rate(self, side: str) -> float:
        """Items per second of ``candidate`` or ``reference`` (median round)."""
        return self.work / statistics.median(getattr(self, side))


def compare(candidate: Callable[[], object], reference: Callable[[], object], work: int, rounds: int = 5,
            kind: str = "cpu", warmup: bool = True) -> Comparison:
    """Time ``candidate()`` and ``reference()`` (each does ``work`` items) in alternating rounds."""
    now = clock(kind)
    if warmup:
        candidate()
        reference()
    cand, ref = [], []
    for r in range(rounds):
        order = ((candidate, cand), (reference, ref)) if r % 2 == 0 else ((reference, ref), (candidate, cand))
        for fn, out in order:
            t = now()
            fn()
            out.append(now() - t)
    return Comparison(cand, ref, work)


def bench_video(fps: int = 30, seconds: int = 10, gop: int = 60, width: int = 340, height: int = 256) -> Path:
    """A realistic H.264 MP4 (``width × height``, ``seconds`` at ``fps``, keyframe every ``gop`` frames, B-frames),
    rendered once from vidrec's synthetic motion generator and cached under ``$VIDREC_BENCH_CACHE``."""
    from vidrec.data.synthetic import SyntheticSpec, render_video, write_video

    path = CACHE / f"bench_{width}x{height}_{fps}fps_{seconds}s_gop{gop}.mp4"
    if not path.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        spec = SyntheticSpec(frames=fps * seconds, height=height, width=width, fps=fps)
        frames = render_video("move_right", np.random.default_rng(0), spec)
        tmp = path.with_suffix(".tmp.mp4")
        write_video(tmp, frames, fps=fps, options={"g": str(gop), "keyint_min": str(gop)})
        os.replace(tmp, path)
    return path


def shared_clips() -> list[Path]:
    """The real UCF101/HMDB51 clips in ``../shared/clips`` (empty when absent)."""
    return sorted(SHARED_CLIPS.glob("*.avi")) if SHARED_CLIPS.is_dir() else []


def video_info(path: Path) -> str:
    """``codec W×H, N frames, keyframes every ~K`` of a video file (from its packets)."""
    import av

    with av.open(str(path), metadata_errors="ignore") as c:
        s = c.streams.video[0]
        packets = [p.is_keyframe for p in c.demux(s) if p.size]
        codec, w, h, bf = s.codec_context.name, s.width, s.height, s.codec_context.has_b_frames
    n, keys = len(packets), [i for i, k in enumerate(packets) if k]
    gop = round(np.mean(np.diff(keys))) if len(keys) > 1 else n
    return f"{codec} {w}x{h}, {n} packets, keyframe every ~{gop}, B-frames {'yes' if bf else 'no'}"


def machine() -> str:
    """CPU model, cores usable by this process, torch version."""
    model = platform.processor() or "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except Exception:
        pass
    import torch

    return f"{model}, {len(os.sched_getaffinity(0))} cores usable, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}"


def header(title: str) -> None:
    print(f"== {title}")
    print(f"machine: {machine()}")


def finish(name: str, ratio: float, target: float, figures: dict[str, object]) -> None:
    """Write ``$VIDREC_BENCH_CACHE/results/<name>.json`` and print the ratio line (the last line)."""
    out = CACHE / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps({"ratio": ratio, "target": target, **figures}, indent=1, default=str))
    print(f"ratio: {ratio:.2f} (target >= {target:g})")


def finish_per_file(name: str, ratios: dict[str, float], target: float, figures: dict[str, object]) -> None:
    """Print the worst file, then :func:`finish` with the median ratio over files."""
    worst = min(ratios, key=ratios.get)
    print(f"worst file: {worst} {ratios[worst]:.2f}")
    finish(name, median(list(ratios.values())), target, figures)


def fmt_rate(rate: float, unit: str) -> str:
    return f"{rate:,.1f} {unit}/s"


def random_clip_indices(n_frames: int, clips: int, frames: int = 16, rate: int = 4, seed: int = 0) -> list[list[int]]:
    """``clips`` random training clips (vidrec's train sampler) of a video of ``n_frames`` frames."""
    import torch

    from vidrec.data.sampling import train_clip_indices

    g = torch.Generator().manual_seed(seed)
    return [train_clip_indices(n_frames, frames, rate, g).tolist() for _ in range(clips)]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def data_module(dataset: dict, data: dict | None = None):
    """vidrec's VideoDataModule for a dataset config (``vidrec.data.spec.DatasetConfig`` keys), Kinetics statistics."""
    from vidrec.data.datamodule import VideoDataModule
    from vidrec.data.spec import DataSpec
    from vidrec.models.registry import KINETICS_MEAN, KINETICS_STD

    return VideoDataModule(DataSpec.from_config(dataset, data), KINETICS_MEAN, KINETICS_STD)


def options(doc: str, **defaults: int):
    """A benchmark's command line: ``--<name> N`` for each integer default (``items=128`` → ``--items``)."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    for name, value in defaults.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=value)
    return parser.parse_args()

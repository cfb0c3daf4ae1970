"""DataLoader end to end (decode + augment + collate) with N workers vs the model's training step rate.

Two recipes, each measured in this run: the synthetic default (``python train.py``: 64×80 MP4s, 8×2 clips,
crop 56, batch 16, r2plus1d_tiny) and a Kinetics-like one (the 340×256 H.264 benchmark video under 16
names, 16×4 clips, scale 128-160, crop 112, batch 8, r2plus1d_18). Loader: vidrec's ``VideoDataModule``
train loader (N = the usable cores, persistent workers, prefetch 2), clips/s over whole batches after
the first. Model: forward + backward + SGD step on random input of the recipe's shape, all threads.
Both wall time, back to back. The ratio printed per recipe is loader clips/s ÷ training clips/s: above 1
the model is the bottleneck, below 1 the data path is. The Kinetics-like recipe is measured a second time with the
MViTv2 recipe's augmentation on (random resized crop, RandAugment ``rand-m7-n4-mstd0.5-inc1``, random erasing 0.25,
all in the loader workers on uint8 frames) and the loader's rate with it ÷ without it is printed. The last line is
the synthetic default's ratio.

    python benchmarks/dataloader.py [--batches 6]
"""

from __future__ import annotations

import argparse
import os
import time

import common
import torch

from vidrec.data.annotations import make_entry, write_annotation
from vidrec.data.datamodule import available_cpus
from vidrec.data.decoding import count_frames
from vidrec.models import build_model

TARGET = 1.0


def kinetics_like() -> dict:
    """A dataset config over 16 names of the benchmark video (hard links: real files, real decoding)."""
    video = common.bench_video()
    root = common.CACHE / "kinetics_like"
    n = count_frames(video)
    if not (root / "annotation.json").is_file():
        (root / "a").mkdir(parents=True, exist_ok=True)
        for i in range(16):
            target = root / "a" / f"v{i:02d}.mp4"
            if not target.exists():
                os.link(video, target)
        write_annotation(root / "annotation.json", ["a"],
                         {f"v{i:02d}": make_entry("training" if i < 14 else "validation", "a", n) for i in range(16)})
    return {"name": "kinetics_like", "root": str(root), "annotation_path": str(root / "annotation.json"),
            "source": "video", "video_ext": ".mp4", "num_classes": 1, "clip": {"frames": 16, "sample_rate": 4},
            "train": {"crop_size": 112, "scale": [128, 160], "flip": True}, "batch_size": 8}


#: The augmentation of configs/experiment/mvitv2_s_kinetics.yaml, at the Kinetics-like recipe's crop
MVIT_AUGMENT = {"crop": "random_resized", "rand_augment": "rand-m7-n4-mstd0.5-inc1", "erase_prob": 0.25,
                "short_side": 128}


def synthetic_default() -> dict:
    """The synthetic dataset's default shapes (fewer videos, so it is generated in seconds)."""
    return {"name": "synthetic", "data_dir": str(common.CACHE / "data"), "num_classes": 8, "source": "video",
            "video_ext": ".mp4", "synthetic": {"per_class_train": 6, "per_class_val": 1, "per_class_test": 1},
            "clip": {"frames": 8, "sample_rate": 2}, "train": {"crop_size": 56, "scale": [60, 72], "flip": True},
            "batch_size": 16}


def loader_rate(cfg: dict, workers: int, batches: int) -> float:
    dm = common.data_module({**cfg, "num_workers": workers, "loader": {"persistent_workers": True, "prefetch_factor": 2}})
    dm.prepare_data()
    dm.setup("fit")
    loader = dm.train_dataloader()
    clips, start = 0, None
    while clips < batches * cfg["batch_size"]:
        for batch in loader:
            if start is None:  # the first batch pays for the worker start-up
                start = time.perf_counter()
                continue
            clips += len(batch["label"])
            if clips >= batches * cfg["batch_size"]:
                break
    return clips / (time.perf_counter() - start)


def train_rate(model_name: str, shape: tuple[int, ...], steps: int) -> float:
    model = build_model(model_name, 8)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(shape), torch.randint(0, 8, (shape[0],))
    for i in range(steps + 1):
        if i == 1:
            start = time.perf_counter()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad()
    return steps * shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--workers", type=int, default=available_cpus())
    args = parser.parse_args()
    common.header(f"DataLoader end to end ({args.workers} workers) vs training step rate (wall time)")
    kinetics = kinetics_like()
    augmented = {**kinetics, "train": {**kinetics["train"], "augment": MVIT_AUGMENT}}
    recipes = [("kinetics_like", kinetics, "r2plus1d_18", (2, 3, 16, 112, 112), 2),
               ("kinetics_like_randaugment", augmented, "r2plus1d_18", (2, 3, 16, 112, 112), 2),
               ("synthetic_default", synthetic_default(), "r2plus1d_tiny", (16, 3, 8, 56, 56), 4)]
    figures, ratio = {}, 0.0
    for name, cfg, model_name, shape, steps in recipes:
        loader = loader_rate(cfg, args.workers, args.batches)
        model = train_rate(model_name, shape, steps)
        ratio = loader / model
        side = "the model" if ratio >= 1 else "the data path"
        print(f"{name}: loader {loader:.1f} clips/s ({args.workers} workers, {loader / args.workers:.1f} per worker); "
              f"{model_name} training {model:.2f} clips/s (batch {shape[0]}); loader/model {ratio:.2f}: {side} "
              "is the bottleneck")
        figures[name] = {"loader_clips_per_s": loader, "workers": args.workers, "model": model_name,
                         "train_clips_per_s": model, "ratio": ratio}
        if name == "kinetics_like_randaugment":
            cost = loader / figures["kinetics_like"]["loader_clips_per_s"]
            print(f"augmentation on: the loader delivers {cost:.2f}× the clips/s it does without it")
            figures["randaugment_loader_ratio"] = cost
    common.finish("dataloader", ratio, TARGET, figures)


if __name__ == "__main__":
    main()

"""Train a video classifier, then test it (video-level, multi-view). See README.md and configs/train.yaml."""

from vidrec.cli import hydra_main

if __name__ == "__main__":
    hydra_main("train", "vidrec.run:train")

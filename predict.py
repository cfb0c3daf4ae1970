"""Predict the action in one video (K clips × crops, mean softmax): `python predict.py video=<file> ckpt_path=<ckpt>`."""

import sys

import hydra
from omegaconf import DictConfig

from vidrec.cli import run_entry
from vidrec.config import register_configs

register_configs()
# `timeline=true` is short for `timeline.enabled=true` (the node also holds timeline.window, timeline.stride ...)
sys.argv = [f"timeline.enabled={a.split('=', 1)[1]}" if a.split("=", 1)[0] == "timeline" else a for a in sys.argv]


@hydra.main(version_base="1.3", config_path="configs", config_name="predict")
def main(cfg: DictConfig) -> None:
    from vidrec.predict import predict

    run_entry(predict, cfg)


if __name__ == "__main__":
    main()

"""Predict the action in one video (K clips × crops, mean softmax): `python predict.py video=<file> ckpt_path=<ckpt>`."""

import sys

import hydra
from omegaconf import DictConfig

from vidrec.cli import run_entry
from vidrec.config import command_line, register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="configs", config_name="predict")
def main(cfg: DictConfig) -> None:
    from vidrec.predict import predict

    run_entry(predict, cfg)


if __name__ == "__main__":
    sys.argv[1:] = command_line(sys.argv[1:])
    main()

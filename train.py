"""Train a video classifier, then test it (video-level, multi-view). See README.md and configs/train.yaml."""

import sys

import hydra
from omegaconf import DictConfig

from vidrec.cli import run_entry
from vidrec.config import command_line, register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from vidrec.run import train

    metrics = run_entry(train, cfg)
    return metrics.get(cfg.get("optimized_metric")) if metrics else None


if __name__ == "__main__":
    sys.argv[1:] = command_line(sys.argv[1:], default_experiment=True)
    main()

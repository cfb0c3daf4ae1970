"""Multi-view video-level evaluation of a checkpoint: `python eval.py ckpt_path=<ckpt>`."""

import sys

import hydra
from omegaconf import DictConfig

from vidrec.cli import run_entry
from vidrec.config import command_line, register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    from vidrec.run import evaluate

    run_entry(evaluate, cfg)


if __name__ == "__main__":
    sys.argv[1:] = command_line(sys.argv[1:])
    main()

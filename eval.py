"""Multi-view video-level evaluation of a checkpoint: `python eval.py ckpt_path=<ckpt>`."""

import hydra
from omegaconf import DictConfig

from vidrec.cli import run_entry
from vidrec.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    from vidrec.run import evaluate

    run_entry(evaluate, cfg)


if __name__ == "__main__":
    main()

"""Features of every video of a folder or dataset subset: `python extract.py videos=<folder> ckpt_path=<ckpt>`."""

import hydra
from omegaconf import DictConfig

from vidrec.cli import run_entry
from vidrec.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="configs", config_name="extract")
def main(cfg: DictConfig) -> None:
    from vidrec.extract import extract

    run_entry(extract, cfg)


if __name__ == "__main__":
    main()

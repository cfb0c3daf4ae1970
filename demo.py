"""A local Gradio page for a model: `python demo.py ckpt_path=<ckpt>` (needs `pip install -e ".[demo]"`)."""

import hydra
from omegaconf import DictConfig

from vidrec.cli import run_entry
from vidrec.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="configs", config_name="demo")
def main(cfg: DictConfig) -> None:
    from vidrec.demo import serve

    run_entry(serve, cfg)


if __name__ == "__main__":
    main()

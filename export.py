"""Export a model to ONNX or TorchScript with a JSON sidecar: `python export.py ckpt_path=<ckpt> format=onnx`."""

import sys

import hydra
from omegaconf import DictConfig

from vidrec.cli import run_entry
from vidrec.config import command_line, register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="configs", config_name="export")
def main(cfg: DictConfig) -> None:
    from vidrec.export import export_from_config

    run_entry(export_from_config, cfg)


if __name__ == "__main__":
    sys.argv[1:] = command_line(sys.argv[1:])
    main()

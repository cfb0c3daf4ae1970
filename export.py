"""Export a model to ONNX or TorchScript with a JSON sidecar: `python export.py ckpt_path=<ckpt> format=onnx`."""

from vidrec.cli import hydra_main

if __name__ == "__main__":
    hydra_main("export", "vidrec.export:export_from_config")

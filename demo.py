"""A local Gradio page for a model: `python demo.py ckpt_path=<ckpt>` (needs `pip install -e ".[demo]"`)."""

from vidrec.cli import hydra_main

if __name__ == "__main__":
    hydra_main("demo", "vidrec.demo:serve")

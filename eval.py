"""Multi-view video-level evaluation of a checkpoint or of released weights: `python eval.py ckpt_path=<ckpt>`."""

from vidrec.cli import hydra_main

if __name__ == "__main__":
    hydra_main("eval", "vidrec.run:evaluate")

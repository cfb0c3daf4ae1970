"""Features of every video of a folder or dataset subset: `python extract.py videos=<folder> ckpt_path=<ckpt>`."""

from vidrec.cli import hydra_main

if __name__ == "__main__":
    hydra_main("extract", "vidrec.extract:extract")

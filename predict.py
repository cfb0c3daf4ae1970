"""Predict the action in one video (K clips × crops, mean softmax): `python predict.py video=<file> ckpt_path=<ckpt>`."""

from vidrec.cli import hydra_main

if __name__ == "__main__":
    hydra_main("predict", "vidrec.predict:predict")

"""Predict the action in one video (K clips × crops, mean softmax): `python predict.py video=<file> ckpt_path=<ckpt>`;
`timeline=true` slides the model over the whole video instead."""

import sys

from vidrec.cli import hydra_main

if __name__ == "__main__":
    # `timeline=true` is short for `timeline.enabled=true` (the node also holds timeline.window, timeline.stride ...)
    sys.argv = [f"timeline.enabled={a.split('=', 1)[1]}" if a.split("=", 1)[0] == "timeline" else a for a in sys.argv]
    hydra_main("predict", "vidrec.predict:predict")

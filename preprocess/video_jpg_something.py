"""video_jpg_something.py origin_image_dir jpg_dir: Something-Something V1 frames → image_00001.jpg folders (3D-ResNets-PyTorch command; see docs/datasets.md)."""

import sys

from vidrec.preprocess.cli import run
from vidrec.preprocess.something import extract_v1_main

if __name__ == "__main__":
    sys.exit(run(extract_v1_main))

"""video_jpg_something_v2.py webm_dir jpg_dir: Something-Something V2 webm → frame folders (3D-ResNets-PyTorch command; see docs/datasets.md)."""

import sys

from vidrec.preprocess.cli import run
from vidrec.preprocess.something import extract_v2_main

if __name__ == "__main__":
    sys.exit(run(extract_v2_main))

"""video_jpg_something.py origin_image_dir jpg_dir: Something-Something V1 frames → image_00001.jpg folders (3D-ResNets-PyTorch command; see docs/datasets.md)."""

import sys

from vidrec.preprocess.commands import run, something_v1_extract_main

if __name__ == "__main__":
    sys.exit(run(something_v1_extract_main))

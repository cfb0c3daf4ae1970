"""video_jpg_something_v2.py webm_dir jpg_dir: Something-Something V2 webm → frame folders (3D-ResNets-PyTorch command; see docs/datasets.md)."""

import sys

from vidrec.preprocess.commands import run, something_v2_extract_main

if __name__ == "__main__":
    sys.exit(run(something_v2_extract_main))

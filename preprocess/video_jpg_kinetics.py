"""video_jpg_kinetics.py video_dir jpg_dir [--csv CSV]: Kinetics videos → frame folders (3D-ResNets-PyTorch command; see docs/datasets.md)."""

import sys

from vidrec.preprocess.cli import run
from vidrec.preprocess.kinetics import extract_main

if __name__ == "__main__":
    sys.exit(run(extract_main))

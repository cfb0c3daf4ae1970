"""video_jpg_kinetics.py video_dir jpg_dir [--csv CSV]: Kinetics videos → frame folders (3D-ResNets-PyTorch command; see docs/datasets.md)."""

import sys

from vidrec.preprocess.commands import kinetics_extract_main, run

if __name__ == "__main__":
    sys.exit(run(kinetics_extract_main))

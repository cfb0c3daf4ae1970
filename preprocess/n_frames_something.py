"""n_frames_something.py jpg_dir: write n_frames into every jpg_dir/<id>/ (3D-ResNets-PyTorch command; see docs/datasets.md)."""

import sys

from vidrec.preprocess.commands import n_frames_main, run

if __name__ == "__main__":
    sys.exit(run(n_frames_main))

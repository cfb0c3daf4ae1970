"""n_frames_kinetics.py jpg_dir: write n_frames into every jpg_dir/<label>/<video_id>/ (3D-ResNets-PyTorch command; see docs/datasets.md)."""

import sys

from vidrec.preprocess.cli import run
from vidrec.preprocess.nframes import main

if __name__ == "__main__":
    sys.exit(run(main))

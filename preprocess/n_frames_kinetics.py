"""n_frames_kinetics.py jpg_dir: write n_frames into every jpg_dir/<label>/<video_id>/ (seed command; see preprocess/README.md)."""

import sys

from vidrec.preprocess.cli import run
from vidrec.preprocess.nframes import main

if __name__ == "__main__":
    sys.exit(run(main))

"""kinetics_json.py train_csv val_csv test_csv dst_json: crawler CSVs → annotation JSON (3D-ResNets-PyTorch command; see docs/datasets.md)."""

import sys

from vidrec.preprocess.cli import run
from vidrec.preprocess.kinetics import json_main

if __name__ == "__main__":
    sys.exit(run(json_main))

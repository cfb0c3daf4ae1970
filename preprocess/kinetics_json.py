"""kinetics_json.py train_csv val_csv test_csv dst_json: crawler CSVs → annotation JSON (3D-ResNets-PyTorch command; see docs/datasets.md)."""

import sys

from vidrec.preprocess.commands import kinetics_json_main, run

if __name__ == "__main__":
    sys.exit(run(kinetics_json_main))

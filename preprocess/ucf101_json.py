"""ucf101_json.py annotation_dir: ucfTrainTestlist → ucf101_0{1,2,3}.json (3D-ResNets-PyTorch command; see docs/datasets.md)."""

import sys

from vidrec.preprocess.commands import run, ucf101_json_main

if __name__ == "__main__":
    sys.exit(run(ucf101_json_main))

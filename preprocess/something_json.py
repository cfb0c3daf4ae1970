"""something_json.py annotation_dir [--v2]: Something-Something label files → something_v{1,2}.json (3D-ResNets-PyTorch command; see docs/datasets.md)."""

import sys

from vidrec.preprocess.cli import run
from vidrec.preprocess.something import json_main

if __name__ == "__main__":
    sys.exit(run(json_main))

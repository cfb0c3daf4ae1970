"""something_json.py annotation_dir [--v2]: Something-Something label files → something_v{1,2}.json (3D-ResNets-PyTorch command; see docs/datasets.md)."""

import sys

from vidrec.preprocess.commands import run, something_json_main

if __name__ == "__main__":
    sys.exit(run(something_json_main))

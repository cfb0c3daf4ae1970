"""hmdb51_json.py annotation_dir: testTrainMulti_7030_splits → hmdb51_{1,2,3}.json (3D-ResNets-PyTorch command; see docs/datasets.md)."""

import sys

from vidrec.preprocess.commands import hmdb51_json_main, run

if __name__ == "__main__":
    sys.exit(run(hmdb51_json_main))

"""video_jpg_ucf101_hmdb51.py avi_dir jpg_dir: UCF101/HMDB51 class/video.avi → frame folders (3D-ResNets-PyTorch command; see docs/datasets.md)."""

import sys

from vidrec.preprocess.commands import run, ucf101_hmdb51_extract_main

if __name__ == "__main__":
    sys.exit(run(ucf101_hmdb51_extract_main))

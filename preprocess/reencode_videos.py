"""reencode_videos.py SRC DST: re-encode a video tree for training (H.264, short side 160, keyframe every 16 frames, no B-frames; see docs/reencoding.md)."""

import sys

from vidrec.preprocess.commands import reencode_main, run

if __name__ == "__main__":
    sys.exit(run(reencode_main))

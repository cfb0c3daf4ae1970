"""Image reading for frame folders: libjpeg-turbo through simplejpeg when installed, PIL otherwise.

simplejpeg decodes a frame ~3× faster than ``PIL.Image.open(...).convert("RGB")`` and ~1.3× faster than
``cv2.imread`` here (benchmarks/frame_folder.py), with the same pixels as PIL (same libjpeg-turbo IDCT and
upsampling). Anything simplejpeg refuses (CMYK, PNG under a ``.jpg`` name, a recoverable corruption) goes
to PIL, so the fast path never changes what reads and what fails.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

try:  # optional fast path
    import simplejpeg
except ImportError:  # pragma: no cover - depends on the environment
    simplejpeg = None

#: JPEG colour spaces whose RGB conversion is the same in libjpeg-turbo and PIL (CMYK/YCCK differ: PIL reads them).
_FAST_COLORSPACES = ("YCbCr", "Gray", "RGB")


def read_rgb(path: str | os.PathLike, out: np.ndarray | None = None, fast: bool = True) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of an image file; raises what ``open``/PIL raise. ``fast=False`` forces PIL.

    With ``out`` (a writable ``(H, W, 3)`` uint8 array) a JPEG of that size is decoded into it and a view of
    ``out`` is returned: no allocation per frame, no copy into the clip (a fresh 250 kB array per frame costs
    page faults that made a 16-frame read ~2× slower). Other images come back as a new array.
    """
    if fast and simplejpeg is not None:
        with open(path, "rb") as f:
            data = f.read()
        try:
            height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
            if colorspace in _FAST_COLORSPACES:
                fits = out is not None and out.shape == (height, width, 3)
                return simplejpeg.decode_jpeg(data, colorspace="RGB", buffer=out if fits else None)
        except ValueError:
            pass
        with Image.open(io.BytesIO(data)) as img:
            return np.asarray(img.convert("RGB"))
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))

"""Run a vidrec ONNX export on one video with nothing but its sidecar: the frames, resize, crops and normalisation
the sidecar's protocol describes, then the mean of the softmax over the views — what ``predict.py`` computes.

    python examples/onnx_predict.py model.onnx video.mp4

Needs onnxruntime, PyAV, numpy and torch (for the resize filter the sidecar names); not vidrec. Covers the
``uniform``, ``offset`` and ``whole`` clip selections.
"""

import json
import math
import sys

import av
import numpy as np
import onnxruntime
import torch
import torch.nn.functional as F


def clip_indices(n: int, p: dict) -> list[list[int]]:
    """Frame indices of every test clip (protocol keys clip_frames, sample_rate, clip_selection, num_clips)."""
    frames, rate, k = p["clip_frames"], p["sample_rate"], p["num_clips"]
    if p["clip_selection"] == "whole":
        return [list(range(0, n, rate))]
    room = max(n - ((frames - 1) * rate + 1), 0)
    if p["clip_selection"] == "offset":
        starts = [n * i // k for i in range(k)]
    else:  # uniform: first clip at frame 0, last ending on the last frame
        starts = [room // 2] if k == 1 else [math.floor(i * room / (k - 1) + 0.5) for i in range(k)]
    return [[(s + i * rate) % n for i in range(frames)] for s in starts]


def views(clip: np.ndarray, p: dict) -> list[torch.Tensor]:
    """uint8 (T, H, W, 3) → the crops of one clip, uint8 (3, T, crop, crop)."""
    x = torch.from_numpy(clip).permute(0, 3, 1, 2)  # T, C, H, W (channels-last memory)
    h, w = x.shape[-2:]
    if p["resize"]:
        x = F.interpolate(x.float(), size=p["resize"], mode="bilinear", align_corners=False).round().clamp(0, 255)
    elif min(h, w) != p["scale"]:
        s = p["scale"]
        size = (s, max(s, round(w * s / h))) if h <= w else (max(s, round(h * s / w)), s)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=s < min(h, w))
    h, w, c = x.shape[-2], x.shape[-1], p["crop_size"]
    if p["num_crops"] == 1:
        boxes = [(round((h - c) / 2), round((w - c) / 2))]
    elif w >= h:
        boxes = [((h - c) // 2, left) for left in (0, (w - c) // 2, w - c)]
    else:
        boxes = [(top, (w - c) // 2) for top in (0, (h - c) // 2, h - c)]
    return [x[..., top : top + c, left : left + c].to(torch.uint8).transpose(0, 1) for top, left in boxes]


def main(model_path: str, video_path: str) -> list[tuple[str, float]]:
    sidecar = json.load(open(model_path + ".json"))
    p = sidecar["protocol"]
    with av.open(video_path) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    mean = torch.tensor(sidecar["mean"]).view(3, 1, 1, 1)
    std = torch.tensor(sidecar["std"]).view(3, 1, 1, 1)
    probs = []
    for idx in clip_indices(len(frames), p):
        for view in views(frames[idx], p):
            x = ((view.float() / 255 - mean) / std)[None].numpy()
            logits = torch.from_numpy(session.run(None, {sidecar["input"]["name"]: x})[0])
            probs.append(logits.softmax(-1)[0])
    score = torch.stack(probs).mean(0)
    top = score.topk(min(5, len(score)))
    return [(sidecar["labels"][i], float(v)) for v, i in zip(top.values, top.indices)]


if __name__ == "__main__":
    for label, prob in main(*sys.argv[1:3]):
        print(f"{prob:.4f}  {label}")

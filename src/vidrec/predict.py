"""Single-video prediction with the multi-view test protocol: the mean of the softmax over a video's K clips ×
crops views, exactly as the test stage of ``eval.py`` scores a video."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from vidrec.data.spec import describe_views
from vidrec.errors import DecodeError
from vidrec.inference import InferenceModel, load_inference_model, pick_device, video_views
from vidrec.scoring import video_scores
from vidrec.timeline import timeline_outputs


def predict_video(model: InferenceModel, video: str | Path, topk: int = 5, device: str = "auto",
                  decoder: str = "auto", progress: bool = False) -> dict[str, Any]:
    """Top-k classes of one video: mean of the softmax over its K clips × crops views."""
    dev = pick_device(device)
    views, num_frames = video_views(model, video, decoder)
    net = model.net.to(dev).eval()
    with torch.inference_mode(), model.autocast(dev):
        probs = video_scores(net, model.network_input(views[None].to(dev)), model.spec.dataset.test.views_per_batch,
                             progress)[0].cpu()
    k = min(int(topk), probs.numel())
    top_p, top_i = probs.topk(k)
    return {
        "video": str(video),
        "num_frames": num_frames,
        "model": model.name,
        "weights": model.source,
        "views": int(views.shape[0]),
        "protocol": model.protocol(),
        "top": [{"rank": r + 1, "label": model.labels[int(i)], "index": int(i), "prob": round(float(p), 6)}
                for r, (p, i) in enumerate(zip(top_p, top_i))],
    }


def format_prediction(result: dict[str, Any]) -> str:
    """The human-readable table printed by predict.py."""
    p = result["protocol"]
    width = max(len(t["label"]) for t in result["top"])
    lines = [f"{result['video']} ({result['num_frames']} frames): {result['model']} from {result['weights']}",
             f"{describe_views(p, result['views'], result['num_frames'])}, {p['crop_size']}px, mean softmax"]
    lines += [f"  {t['rank']}. {t['label']:<{width}}  {t['prob']:.4f}" for t in result["top"]]
    return "\n".join(lines)


def format_timeline(result: dict[str, Any]) -> str:
    """The segments of a timeline (runs of one top-1 class) and its files, as predict.py prints them."""
    lines = [f"{result['video']}: {result['windows']} windows of {result['window_frames']} frames "
             f"({result['num_frames']} frames at {result['fps']:.2f} fps)"]
    lines += [f"  {s['start_s']:8.2f}s - {s['end_s']:8.2f}s  {s['label']}" for s in result["segments"]]
    lines += [f"{kind}: {path}" for kind, path in result["files"].items()]
    return "\n".join(lines)


def predict(dcfg: DictConfig) -> dict[str, Any]:
    """What ``predict.py`` does: load, predict one video, print the table (or one JSON object); with
    ``timeline.enabled``, the timeline of the whole video and its files instead."""
    model = load_inference_model(dcfg)
    tcfg = dcfg.get("timeline") or {}
    if tcfg.get("enabled"):
        video = Path(str(dcfg.video))
        if not video.exists():
            raise DecodeError(f"video={video}: no such video file or frame folder")
        out_dir = Path(str(tcfg.get("out_dir") or f"timeline_{video.stem}"))
        result = timeline_outputs(model, video, out_dir, tcfg.get("window"), tcfg.get("stride"),
                                  str(pick_device(str(dcfg.get("device", "auto")))), int(dcfg.get("topk", 5)),
                                  bool(tcfg.get("video")))
        print(json.dumps(result) if dcfg.get("json") else format_timeline(result), flush=True)
        return result
    setting = str(dcfg.get("progress", "auto")).lower()
    progress = sys.stderr.isatty() if setting == "auto" else setting == "true"
    result = predict_video(model, dcfg.video, int(dcfg.get("topk", 5)), str(dcfg.get("device", "auto")),
                           str((dcfg.get("data") or {}).get("decoder") or "auto"), progress)
    print(json.dumps(result) if dcfg.get("json") else format_prediction(result), flush=True)
    return result

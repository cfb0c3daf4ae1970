"""A local Gradio page (``python demo.py ckpt_path=<ckpt>``): drop or pick a video, see its top-5 under the
model's test protocol, and the timeline of a longer video. Binds to 127.0.0.1 by default; refuses files above
``demo.max_mb`` and files that are not videos; writes only inside its own temporary folder.

Needs the ``demo`` extra (``pip install -e ".[demo]"``: gradio).
"""

from __future__ import annotations

import faulthandler
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

import av
from omegaconf import DictConfig

from vidrec.data.layout import VIDEO_EXTENSIONS
from vidrec.data.spec import describe_views
from vidrec.data.stream import video_fps
from vidrec.errors import ConfigError, VidrecError
from vidrec.inference import InferenceModel, load_inference_model, pick_device
from vidrec.predict import predict_video
from vidrec.timeline import timeline_outputs

log = logging.getLogger(__name__)


def check_upload(path: str | Path, max_mb: float) -> Path:
    """The uploaded file, if it is a video of at most ``max_mb`` MB; else a :class:`ConfigError` saying why."""
    path = Path(path)
    size_mb = path.stat().st_size / 1e6
    if size_mb > max_mb:
        raise ConfigError(f"{path.name} is {size_mb:.1f} MB, above the limit of {max_mb:g} MB (demo.max_mb); "
                          "upload a shorter clip or start the demo with a larger demo.max_mb")
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise ConfigError(f"{path.name} is not a video file; upload one of {' '.join(VIDEO_EXTENSIONS)}")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise ConfigError(f"{path.name} has no video stream; upload a video file")
    except av.FFmpegError:
        raise ConfigError(f"{path.name} is not a readable video; upload a video file "
                          f"({' '.join(VIDEO_EXTENSIONS)})") from None
    return path


def protocol_text(model: InferenceModel, result: dict[str, Any]) -> str:
    """The protocol line shown under the scores."""
    p = result["protocol"]
    return (f"**{model.name}** from `{Path(model.source).name}` — "
            f"{describe_views(p, result['views'], result['num_frames'])} at {p['crop_size']} px, "
            f"mean softmax over the views; {result['num_frames']} frames")


class Demo:
    """The page's model and its analysis of one upload."""

    def __init__(self, model: InferenceModel, workdir: Path, device: str, max_mb: float, timeline_min_s: float,
                 topk: int = 5):
        self.model, self.workdir, self.device = model, workdir, device
        self.max_mb, self.timeline_min_s, self.topk = max_mb, timeline_min_s, topk

    def analyse(self, upload: str | None) -> tuple[dict[str, float] | None, str | None, str]:
        """(top-k scores for the bars, the timeline PNG or None, the status / protocol text)."""
        if not upload:
            return None, None, "Drop a video file above, or pick one."
        try:
            path = check_upload(upload, self.max_mb)
            result = predict_video(self.model, path, self.topk, self.device)
            picture = None
            seconds = result["num_frames"] / (video_fps(path) or 25.0)
            if seconds >= self.timeline_min_s:
                out = self.workdir / uuid.uuid4().hex
                picture = timeline_outputs(self.model, path, out, None, None, self.device)["files"]["png"]
        except VidrecError as exc:
            return None, None, f"**error:** {exc}"
        top = result["top"]
        text = f"Top-1: **{top[0]['label']}** ({top[0]['prob']:.3f})\n\n{protocol_text(self.model, result)}"
        if picture is None:
            text += f"\n\n(no timeline: the video is shorter than {self.timeline_min_s:g} s, demo.timeline_min_s)"
        return {t["label"]: t["prob"] for t in top}, picture, text


def build_app(demo: Demo):
    """The Gradio Blocks page of ``demo``."""
    import gradio as gr

    with gr.Blocks(title="vidrec demo") as app:
        gr.Markdown(f"## vidrec — action recognition\n{demo.model.name} from `{Path(demo.model.source).name}`, "
                    f"{len(demo.model.labels)} classes. Videos up to {demo.max_mb:g} MB.")
        with gr.Row():
            with gr.Column():
                upload = gr.File(label="video", file_types=list(VIDEO_EXTENSIONS), type="filepath",
                                 elem_id="upload")
                button = gr.Button("Recognise", variant="primary", elem_id="run")
            with gr.Column():
                scores = gr.Label(num_top_classes=demo.topk, label=f"top-{demo.topk}", elem_id="scores")
                status = gr.Markdown(elem_id="status")
        timeline = gr.Image(label="timeline (longer videos)", type="filepath", elem_id="timeline")
        for event in (upload.upload, button.click):
            event(demo.analyse, inputs=upload, outputs=[scores, timeline, status])
    return app


CLOSE_TIMEOUT_S = 10  # how long the page's server may take to close on Ctrl-C / SIGTERM
EXIT_TIMEOUT_S = 30  # after a signal, the process ends within this, wherever its main thread is stuck


def serve(dcfg: DictConfig) -> None:
    """What ``demo.py`` does: load the model, start the page, block until interrupted."""
    cfg = dcfg.demo
    workdir = Path(tempfile.mkdtemp(prefix="vidrec-demo-"))
    os.environ["GRADIO_TEMP_DIR"] = str(workdir / "uploads")  # gradio's own copies of the uploads go there too
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("MPLCONFIGDIR", str(workdir / "matplotlib"))  # matplotlib's font cache, not ~/.cache
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ConfigError('demo.py needs gradio: pip install -e ".[demo]"') from None
    model = load_inference_model(dcfg)
    demo = Demo(model, workdir, str(pick_device(str(dcfg.get("device", "auto")))), float(cfg.max_mb),
                float(cfg.timeline_min_s), int(dcfg.get("topk", 5)))
    app = build_app(demo)
    print(f"vidrec demo on http://{cfg.host}:{cfg.port} (files in {workdir}, removed on exit)", flush=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM ends the page as Ctrl-C does
    watchdog = _ExitWatchdog(workdir)
    try:
        app.launch(server_name=str(cfg.host), server_port=int(cfg.port), max_file_size=f"{int(cfg.max_mb)}mb",
                   share=False, quiet=True, show_error=True, footer_links=[])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        # a Ctrl-C that lands while gradio is still starting can leave its close() waiting on a server thread:
        # bounded, so the folder is removed and the process ends either way
        closing = threading.Thread(target=app.close, daemon=True)
        closing.start()
        closing.join(CLOSE_TIMEOUT_S)
        _remove(workdir)
        watchdog.disarm()


def _remove(workdir: Path) -> None:
    shutil.rmtree(workdir, ignore_errors=True)  # users' uploads, timelines, caches
    print(f"vidrec demo stopped; removed {workdir}", flush=True)


class _ExitWatchdog:
    """Ends the process ``EXIT_TIMEOUT_S`` after a Ctrl-C or SIGTERM if the main thread has not finished closing by
    then: it prints where every thread stands, removes the demo's folder and exits with 130. Woken through the
    interpreter's signal wakeup fd, so it runs even where the main thread is blocked and cannot run handlers."""

    def __init__(self, workdir: Path):
        self.workdir, self.stopped = workdir, threading.Event()
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.write_fd, False)
        self.previous_fd = signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        threading.Thread(target=self._watch, name="vidrec-demo-exit", daemon=True).start()

    def _watch(self) -> None:
        try:
            signalled = os.read(self.read_fd, 1)  # a signal's number, or end-of-file once disarmed
        except OSError:
            return
        finally:
            os.close(self.read_fd)
        if not signalled or self.stopped.wait(EXIT_TIMEOUT_S):
            return
        print(f"vidrec demo: not closed {EXIT_TIMEOUT_S} s after the signal; where it stands:", flush=True)
        faulthandler.dump_traceback(file=sys.stdout, all_threads=True)
        _remove(self.workdir)
        os._exit(130)

    def disarm(self) -> None:
        """The main thread has closed: the watcher returns, whether a signal woke it or not."""
        self.stopped.set()
        signal.set_wakeup_fd(self.previous_fd)
        os.close(self.write_fd)  # the watcher reads end-of-file and returns


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt

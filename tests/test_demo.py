"""demo.py as a user meets it: the app started as a process on a free local port, driven by headless Chromium
(the system's /usr/bin/chromium through Playwright; no browser download), a real clip uploaded, the label read
from the page. Set VIDREC_DEMO_SCREENSHOT=<png> to keep the page's screenshot (docs/img/demo.png)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, ctrl_c_reaches_it, run_entry
from vidrec.errors import ConfigError

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def test_check_upload_refuses_big_and_non_video_files(tmp_path, shared_clips):
    from vidrec.demo import check_upload

    clip = next(shared_clips.glob("*.avi"))
    assert check_upload(clip, 100) == clip
    with pytest.raises(ConfigError, match=r"above the limit of 0.01 MB \(demo.max_mb\)"):
        check_upload(clip, 0.01)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ConfigError, match="notes.txt is not a video file"):
        check_upload(text, 100)
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00" * 4096)
    with pytest.raises(ConfigError, match="fake.mp4 is not a readable video"):
        check_upload(fake, 100)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"demo.py exited ({proc.returncode}):\n{proc.stdout.read()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"demo.py did not answer on {url} within {timeout} s")


def start_demo(run: Path, port: int, tmp_path: Path) -> subprocess.Popen:
    """demo.py on ``port`` with its temporary folder under ``tmp_path/tmp``."""
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    return subprocess.Popen(
        [sys.executable, str(REPO / "demo.py"), f"ckpt_path={run}", f"demo.port={port}", "demo.timeline_min_s=1",
         "device=cpu"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=ctrl_c_reaches_it,
        env={**os.environ, "OMP_NUM_THREADS": "1", "HOME": str(home), "MPLCONFIGDIR": str(home / "mpl"),
             "TMPDIR": str(tmp)})


def test_ctrl_c_removes_the_demo_folder(trained, tmp_path):
    pytest.importorskip("gradio", reason="the demo extra is not installed (pip install -e '.[demo]')")
    run, _ = trained
    port = _free_port()
    proc = start_demo(run, port, tmp_path)
    try:
        _wait_up(f"http://127.0.0.1:{port}/", proc)
        assert list((tmp_path / "tmp").glob("vidrec-demo-*"))
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        out = proc.communicate(timeout=120)[0]  # closes in about a second; generous for a loaded machine
    assert "removed" in out and not list((tmp_path / "tmp").glob("vidrec-demo-*")), out[-2000:]


WEDGED = """
import signal, sys, time
from pathlib import Path
from vidrec import demo
demo.EXIT_TIMEOUT_S = 1
signal.signal(signal.SIGINT, lambda signum, frame: None)  # a close that never ends: the Ctrl-C changes nothing
watchdog = demo._ExitWatchdog(Path(sys.argv[1]))
print("ready", flush=True)
while True:
    time.sleep(60)
"""


def test_a_close_that_hangs_still_ends_the_process_and_removes_the_folder(tmp_path):
    folder = tmp_path / "vidrec-demo-x"
    (folder / "uploads").mkdir(parents=True)
    (folder / "uploads" / "user.mp4").write_bytes(b"video")
    proc = subprocess.Popen([sys.executable, "-c", WEDGED, str(folder)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=ctrl_c_reaches_it)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130 and not folder.exists(), out
    assert "not closed 1 s after the signal; where it stands:" in out
    assert 'File "<string>", line 10 in <module>' in out  # the wedged main thread's line: the sleep
    assert f"vidrec demo stopped; removed {folder}" in out


def test_demo_page_predicts_an_uploaded_clip(trained, shared_clips, tmp_path):
    pytest.importorskip("gradio", reason="the demo extra is not installed (pip install -e '.[demo]')")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    if not CHROMIUM.is_file():
        pytest.skip("no /usr/bin/chromium (apt-get install -y chromium) and the test downloads no browser")
    run, _ = trained
    clip = shared_clips / "v_SoccerJuggling_g23_c01.avi"
    expected = json.loads(run_entry("predict.py", f"video={clip}", f"ckpt_path={run}", "json=true").stdout)
    port = _free_port()
    proc = start_demo(run, port, tmp_path)
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_up(url, proc)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url)
            page.locator("#upload input[type=file]").set_input_files(str(clip))
            page.locator("#status").get_by_text("Top-1").wait_for(timeout=240_000)
            page.locator("#timeline img").wait_for(timeout=60_000)
            status = page.locator("#status").inner_text()
            scores = page.locator("#scores").inner_text()
            shot = tmp_path / "demo.png"
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
    finally:
        proc.terminate()  # SIGTERM
        out = proc.communicate(timeout=60)[0]
    top1 = expected["top"][0]["label"]
    assert f"Top-1: {top1} ({expected['top'][0]['prob']:.3f})" in status
    assert "2 clips × 3 crops = 6 views" in status
    assert "removed" in out and not list((tmp_path / "tmp").glob("vidrec-demo-*"))  # the uploads went with it
    assert all(t["label"] in scores for t in expected["top"])
    assert shot.stat().st_size > 10_000
    if os.environ.get("VIDREC_DEMO_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["VIDREC_DEMO_SCREENSHOT"])

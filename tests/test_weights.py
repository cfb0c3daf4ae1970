"""python -m vidrec.weights: the registry's table, one entry, and downloads from a local HTTP server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import pytest
import torch

from vidrec.errors import VidrecError
from vidrec.models import build_model
from vidrec.models.weights.entries import get_weights
from vidrec.weights import download, expected_hash, main


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with HTTP Range support (a partial download resumes), quietly; ``cut`` stops a reply early."""

    cut: int | None = None
    ranges: list = []

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        RangeHandler.ranges.append(self.headers.get("Range"))
        path = Path(self.translate_path(self.path))
        data = path.read_bytes()
        start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
        body = data[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: self.cut] if self.cut else body)


@pytest.fixture
def server(tmp_path):
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(RangeHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    RangeHandler.cut = None


def test_list_and_show(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "`r2plus1d_18.tv_kinetics400`" in out and "`i3d_nl_r50_32x2.nlnet_kinetics400`" in out
    assert main(["show", "resnet3d_18.kenshohara2018_kinetics400"]) == 0
    out = capsys.readouterr().out
    assert "no std division" in out and "main.py@0f8fb2e" in out and "mean of top-1 and top-5" in out


def test_download_resumes_checks_the_hash_and_renames(server, tmp_path):
    folder, base = server
    name = "r3d_18.tv_kinetics400"
    entry = get_weights(name)
    state = build_model("r3d_tiny", 400).state_dict()  # any bytes in the released format will do
    torch.save(state, folder / "payload.pth")
    payload = (folder / "payload.pth").read_bytes()
    assert expected_hash(entry) == "b3b3357e"  # torch.hub's prefix in the file name
    with pytest.raises(VidrecError, match=r"SHA-256 .* does not match the published b3b3357e"):
        download(name, tmp_path / "cache", url=f"{base}/payload.pth", progress=False)
    assert not list((tmp_path / "cache").iterdir())  # the bad file was not kept
    # a file whose hash fits: the released name's prefix is made to match by serving that exact content
    digest = hashlib.sha256(payload).hexdigest()
    object.__setattr__(entry, "sha256", digest)
    try:
        RangeHandler.cut = len(payload) // 3  # the first reply breaks off
        with pytest.raises(VidrecError, match=rf"stopped at {len(payload) // 3} of {len(payload)} bytes; run the same"):
            download(name, tmp_path / "cache", url=f"{base}/payload.pth", progress=False)
        part = tmp_path / "cache" / f"{entry.files[0]}.part"
        assert part.read_bytes() == payload[: len(payload) // 3] and not (tmp_path / "cache" / entry.files[0]).exists()
        RangeHandler.cut = None
        path = download(name, tmp_path / "cache", url=f"{base}/payload.pth", progress=False)  # resumes (Range)
    finally:
        object.__setattr__(entry, "sha256", None)
    assert path.name == entry.files[0] and path.read_bytes() == payload and not part.exists()
    assert RangeHandler.ranges[-1] == f"bytes={len(payload) // 3}-"  # only the rest was fetched


def test_entries_without_a_link_say_where_to_get_the_file(tmp_path):
    with pytest.raises(VidrecError, match="publish no direct link; get resnet-18-kinetics.pth from Google Drive"):
        download("resnet3d_18.kenshohara2018_kinetics400", tmp_path)

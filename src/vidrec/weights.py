"""The registry of released checkpoints on the command line:

    python -m vidrec.weights list                      # every entry, its protocol and published figure
    python -m vidrec.weights show r2plus1d_18.tv_kinetics400
    python -m vidrec.weights download r2plus1d_18.tv_kinetics400 [--dir DIR] [--url URL]

``download`` fetches an entry with a direct link into the cache (``--dir``, else ``$VIDREC_WEIGHTS``, else
``~/.cache/vidrec/weights``) with a progress bar; an interrupted download resumes where it stopped (HTTP
Range); the file is checked against the hash its authors publish (torch.hub's 8-hex SHA-256 prefix in the
file name, where there is one) and renamed into place only when complete. Entries whose authors publish no
direct link say where to get the file.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from vidrec.errors import VidrecError, run_command
from vidrec.models.weights.entries import WeightsEntry, get_weights, list_weights

_HASH_PREFIX = re.compile(r"-([0-9a-f]{8,64})\.[a-z]+$")
CHUNK = 1 << 20


def cache_dir(given: str | os.PathLike | None = None) -> Path:
    return Path(given or os.environ.get("VIDREC_WEIGHTS") or Path.home() / ".cache" / "vidrec" / "weights")


def expected_hash(entry: WeightsEntry) -> str | None:
    """The published SHA-256 (or its prefix, from a torch.hub-style file name), else None."""
    if entry.sha256:
        return entry.sha256
    match = _HASH_PREFIX.search(entry.files[0])
    return match[1] if match else None


def _protocol(e: WeightsEntry) -> str:
    resize = f"{e.test_resize[0]}×{e.test_resize[1]}" if isinstance(e.test_resize, tuple) else f"short side {e.test_resize}"
    clips = {"uniform": f"{e.num_clips} clips", "offset": f"{e.num_clips} clips (offset)", "whole": "whole video",
             "stride": f"every {e.clip_stride} frames", "dense": f"{e.num_clips} dense clips",
             "segments": f"{e.num_clips} segment sampling{'s' * (e.num_clips > 1)} of {e.frames}"}[e.clip_selection]
    head = ", fully conv" if e.head == "fully_conv" else ""
    return f"{e.frames}×{e.sample_rate}, {resize}, crop {e.crop_size}, {clips} × {e.num_crops} crops{head}"


def _published(e: WeightsEntry) -> str:
    p = e.published
    if p is None:
        return "—"
    if p.metric != "top1/top5":
        return f"{p.value} ({p.metric}, {p.split})"
    return f"{p.top1} / {p.top5} ({p.split})"


def table() -> str:
    """Every entry as a Markdown table."""
    rows = ["| entry | format | classes | input (mean / std on [0, 1]) | test protocol | published top-1 / top-5 | download |",
            "|---|---|---|---|---|---|---|"]
    for name in list_weights():
        e = get_weights(name)
        stats = f"{[round(v, 4) for v in e.mean]} / {[round(v, 4) for v in e.std]}"
        rows.append(f"| `{name}` | `{e.format}` | {e.classes} | {stats} | {_protocol(e)} | {_published(e)} | "
                    f"{'direct' if e.url else 'by hand'} |")
    return "\n".join(rows)


def show(name: str) -> str:
    e = get_weights(name)
    p = e.published
    lines = [f"{e.name}: network {e.model}, format {e.format}, file {', '.join(e.files)}",
             f"  get it:     {e.where}",
             f"  hash:       {expected_hash(e) or 'none published'}",
             f"  classes:    {e.classes} ({e.fc_classes} outputs; names: {e.class_list})",
             f"  input:      {e.input_note}; {e.channel_order}; mean {list(e.mean)}, std {list(e.std)} on [0, 1] pixels",
             f"  train:      {e.train_resize}",
             "  frame rate: " + (f"{e.fps:g} fps ({e.fps_rule} rule: vidrec.data.sampling.FPS_RULES)" if e.fps else
                                  "every source frame (frame-based sampling)"),
             f"  test:       {_protocol(e)}",
             f"  published:  {_published(e)}" + (f" — {p.protocol}; {p.source}" if p else "")]
    lines += ["  sources:"] + [f"    {setting}: {where}" for setting, where in e.sources.items()]
    return "\n".join(lines)


def download(name: str, folder: str | os.PathLike | None = None, url: str | None = None,
             progress: bool | None = None) -> Path:
    """Fetch an entry's file into ``folder`` (resuming a partial download), check its hash, rename it into place."""
    from tqdm import tqdm

    entry = get_weights(name)
    url = url or entry.url
    if not url:
        raise VidrecError(f"{name}: its authors publish no direct link; get {entry.files[0]} from {entry.where}, then "
                          f"pass it as model.pretrained=<file>")
    target = cache_dir(folder) / entry.files[0]
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the partial file is complete already
            response = None
        else:
            raise VidrecError(f"{name}: downloading {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise VidrecError(f"{name}: downloading {url} failed: {exc}; run the command again to resume") from None
    if response is not None:
        resumed = have and response.status == 206
        total = int(response.headers.get("Content-Length") or 0) + (have if resumed else 0)
        with response, part.open("ab" if resumed else "wb") as out, tqdm(
                total=total or None, initial=have if resumed else 0, unit="B", unit_scale=True,
                desc=entry.files[0], disable=None if progress is None else not progress) as bar:
            try:
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    bar.update(len(block))
            except (OSError, http.client.HTTPException):
                pass  # a broken connection: what arrived is kept for the next try
        if total and part.stat().st_size < total:
            raise VidrecError(f"{name}: the download stopped at {part.stat().st_size} of {total} bytes; run the same "
                              "command again to resume")
    digest = _sha256(part)
    expected = expected_hash(entry)
    if expected and not digest.startswith(expected):
        part.unlink()
        raise VidrecError(f"{name}: {url} gave a file whose SHA-256 {digest[:16]}… does not match the published "
                          f"{expected}; it was deleted — download it again")
    os.replace(part, target)
    return target


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Released checkpoints vidrec knows: their protocols and files.")
    sub = parser.add_subparsers(dest="command", required=True)
    list_p = sub.add_parser("list", help="every entry as a table")
    list_p.add_argument("--out", help="also put the table into this Markdown page, between its weights-table markers")
    show_p = sub.add_parser("show", help="one entry, with the authors' file and line of each setting")
    show_p.add_argument("name")
    get_p = sub.add_parser("download", help="fetch an entry's file into the cache")
    get_p.add_argument("name")
    get_p.add_argument("--dir", help="cache folder (default $VIDREC_WEIGHTS or ~/.cache/vidrec/weights)")
    get_p.add_argument("--url", help="fetch from this address instead (a mirror)")
    args = parser.parse_args(argv)

    def action() -> None:
        if args.command == "list":
            print(table())
            if args.out:
                from vidrec.models.summary import write_table

                write_table(Path(args.out), table() + "\n", "<!-- weights-table -->", "<!-- /weights-table -->")
        elif args.command == "show":
            print(show(args.name))
        else:
            path = download(args.name, args.dir, args.url)
            from vidrec.config import model_overrides

            print(f"{path}\nuse it: python eval.py {model_overrides(get_weights(args.name).model)} "
                  f"model.pretrained={path} dataset=<name>")

    return run_command(action)


if __name__ == "__main__":
    sys.exit(main())

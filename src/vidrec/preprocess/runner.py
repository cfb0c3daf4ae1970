"""Running preprocessing jobs: skip finished outputs, fan out to worker processes, collect failures.

The work function defaults to frame extraction (:func:`vidrec.preprocess.frames.extract`); re-encoding
(:mod:`vidrec.preprocess.reencode`) passes its own, with an options dataclass that also has ``threads``.

A failing video is recorded (``failures.csv``: video, reason) and the run goes on, unless ``strict``.
Workers die with their parent (Linux), so a killed run leaves no process still writing frames.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import multiprocessing
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidrec.data import isolation
from vidrec.errors import DecodeError, VidrecError
from vidrec.preprocess.frames import Extracted, Job, Options, extract


@dataclass
class Report:
    """What a :func:`run_jobs` call did."""

    failures: list[tuple[str, str]] = field(default_factory=list)  # (video, reason)
    segment_rules: Counter[str] = field(default_factory=Counter)  # "trimmed: <rule>" → videos extracted so
    skipped: int = 0  # already done
    extracted: int = 0
    frames: int = 0
    seconds: float = 0.0

    def segment_summary(self) -> str:
        """``segments: N trimmed (kept whole), M untrimmed (cut); rules: ...``, or ``""`` with no segment."""
        if not self.segment_rules:
            return ""
        kinds = Counter({kind: 0 for kind in ("trimmed", "untrimmed")})
        for rule, count in self.segment_rules.items():
            kinds[rule.split(":")[0]] += count
        rules = ", ".join(f"{count} {rule}" for rule, count in sorted(self.segment_rules.items()))
        return (f"segments: {kinds['trimmed']} trimmed (kept whole), {kinds['untrimmed']} untrimmed (cut to the "
                f"segment); rules: {rules}")




def _reason(exc: BaseException, source: Path) -> str:
    """One line saying why, without the file name (the failure list names the file)."""
    text = " ".join(str(exc).split()).replace(f"{source}: ", "").replace(f": '{source}'", "")
    return text if isinstance(exc, VidrecError) else f"{type(exc).__name__}: {text}"


Work = Callable[[Job, Any], Extracted]


def _work(item: tuple[Job, Any, Work]) -> tuple[Job, Extracted, str]:
    job, opts, work = item
    try:
        # in a supervised child: a decoder crash fails this video only
        return job, isolation.call(work, job, opts, timeout=math.inf, path=job.source), ""
    except Exception as exc:  # reported in the failure list, never a crash of the whole run
        return job, Extracted(0), _reason(exc, job.source)


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates the pool
    try:  # Linux: die with the parent, so a killed run leaves no orphan still writing frames
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _pending(jobs: Sequence[Job], report: Report, done: Callable[[Path], bool]) -> list[Job]:
    seen: set[Path] = set()
    todo = []
    for job in sorted(jobs, key=lambda j: str(j.dest)):
        if job.dest in seen:
            report.failures.append((str(job.source), f"another video already writes {job.dest}; rename one of them"))
        elif done(job.dest):
            report.skipped += 1
        else:
            todo.append(job)
        seen.add(job.dest)
    return todo


def run_jobs(jobs: Sequence[Job], opts: Options | Any, workers: int = 1, strict: bool = False,
             progress: bool | None = None, work: Work = extract, done: Callable[[Path], bool] = Path.is_dir) -> Report:
    """Run ``work(job, opts)`` (frame extraction by default) for every job whose destination is not
    ``done`` yet (an existing folder by default); failures are collected in the report.

    ``workers > 1`` uses that many processes. ``strict`` raises a :class:`DecodeError` at the first failure.
    ``progress=None`` shows a progress bar only on a terminal.
    """
    from tqdm import tqdm

    report = Report()
    todo = _pending(jobs, report, done)
    start = time.perf_counter()
    opts = dataclasses.replace(opts, threads=opts.threads if workers == 1 else 1)
    pool = None
    if workers > 1 and len(todo) > 1:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        pool = multiprocessing.get_context(method).Pool(min(workers, len(todo)), initializer=_worker_init)
        results: Iterable[tuple[Job, Extracted, str]] = pool.imap_unordered(_work, [(j, opts, work) for j in todo])
    else:
        results = (_work((j, opts, work)) for j in todo)
    try:
        with tqdm(total=len(todo), unit="video", disable=None if progress is None else not progress) as bar:
            for job, result, reason in results:
                bar.update()
                if reason:
                    report.failures.append((str(job.source), reason))
                    if strict:
                        raise DecodeError(f"{job.source}: {reason} (--strict stops at the first failure; "
                                          "without it failures are listed in failures.csv and the run goes on)")
                else:
                    report.extracted += 1
                    report.frames += result.frames
                    if result.segment_rule:
                        report.segment_rules[result.segment_rule] += 1
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    report.failures.sort()
    report.seconds = time.perf_counter() - start
    return report


def write_failures(path: Path, failures: Sequence[tuple[str, str]]) -> None:
    """Write ``video,reason`` rows to ``path`` (CSV); remove a stale list when there are no failures."""
    if not failures:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video", "reason"])
        writer.writerows(failures)

"""Live feedback: progress of long steps, a run's log while the model runs, the matrix's ETA.

Everything here writes to stderr (stdout keeps each command's result).  On a terminal a step is a tqdm bar;
anywhere else (CI, Slurm logs, a pipe) it is plain lines, one per step, that read well in a file.
"""
from __future__ import annotations

import os
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, TextIO, TypeVar

T = TypeVar("T")
FOLLOW_POLL_S = 0.25
FOLLOW_MAX_BYTES = 4 * 1024 * 1024  # what a run may print to the terminal; the rest stays in log.txt
LINE_MAX_CHARS = 400


def interactive(stream: Optional[TextIO] = None) -> bool:
    stream = stream or sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def steps(items: Iterable[T], total: int, desc: str, label: Callable[[T], str] = str,
          stream: Optional[TextIO] = None) -> Iterator[T]:
    """Yield ``items``, showing progress: a tqdm bar on a terminal, else ``desc: k/N label (elapsed s)`` lines."""
    stream = stream or sys.stderr
    if interactive(stream):
        from tqdm import tqdm

        bar = tqdm(items, total=total, desc=desc, file=stream, leave=False, dynamic_ncols=True)
        for item in bar:
            bar.set_postfix_str(label(item), refresh=False)
            yield item
        bar.close()
        return
    started = time.perf_counter()
    for k, item in enumerate(items, 1):
        stream.write(f"{desc}: {k}/{total} {label(item)} ({time.perf_counter() - started:.1f} s)\n")
        stream.flush()
        yield item


def eta(done: int, total: int, elapsed_s: float) -> Optional[float]:
    """Seconds left at the mean pace so far (None before the first cell ends)."""
    if done <= 0:
        return None
    return elapsed_s / done * max(0, total - done)


def clock(seconds: Optional[float]) -> str:
    """``42s``, ``3m05s``, ``2h07m``; ``?`` for unknown."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class LogFollower:
    """Echo the lines a model appends to its ``log.txt`` while it runs (a context manager around the run).

    The run folder belongs to the model: the log is opened without following links and only when it is a regular
    file; what is echoed is capped (``FOLLOW_MAX_BYTES``, lines cut at ``LINE_MAX_CHARS``).
    """

    def __init__(self, path: Path, echo: Callable[[str], None], prefix: str = "  | ",
                 poll_s: float = FOLLOW_POLL_S, max_bytes: int = FOLLOW_MAX_BYTES) -> None:
        self.path, self.echo, self.prefix = Path(path), echo, prefix
        self.poll_s, self.max_bytes = poll_s, max_bytes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._fd: Optional[int] = None
        self._pending = b""
        self._read = 0
        self._capped = False

    def __enter__(self) -> "LogFollower":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        if self._fd is not None:
            os.close(self._fd)

    def _open(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return False
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            self._stop.set()  # a planted FIFO or device: nothing to follow
            return False
        self._fd = fd
        return True

    def _drain(self, final: bool) -> None:
        while self._read < self.max_bytes:
            chunk = os.read(self._fd, min(65536, self.max_bytes - self._read))
            if not chunk:
                break
            self._read += len(chunk)
            self._pending += chunk
            *lines, self._pending = self._pending.split(b"\n")
            for line in lines:
                self._emit(line)
        if final and self._pending:
            self._emit(self._pending)
            self._pending = b""
        if self._read >= self.max_bytes and not self._capped:
            self._capped, self._pending = True, b""  # a cut line is not shown: the rest is in the log
            self.echo(f"{self.prefix}[boom] the rest of the log is in {self.path}")

    def _emit(self, raw: bytes) -> None:
        text = raw.decode(errors="replace").rstrip("\r")
        if "\r" in text:  # a progress bar's redraws: its last state
            text = text.rsplit("\r", 1)[-1]
        if text.strip():
            self.echo(self.prefix + text[:LINE_MAX_CHARS])

    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(self.poll_s)
            if self._fd is None and not self._open():
                if stopping or self._stop.is_set():
                    return
                continue
            self._drain(final=stopping)
            if stopping:
                return

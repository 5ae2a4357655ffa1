"""Stopping runs when the orchestrator is told to stop (Ctrl-C, ``kill``, Slurm's scancel).

Model processes run in their own session (so that a timeout kills everything they started) and containers
run in the Docker daemon: neither sees a signal sent to ``boom``.  Without this, stopping ``boom`` would leave
the model training on, unseen, until its time limit.  The CLI installs handlers that set one flag and raise
:class:`Stopped` in the main thread; every runner's wait loop checks the flag, kills what it started, and
raises :class:`Stopped` too, so the run ends without a record (the next ``boom run`` archives the folder and
starts again).
"""
from __future__ import annotations

import signal
import threading

_STOP = threading.Event()


class Stopped(KeyboardInterrupt):
    """The orchestrator was told to stop; a BaseException, so no ``except Exception`` records it as a failure."""


def check() -> None:
    """Raise :class:`Stopped` once a stop was requested (called by the runners' wait loops)."""
    if _STOP.is_set():
        raise Stopped("stopped by a signal")


def _handler(signum, _frame) -> None:
    _STOP.set()
    raise Stopped(f"stopped by {signal.Signals(signum).name}")


def install_handlers() -> None:
    """SIGINT and SIGTERM stop every run of this process (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _handler)

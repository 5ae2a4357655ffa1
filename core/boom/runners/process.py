"""Supervising one model process: its own session, output to the log, a wall-clock limit, peak memory.

Shared by the runners that start a process on this host (local, apptainer).  The process gets its own
session so a timeout kills it and everything it started (and so does a stop of the orchestrator, see
``boom.runners.stop``); ``os.wait4`` reports its peak memory.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

from boom.runners import stop
from boom.runners.base import Execution

POLL_S = 0.1


def supervise(cmd: Sequence[str], log_path: Path, timeout_s: int, env: Optional[Mapping[str, str]] = None,
              cwd: Optional[Path] = None, watch: Optional[Callable[[], Optional[str]]] = None) -> Execution:
    """Run ``cmd`` to completion or until ``timeout_s``; never raises for what the process does.

    ``watch`` (e.g. ``boom.runfiles.disk_watch``) is asked while the process runs; a reason it returns kills the
    process and becomes the run's error.
    """
    started = time.perf_counter()
    timed_out = False
    stopped_why = None
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(list(cmd), cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=None if env is None else dict(env), start_new_session=True)
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() - started > timeout_s:
                    timed_out = True
                    _kill_session(proc.pid)
                    pid, status, usage = os.wait4(proc.pid, 0)
                    break
                stop.check()
                stopped_why = watch() if watch is not None else None
                if stopped_why:
                    _kill_session(proc.pid)
                    pid, status, usage = os.wait4(proc.pid, 0)
                    log.write(f"[boom] {stopped_why}\n".encode())
                    break
                time.sleep(POLL_S)
        except BaseException as exc:  # stopped (signal) or a bug here: the model must not outlive its orchestrator
            _kill_session(proc.pid)
            try:
                os.wait4(proc.pid, 0)
            except ChildProcessError:
                pass
            log.write(f"[boom] run stopped ({type(exc).__name__}: {exc}): the model process was killed\n".encode())
            raise
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    _kill_session(proc.pid)  # reap anything of its session left behind
    return Execution(returncode=code, timed_out=timed_out, wall_s=wall, peak_memory_mb=usage.ru_maxrss / 1024.0,
                     oom_killed=(code == -signal.SIGKILL and not timed_out and not stopped_why), error=stopped_why)


def _kill_session(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass

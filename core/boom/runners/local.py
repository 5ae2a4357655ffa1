"""Local runner: the model's entry point as a subprocess of the current environment.

The process gets its own session (so a timeout kills it and everything it started), its output goes
straight to the run's log file, and ``os.wait4`` reports its peak memory.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from boom_schema import Task
from boom.registry import ModelEntry
from boom.runners.base import Execution

_POLL_S = 0.1


class LocalRunner:
    name = "local"

    def task_view(self, task: Task) -> Task:
        return task

    def execute(self, entry: ModelEntry, task: Task, run_dir: Path, log_path: Path, timeout_s: int) -> Execution:
        import subprocess

        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(task.threads)
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("MPLBACKEND", "Agg")
        started = time.perf_counter()
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, str(entry.entrypoint), str(run_dir / "task.json")],
                cwd=entry.folder, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, start_new_session=True,
            )
            timed_out = False
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() - started > timeout_s:
                    timed_out = True
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    pid, status, usage = os.wait4(proc.pid, 0)
                    break
                time.sleep(_POLL_S)
        wall = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code
        try:  # reap anything of its session left behind
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return Execution(
            returncode=code, timed_out=timed_out, wall_s=wall,
            peak_memory_mb=usage.ru_maxrss / 1024.0,
            oom_killed=(code == -signal.SIGKILL and not timed_out),
        )

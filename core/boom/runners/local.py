"""Local runner: the model's entry point as a subprocess of the current environment."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from boom_schema import Task
from boom import cache
from boom.registry import ModelEntry
from boom.runners.base import Execution
from boom.runners.process import supervise


class LocalRunner:
    name = "local"

    def task_view(self, task: Task) -> Task:
        return task

    def execute(self, entry: ModelEntry, task: Task, run_dir: Path, log_path: Path, timeout_s: int) -> Execution:
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(task.threads)
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("MPLBACKEND", "Agg")
        env.update(cache.model_env(in_container=False))  # the shared feature cache (boom.cache)
        cmd = [sys.executable, str(entry.entrypoint), str(run_dir / "task.json")]
        return supervise(cmd, log_path, timeout_s, env=env, cwd=entry.folder)

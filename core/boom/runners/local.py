"""Local runner: the model's entry point as a subprocess of the current environment."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from boom_schema import Task
from boom import cache, runfiles
from boom.registry import ModelEntry
from boom.runners.base import Execution
from boom.runners.container import thread_env
from boom.runners.process import supervise


# where the orchestrator keeps raw data, prepared splits (with labels), results and its checkout
ORCHESTRATOR_PATHS = ("BOOM_RAW_DIR", "BOOM_DATA_DIR", "BOOM_RESULTS_DIR", "BOOM_HOME", "BOOM_MODELS_DIR")


class LocalRunner:
    name = "local"

    def task_view(self, task: Task) -> Task:
        return task

    def execute(self, entry: ModelEntry, task: Task, run_dir: Path, log_path: Path, timeout_s: int) -> Execution:
        # The model starts in its run folder, without the orchestrator's data and results locations: it finds
        # its inputs through task.json only.  This is hygiene, not a sandbox — the local runner runs trusted code
        # (label hiding is enforced by the container runners, which mount only the task's input folder).
        env = {k: v for k, v in os.environ.items() if k not in ORCHESTRATOR_PATHS}
        env.update(thread_env(task.threads))
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("MPLBACKEND", "Agg")
        env.update(cache.model_env(in_container=False))  # the shared feature cache (boom.cache)
        cmd = [sys.executable, str(entry.entrypoint), str(run_dir / "task.json")]
        return supervise(cmd, log_path, timeout_s, env=env, cwd=run_dir,
                         watch=runfiles.disk_watch(run_dir, entry.spec.resources.disk_gb))

"""What every runner returns, so that status, reasons and scoring are the same for all runners."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol

from boom_schema import Task, limits
from boom import runfiles
from boom.registry import ModelEntry


@dataclass
class Execution:
    """Outcome of running a model process (not yet validated or scored)."""

    returncode: Optional[int]
    timed_out: bool
    wall_s: float
    peak_memory_mb: Optional[float] = None
    oom_killed: bool = False
    error: Optional[str] = None  # a failure the runner itself detected (image build, daemon down)


class Runner(Protocol):
    name: str

    def execute(self, entry: ModelEntry, task: Task, run_dir: Path, log_path: Path, timeout_s: int) -> Execution:
        """Run the model on ``task`` (written to run_dir/task.json by the orchestrator)."""
        ...

    def task_view(self, task: Task) -> Task:
        """The task as the model's process sees it (paths rewritten for containers)."""
        ...


_ERROR_LINE = re.compile(r"^error: (.*)$")


def last_error_line(log_path: Path) -> Optional[str]:
    """The model's own one-line reason (``error: ...`` from boom_kit), else the last non-empty log line.

    Only the log's end is read (``limits.LOG_TAIL_BYTES``), and only when it is a regular file (``boom.runfiles``).
    """
    tail = runfiles.read_tail(log_path, limits.LOG_TAIL_BYTES)
    if tail is None:
        return None
    lines = [l.strip() for l in tail.splitlines() if l.strip()]
    for line in reversed(lines):
        m = _ERROR_LINE.match(line)
        if m:
            return m.group(1)
    return lines[-1][:300] if lines else None

"""Thin wrappers of sbatch, squeue, sacct and scancel (text in, parsed values out).

States come from ``squeue`` while slurmctld still holds the job (it keeps finished jobs for MinJobAge,
with their end state and reason) and from ``sacct`` after that, when the cluster has accounting.  A
state is the first word of Slurm's (``CANCELLED by 0`` -> ``CANCELLED``).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "REQUEUE_HOLD",
          "REQUEUE_FED", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD", "SPECIAL_EXIT"}
FAILED = {"FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "CANCELLED", "BOOT_FAIL", "DEADLINE",
          "REVOKED"}
TERMINAL = FAILED | {"COMPLETED"}

EXPLAIN = {
    "TIMEOUT": "killed by Slurm at its time limit (raise --time)",
    "OUT_OF_MEMORY": "killed by Slurm for exceeding its memory (raise resources.memory_gb in model.yaml)",
    "NODE_FAIL": "the node running it failed",
    "PREEMPTED": "preempted by a higher-priority job",
    "CANCELLED": "scancel, an administrator or a failed dependency ended it",
    "FAILED": "the job exited with an error",
    "BOOT_FAIL": "the node failed to boot",
    "DEADLINE": "missed its deadline",
}


class SlurmError(RuntimeError):
    """A Slurm command failed or is missing."""


@dataclass
class TaskState:
    """One array task as Slurm sees it."""
    task: int
    state: str  # PENDING, RUNNING, COMPLETED, TIMEOUT, ...
    reason: str = ""  # squeue's %r (TimeLimit, Priority, Resources...) when known
    exit_code: str = ""  # sacct's ExitCode (code:signal) when known
    elapsed: str = ""
    time_limit: str = ""
    job_id: str = ""  # the array task's own id, e.g. 12_3

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise SlurmError(f"{name} not found: is this a Slurm login node (or is SLURM_CONF set)?")
    return found


def _run(args: Sequence[str], timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{' '.join(args[:2])} did not answer within {timeout:.0f} s") from None
    if check and proc.returncode != 0:
        raise SlurmError(f"{Path(args[0]).name} failed (exit {proc.returncode}): "
                         f"{(proc.stderr or proc.stdout).strip()[:500]}")
    return proc


def parse_parsable(text: str) -> str:
    """``sbatch --parsable`` prints ``jobid`` or ``jobid;cluster``."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    job = line.split(";", 1)[0]
    if not job.isdigit():
        raise SlurmError(f"unexpected sbatch --parsable output: {text.strip()[:200]!r}")
    return job


def sbatch(script: Path, args: Sequence[str] = ()) -> str:
    """Submit ``script`` (its #SBATCH lines plus ``args``); returns the job id."""
    proc = _run([_tool("sbatch"), "--parsable", *args, str(script)])
    return parse_parsable(proc.stdout)


def scancel(job_ids: Sequence[str]) -> None:
    if job_ids:
        _run([_tool("scancel"), *job_ids])


def _expand(spec: str) -> list[int]:
    """Array task list as Slurm prints it: ``3``, ``[0-4,7]``, ``[2-9%2]``."""
    spec = spec.strip("[]").split("%", 1)[0]
    out: list[int] = []
    for part in spec.split(","):
        if not part:
            continue
        step = 1
        if ":" in part:
            part, s = part.split(":", 1)
            step = int(s)
        if "-" in part:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1, step))
        else:
            out.append(int(part))
    return out


_ARRAY_ID = re.compile(r"^(\d+)_(\[[^\]]*\]|\d+)$")


def _array_rows(text: str, job_id: str) -> Iterator[tuple[int, list[str]]]:
    """(task index, fields) of every ``|``-separated line about one array job (ranges expanded)."""
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 5:
            continue
        m = _ARRAY_ID.match(parts[0])
        if not m or m.group(1) != job_id:
            continue
        for task in _expand(m.group(2)):
            yield task, parts


def parse_squeue(text: str, job_id: str) -> dict[int, TaskState]:
    """Lines of ``squeue -h -r -t all -o '%i|%T|%r|%M|%l'`` for one array job."""
    return {task: TaskState(task, parts[1].split()[0], reason=parts[2], elapsed=parts[3], time_limit=parts[4],
                            job_id=f"{job_id}_{task}")
            for task, parts in _array_rows(text, job_id)}


def parse_sacct(text: str, job_id: str) -> dict[int, TaskState]:
    """Lines of ``sacct -X -n -P -o JobID,State,ExitCode,Elapsed,Timelimit`` for one array job."""
    return {task: TaskState(task, parts[1].split()[0] if parts[1].strip() else "UNKNOWN", exit_code=parts[2],
                            elapsed=parts[3], time_limit=parts[4], job_id=f"{job_id}_{task}")
            for task, parts in _array_rows(text, job_id)}


def squeue(job_id: str) -> dict[int, TaskState]:
    proc = _run([_tool("squeue"), "-h", "-r", "-t", "all", "-j", job_id, "-o", "%i|%T|%r|%M|%l"], check=False)
    if proc.returncode != 0:
        if "invalid job id" in (proc.stderr or "").lower():  # slurmctld has forgotten the job (MinJobAge)
            return {}
        raise SlurmError(f"squeue failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[:300]}")
    return parse_squeue(proc.stdout, job_id)


def sacct(job_id: str) -> Optional[dict[int, TaskState]]:
    """None when sacct is missing or the cluster has no accounting storage."""
    if shutil.which("sacct") is None:
        return None
    proc = _run([_tool("sacct"), "-X", "-n", "-P", "-j", job_id, "-o", "JobID,State,ExitCode,Elapsed,Timelimit"],
                check=False)
    if proc.returncode != 0:
        return None
    return parse_sacct(proc.stdout, job_id)


def task_states(job_id: str) -> dict[int, TaskState]:
    """Every known array task of ``job_id``: squeue first (live), sacct for what squeue no longer has."""
    live = squeue(job_id)
    acct = sacct(job_id) or {}
    merged = dict(acct)
    for task, st in live.items():
        if task in acct and not st.exit_code:
            st.exit_code = acct[task].exit_code
        merged[task] = st
    return merged


def describe(st: TaskState) -> str:
    """One line: Slurm's state, why, and its own reason/exit code."""
    bits = [f"slurm job {st.job_id}: {st.state}"]
    if st.state in EXPLAIN:
        bits.append(f"({EXPLAIN[st.state]})")
    extra = []
    if st.reason and st.reason not in ("None", "(null)") and st.state != "CANCELLED":  # not a stale pending reason
        extra.append(f"reason {st.reason}")
    if st.time_limit and st.state == "TIMEOUT":
        extra.append(f"time limit {st.time_limit}")
    if st.exit_code and st.exit_code not in ("0:0",):
        extra.append(f"exit {st.exit_code}")
    if st.elapsed:
        extra.append(f"after {st.elapsed}")
    if extra:
        bits.append("[" + ", ".join(extra) + "]")
    return " ".join(bits)

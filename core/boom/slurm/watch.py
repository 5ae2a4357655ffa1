"""Follow submissions: per-cell state, failed records for cells Slurm killed, cancel.

A cell's state comes first from its record (written by ``boom run`` inside the job): a record newer than
the one the folder held at submission means the cell finished (done / failed).  Without one, Slurm's state
decides: pending / running while the array task is active; when Slurm ended the task without a record
(time limit, out of memory, node failure, preemption, cancel) a failed RunRecord with Slurm's reason is
written into the cell's run folder, so the leaderboard shows it like any other failure and a
resubmission retries it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from boom_schema import RunRecord, RunStatus
from boom import results, runfiles
from boom.matrix import Cell, CellResult
from boom.runners.base import last_error_line
from boom.slurm import commands
from boom.slurm.submit import Submission, SubmittedCell, _add_scores, all_submissions

PENDING, RUNNING, DONE, FAILED, LOST = "pending", "running", "done", "failed", "lost"


@dataclass
class CellState:
    sub: Submission
    cell: SubmittedCell
    state: str  # pending / running / done / failed / unknown
    reason: str = ""
    record: Optional[RunRecord] = None
    slurm: Optional[commands.TaskState] = None

    @property
    def finished(self) -> bool:
        return self.state in (DONE, FAILED, LOST)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _seconds(elapsed: str) -> float:
    try:
        from boom.slurm.config import parse_time_s

        return float(parse_time_s(elapsed)) if elapsed else 0.0
    except ValueError:
        return 0.0


def fresh_record(cell: SubmittedCell) -> Optional[RunRecord]:
    """The cell's record if this attempt (or a later one) wrote it."""
    rec = results.read_record(Path(cell.folder))
    if rec is None or (cell.prior and rec.finished_at == cell.prior):
        return None
    return rec


def write_failure(sub: Submission, cell: SubmittedCell, st: Optional[commands.TaskState], reason: str) -> RunRecord:
    """A failed record for a cell that Slurm ended without one, written atomically into its run folder."""
    folder = Path(cell.folder)
    if results.read_record(folder) is not None:  # the prior attempt's record: keep it under previous/
        results.archive_previous(folder)
    folder.mkdir(parents=True, exist_ok=True)
    status = RunStatus.TIMEOUT if st is not None and st.state == "TIMEOUT" else RunStatus.FAILED
    now = _now()
    record = RunRecord(
        run_id=cell.run_id, model=cell.model, dataset=cell.dataset, property=cell.prop, seed=cell.seed,
        status=status, reason=reason, runner=f"slurm+{sub.runner}", device=sub.device,
        hyperparameters=cell.params, subset=cell.subset, started_at=sub.created_at, finished_at=now,
        wall_s=_seconds(st.elapsed) if st else 0.0, data_sha256=cell.data_sha256,
    )
    runfiles.write_atomic(folder / "record.json", record.model_dump_json(indent=2))
    return record


def _slurm_reason(sub: Submission, cell: SubmittedCell, st: Optional[commands.TaskState]) -> str:
    log = sub.folder / "logs" / f"{cell.index}.out"
    if st is None:
        what = f"slurm job {sub.job_id}_{cell.index}: CANCELLED before it ran"
    elif st.state == "COMPLETED":
        what = f"{commands.describe(st)} but `boom run` wrote no record"
    else:
        what = commands.describe(st)
    line = last_error_line(log) if st is not None and st.state in ("FAILED", "COMPLETED") else None
    return what + (f"; last output: {line}" if line else "") + f" (log {log})"


def states(sub: Submission, reconcile: bool = True) -> list[CellState]:
    """Every cell of ``sub``; with ``reconcile``, cells Slurm ended without a record get a failed one."""
    slurm = commands.task_states(sub.job_id)
    out = []
    for cell in sub.cells:
        rec = fresh_record(cell)
        st = slurm.get(cell.index)
        if rec is not None:
            state = DONE if rec.status == RunStatus.OK else FAILED
            out.append(CellState(sub, cell, state, rec.reason or "", rec, st))
        elif st is not None and st.active:
            state = PENDING if st.state in ("PENDING", "REQUEUED", "REQUEUE_HOLD", "SUSPENDED") else RUNNING
            note = st.reason if st.reason not in ("None", "(null)") else ""
            out.append(CellState(sub, cell, state, note, None, st))
        elif (st is not None and st.terminal) or (st is None and sub.cancelled_at):
            reason = _slurm_reason(sub, cell, st)
            if reconcile:
                rec = write_failure(sub, cell, st, reason)
            out.append(CellState(sub, cell, FAILED, reason, rec, st))
        elif st is None and not slurm:
            # Neither squeue nor sacct knows the array (no accounting and purged after MinJobAge, or another
            # cluster's SLURM_CONF): no record is invented; a resubmission retries the cell.
            out.append(CellState(sub, cell, LOST, f"slurm job {sub.job_id}_{cell.index} is unknown to Slurm and "
                                 "left no record; resubmit to retry", None, None))
        else:
            out.append(CellState(sub, cell, "unknown", f"slurm state {st.state if st else '?'}", None, st))
    if reconcile and all(c.state in (DONE, FAILED) for c in out) and not sub.finished_at:
        sub.finished_at = _now()
        sub.save()
    return out


def in_flight() -> dict[str, str]:
    """run id -> submission id of cells still pending or running in unfinished submissions."""
    out: dict[str, str] = {}
    for sub in all_submissions():
        if sub.finished_at:
            continue
        for cs in states(sub):
            if cs.state in (PENDING, RUNNING):
                out[cs.cell.run_id] = sub.id
    return out


def to_result(cs: CellState) -> CellResult:
    c = cs.cell
    rec = cs.record
    status = rec.status.value if rec is not None else cs.state
    res = CellResult(Cell(c.model, c.prop, c.seed), status, cs.reason, wall_s=rec.wall_s if rec else 0.0,
                     folder=c.folder)
    if rec is not None and rec.status == RunStatus.OK:
        _add_scores(res, Path(c.folder))
    return res


def watch(subs: Sequence[Submission], poll_s: float = 10.0, echo: Callable[[str], None] = print,
          timeout_s: Optional[float] = None) -> list[CellState]:
    """Poll until every cell of ``subs`` finished (echoing each as it does); returns the final states."""
    reported: set[tuple[str, int]] = set()
    started = time.monotonic()
    last: list[CellState] = []
    while True:
        try:
            last = [cs for sub in subs for cs in states(sub)]
        except commands.SlurmError as exc:  # slurmctld busy or restarting: try again next poll
            echo(f"slurm: {exc}")
            last = last or []
        for cs in last:
            key = (cs.sub.id, cs.cell.index)
            if cs.finished and key not in reported:
                reported.add(key)
                res = to_result(cs)
                extra = f"OOD RMSE {res.ood_rmse:.4g}" if res.ood_rmse is not None else cs.reason
                echo(f"[{cs.cell.model} {cs.cell.prop} seed {cs.cell.seed}] {res.status} ({res.wall_s:.1f} s) {extra}")
        if last and all(cs.finished for cs in last):
            return last
        if timeout_s is not None and time.monotonic() - started > timeout_s:
            return last
        time.sleep(poll_s)


def cancel(subs: Iterable[Submission], wait_s: float = 60.0, poll_s: float = 1.0) -> list[CellState]:
    """``scancel`` the submissions' arrays; cells that had not finished become failed records (cancelled)."""
    subs = [s for s in subs if not s.finished_at]
    for sub in subs:
        commands.scancel([sub.job_id])
        sub.cancelled_at = _now()
        sub.save()
    deadline = time.monotonic() + wait_s
    while True:
        out = [cs for sub in subs for cs in states(sub)]
        if all(cs.finished for cs in out) or time.monotonic() > deadline:
            return out
        time.sleep(poll_s)


def latest_states(cells: Optional[Sequence[Cell]] = None) -> list[CellState]:
    """Each submitted cell's state in its newest submission (restricted to ``cells`` when given)."""
    newest: dict[str, CellState] = {}
    wanted = set(cells) if cells is not None else None
    for sub in reversed(all_submissions()):
        relevant = [c for c in sub.cells if wanted is None or c.cell in wanted]
        if not relevant or all(c.run_id in newest for c in relevant):
            continue
        for cs in states(sub):
            if (wanted is None or cs.cell.cell in wanted) and cs.cell.run_id not in newest:
                newest[cs.cell.run_id] = cs
    return sorted(newest.values(), key=lambda cs: (cs.cell.model, cs.cell.prop, cs.cell.seed, cs.cell.run_id))


def status_table(rows: Sequence[CellState]) -> str:
    head = f"{'model':16s} {'property':9s} {'seed':>4s} {'state':8s} {'submission':24s} {'job':>10s}  note"
    lines = [head, "-" * len(head)]
    for cs in rows:
        job = cs.slurm.job_id if cs.slurm else f"{cs.sub.job_id}_{cs.cell.index}"
        lines.append(f"{cs.cell.model:16s} {cs.cell.prop:9s} {cs.cell.seed:4d} {cs.state:8s} {cs.sub.id:24s} "
                     f"{job:>10s}  {cs.reason[:90]}")
    counts = {s: sum(cs.state == s for cs in rows) for s in (PENDING, RUNNING, DONE, FAILED)}
    other = len(rows) - sum(counts.values())
    lines.append(f"{len(rows)} cells: " + ", ".join(f"{n} {s}" for s, n in counts.items())
                 + (f", {other} lost/unknown" if other else ""))
    return "\n".join(lines)

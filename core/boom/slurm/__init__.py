"""Run the matrix on a Slurm cluster: one job array per submission, each task one ``boom run``.

``boom matrix --executor slurm`` plans the cells here (preparing task data once), writes the cells and a
batch script into ``<results>/_slurm/<submission>/``, submits the array with ``sbatch``, follows it with
``squeue``/``sacct`` and ends with the same summary and leaderboard as the local executor.  ``--status``
and ``--cancel`` work on the submissions found in the results tree.  See ``bench/README-slurm.md``.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

from boom.matrix import Cell, CellResult
from boom.options import RunOptions
from boom.slurm.config import SlurmConfig, load as load_config
from boom.slurm.submit import Submission, all_submissions, prepare_cells, submit
from boom.slurm.watch import cancel, latest_states, status_table, states, to_result
from boom.slurm.watch import watch as follow  # (the name `watch` stays the module)

__all__ = ["SlurmConfig", "Submission", "load_config", "run_matrix", "status", "cancel_cells", "all_submissions",
           "states", "follow", "submit", "prepare_cells", "cancel"]


def run_matrix(selected: Sequence[Cell], cfg: SlurmConfig, options: RunOptions, wait: bool = True,
               echo: Callable[[str], None] = print) -> tuple[Optional[Submission], list[CellResult]]:
    """Submit the cells that need a run and (with ``wait``) follow them to the end; results in ``selected`` order."""
    from boom.slurm.watch import in_flight

    prepared = prepare_cells(selected, options, in_flight(), echo)
    by_cell: dict[Cell, CellResult] = {r.cell: r for r in prepared.done}
    skipped = sum(r.skipped for r in prepared.done)
    sub = None
    if prepared.to_submit:
        sub = submit(prepared.to_submit, cfg, options)
        res = sub.options["resources"]
        echo(f"slurm: submitted {len(sub.cells)} cell(s) as job array {sub.job_id} "
             f"({res['cpus']} cpu, {res['mem_mb']} MB, time {res['time']}"
             f"{', ' + str(res['gpus']) + ' gpu' if res['gpus'] else ''} per task); {skipped} already done or queued; "
             f"submission {sub.folder}")
        if wait:
            for cs in follow([sub], poll_s=cfg.poll_s, echo=echo):
                by_cell[cs.cell.cell] = to_result(cs)
        else:
            echo("slurm: not waiting; follow with `boom matrix --executor slurm --status`")
            for cs in states(sub):
                by_cell[cs.cell.cell] = to_result(cs)
    else:
        echo(f"slurm: nothing to submit ({skipped} cell(s) already done or queued)")
    return sub, [by_cell[c] for c in selected if c in by_cell]


def status(selected: Optional[Sequence[Cell]] = None) -> str:
    """The pending / running / done / failed table of every submitted cell (of ``selected`` when given)."""
    rows = latest_states(selected)
    if not rows:
        return "no Slurm submissions found under the results tree"
    return status_table(rows)


def cancel_cells(selected: Optional[Sequence[Cell]] = None) -> str:
    """Cancel the unfinished submissions holding any of ``selected`` (all unfinished ones when None)."""
    wanted = set(selected) if selected is not None else None
    subs = [s for s in all_submissions() if not s.finished_at
            and (wanted is None or any(c.cell in wanted for c in s.cells))]
    if not subs:
        return "no unfinished Slurm submission to cancel"
    rows = cancel(subs)
    return f"cancelled job array(s) {', '.join(s.job_id for s in subs)}\n" + status_table(rows)

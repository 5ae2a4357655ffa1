"""The model x property x seed matrix: every cell a model's spec supports, resumable, in parallel.

Each cell is planned once (``orchestrate.plan``, serially: task data is prepared once per task before the jobs
start) and run by ``orchestrate.execute``; every cell gets the same ``RunOptions``.  Its run id is a content hash of
its inputs, so a cell that already succeeded is skipped and a matrix killed mid-way loses no finished run (a record
is written atomically at the end of each run); rerunning resumes.  The machine's cores are divided between the
parallel jobs (threads per job = cores // jobs).
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from boom_schema import PROPERTIES, RunStatus
from boom import options as options_mod, progress, registry
from boom.options import RunOptions


@dataclass(frozen=True)
class Cell:
    model: str
    prop: str
    seed: int


@dataclass
class CellResult:
    cell: Cell
    status: str  # ok / failed / timeout / skipped(ok) / error
    reason: str = ""
    id_rmse: Optional[float] = None
    ood_rmse: Optional[float] = None
    wall_s: float = 0.0
    folder: str = ""
    skipped: bool = False


def parse_list(text: Optional[str]) -> Optional[list[str]]:
    if not text:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_seeds(text: Optional[str]) -> Optional[list[int]]:
    """``0,1,2`` or ``0-4``; None means each model's ``seeds`` from its spec."""
    seeds = options_mod.parse_seeds(text)
    return None if seeds is None else list(seeds)


def cells(models: Optional[Sequence[str]] = None, props: Optional[Sequence[str]] = None,
          seeds: Optional[Sequence[int]] = None) -> list[Cell]:
    """Every (model, property, seed) the specs support, restricted to the given models/properties."""
    found = registry.discover()
    if models:
        unknown = [m for m in models if m not in found]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; available: {', '.join(found) or '(none)'}")
    if props:
        unknown = [p for p in props if p not in PROPERTIES]
        if unknown:
            raise ValueError(f"unknown propert(y/ies) {unknown}; valid: {', '.join(PROPERTIES)}")
    out = []
    for name in models or list(found):
        spec = found[name].spec
        for prop in PROPERTIES:
            if prop not in spec.tasks or (props and prop not in props):
                continue
            for seed in seeds if seeds is not None else range(spec.seeds):
                out.append(Cell(name, prop, seed))
    return out


def threads_per_job(jobs: int, cores: Optional[int] = None) -> int:
    return max(1, (cores or os.cpu_count() or 1) // max(1, jobs))


def cells_for(models: Optional[str], props: Optional[str], options: RunOptions) -> list[Cell]:
    """The cells of ``--models``/``--props`` (comma-separated text) and the options' seeds."""
    return cells(parse_list(models), parse_list(props), options.seeds)


def plan_cells(selected: Sequence[Cell], options: RunOptions, threads_cap: Optional[int] = None,
               echo: Callable[[str], None] = print) -> tuple[list, dict[Cell, CellResult]]:
    """Plan every cell once, serially (preparing each task's data once: parallel jobs would write the same folder).

    Returns the planned runs and a result row for each cell that cannot run (setup error).
    """
    from boom.orchestrate import RunSetupError, plan

    planned, failed = [], {}
    for cell in selected:
        try:
            planned.append(plan(cell.model, cell.prop, cell.seed, options, threads_cap=threads_cap))
        except (RunSetupError, ValueError) as exc:
            failed[cell] = CellResult(cell, "error", str(exc))
            echo(f"[{cell.model} {cell.prop} seed {cell.seed}] not run: {exc}")
    return planned, failed


def run_matrix(selected: Sequence[Cell], runner, options: RunOptions, jobs: int = 1,
               echo: Callable[[str], None] = print, log_line: Optional[Callable[[str], None]] = None,
               ) -> list[CellResult]:
    """Run the cells; every one ends in a CellResult (its run folder holds the record).

    ``echo`` gets one line per finished cell with ``[k/N]``, the elapsed time and an ETA; ``log_line`` (if given)
    each line of the models' logs while they run, prefixed by the cell.
    """
    from boom.orchestrate import Feedback, execute

    jobs = max(1, jobs)
    results: dict[Cell, CellResult] = {}
    planned, failed = plan_cells(selected, options, None if options.threads else threads_per_job(jobs), echo)
    results.update(failed)

    def one(p) -> CellResult:
        cell = Cell(p.model, p.prop, p.seed)
        started = time.perf_counter()
        feedback = Feedback(log_line=log_line, prefix=f"  {p.model}/{p.prop}/{p.seed} | ") if log_line else None
        try:
            out = execute(p, runner, feedback)
        except Exception as exc:  # a runner/orchestrator bug: recorded, matrix goes on
            return CellResult(cell, "error", f"{type(exc).__name__}: {exc}", wall_s=time.perf_counter() - started)
        rec = out.record
        res = CellResult(cell, rec.status.value, rec.reason or "", wall_s=rec.wall_s, folder=str(out.folder),
                         skipped=out.skipped)
        if rec.status == RunStatus.OK and out.scores is not None:
            res.id_rmse, res.ood_rmse = out.scores.id.rmse, out.scores.ood.rmse
        return res

    total, done = len(planned), 0
    clock_start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(one, p) for p in planned]
        for fut in as_completed(futures):
            res = fut.result()
            results[res.cell] = res
            done += 1
            c = res.cell
            what = "already done" if res.skipped else res.status
            extra = f"OOD RMSE {res.ood_rmse:.4g}" if res.ood_rmse is not None else res.reason
            elapsed = time.perf_counter() - clock_start
            echo(f"[{done}/{total}] [{c.model} {c.prop} seed {c.seed}] {what} ({res.wall_s:.1f} s) {extra}"
                 f" | elapsed {progress.clock(elapsed)}, ETA {progress.clock(progress.eta(done, total, elapsed))}")
    return [results[c] for c in selected if c in results]


def conclude(results: Sequence[CellResult], write_report: bool, echo: Callable[[str], None]) -> bool:
    """After a matrix (any executor): the summary table, then the leaderboard unless told not to.

    Returns True when every cell is ok, so that ``--strict`` can turn a failed cell into exit status 1.
    """
    echo("")
    echo(summary(results))
    if write_report:
        from boom import report

        _, written = report.write()
        echo("leaderboard: " + ", ".join(str(p) for p in written))
    return all(r.status == RunStatus.OK.value for r in results)


def summary(results: Sequence[CellResult]) -> str:
    """A plain-text table of the matrix and a count line."""
    head = f"{'model':16s} {'property':9s} {'seed':>4s} {'status':8s} {'ID RMSE':>10s} {'OOD RMSE':>10s} {'wall s':>8s}  note"
    lines = [head, "-" * len(head)]
    for r in results:
        fmt = lambda v: f"{v:10.4g}" if v is not None else f"{'—':>10s}"  # noqa: E731
        note = "already done" if r.skipped else r.reason[:70]
        lines.append(f"{r.cell.model:16s} {r.cell.prop:9s} {r.cell.seed:4d} {r.status:8s} {fmt(r.id_rmse)} "
                     f"{fmt(r.ood_rmse)} {r.wall_s:8.1f}  {note}")
    ok = sum(r.status == RunStatus.OK.value for r in results)
    skipped = sum(r.skipped for r in results)
    lines.append(f"{len(results)} cells: {ok} ok ({skipped} already done), {len(results) - ok} failed")
    return "\n".join(lines)

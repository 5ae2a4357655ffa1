"""One run, end to end and identical for every model and runner.

Build (or reuse) the task's input folder, derive the run id, write ``task.json``, let the runner execute
the model, then validate its predictions, score them against the labels kept here, draw the parity plot
and write the record.  Every outcome, success or failure, ends in a ``record.json`` with a one-line
reason; a failed earlier attempt of the same run is moved to ``previous/`` rather than overwritten.

``plan`` does the first part once per cell (a :class:`PlannedRun`, from ``boom.options.RunOptions``); ``execute``
the rest, telling a :class:`Feedback` where the run is and following the model's log while it runs.
"""
from __future__ import annotations

import os
import traceback
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from boom_schema import (
    GpuUse, InputKind, ModelReport, PredictionsError, RunRecord, RunStatus, Scores, Task, property_info,
    validate_predictions,
)
from boom import registry, results, runfiles
from boom.data import tasks
from boom.options import RunOptions
from boom.plots import parity_plot
from boom.progress import LogFollower
from boom.runners import stop
from boom.runners.base import Execution, Runner, last_error_line
from boom.scoring import split_scores


class RunSetupError(ValueError):
    """The run cannot start (unknown model or property, unsupported task, bad --set): nothing was written."""


@dataclass
class RunOutcome:
    record: RunRecord
    scores: Optional[Scores]
    folder: Path
    skipped: bool = False


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def default_threads(entry: registry.ModelEntry) -> int:
    return max(1, min(int(entry.spec.resources.cpus), os.cpu_count() or 1))


@dataclass(frozen=True)
class PlannedRun:
    """One cell, planned once: its model, merged hyperparameters, task data, run id, folder and ``task.json``."""

    entry: registry.ModelEntry
    params: dict
    data: "tasks.TaskData"
    run_id: str
    folder: Path
    task: Task
    options: RunOptions

    @property
    def spec(self):
        return self.entry.spec

    @property
    def model(self) -> str:
        return self.task.model

    @property
    def prop(self) -> str:
        return self.task.property

    @property
    def seed(self) -> int:
        return self.task.seed

    @property
    def name(self) -> str:
        return f"{self.model} {self.prop} seed {self.seed}"


def plan(model: str, prop: str, seed: int = 0, options: Optional[RunOptions] = None,
         threads_cap: Optional[int] = None) -> PlannedRun:
    """Validate the request and prepare its data (nothing is written in the results tree).

    Threads: ``options.threads``, else the spec's cpus (at most the cores and ``threads_cap``, a matrix's share).
    """
    options = options or RunOptions()
    try:
        entry = registry.get(model)
        registry.get_property(prop)  # an unknown name fails here, with a did-you-mean
    except KeyError as exc:
        raise RunSetupError(str(exc).strip("'\"")) from None
    if prop not in entry.spec.tasks:
        why = entry.spec.unsupported.get(prop, "not listed in its model.yaml tasks")
        raise RunSetupError(f"model {model} does not support {prop}: {why}")
    if options.device == "cuda" and entry.spec.gpu == GpuUse.NO:
        raise RunSetupError(f"model {model} does not use a GPU (gpu: no in its model.yaml); use --device cpu")
    if options.device == "cpu" and entry.spec.gpu == GpuUse.REQUIRED:
        raise RunSetupError(f"model {model} requires a GPU; use --device cuda on a machine with one")
    try:
        params = registry.merge_params(entry.spec, options.params, smoke=options.smoke)
    except ValueError as exc:
        raise RunSetupError(str(exc)) from None
    data = tasks.build(prop, subset=options.subset, with_geometry=entry.spec.input == InputKind.GEOMETRY3D,
                       workers=default_threads(entry), train_subset=options.train_subset)
    rid = results.run_id(entry.content_hash(), data.sha256, params, seed, data.subset, options.device)
    info = property_info(prop)
    folder = results.run_dir(info.dataset, prop, model, rid)
    threads = options.threads or min(default_threads(entry), threads_cap or default_threads(entry))
    task = Task(
        run_id=rid, model=model, dataset=info.dataset, property=prop, unit=info.unit, readout=info.readout,
        input_dir=str(data.input_dir), output_dir=str(folder), files=data.files, seed=seed,
        hyperparameters=params, device=options.device, threads=threads,
        time_budget_s=options.timeout_s or entry.spec.resources.timeout_s, subset=data.subset,
    )
    return PlannedRun(entry, params, data, rid, folder, task, options)


def _failure_reason(ex: Execution, log_path: Path, timeout_s: int) -> tuple[RunStatus, str]:
    if ex.error:
        return RunStatus.FAILED, ex.error
    if ex.timed_out:
        return RunStatus.TIMEOUT, f"exceeded the time limit of {timeout_s} s (raise it with --timeout or in model.yaml resources.timeout_s)"
    if ex.oom_killed:
        return RunStatus.FAILED, "killed (SIGKILL / out of memory); raise resources.memory_gb or use a smaller --set configuration"
    detail = last_error_line(log_path) or "no output"
    return RunStatus.FAILED, f"model exited with status {ex.returncode}: {detail}"


@dataclass(frozen=True)
class Feedback:
    """What a run tells the user while it runs: ``started(planned, log path)`` once, then each log line."""

    started: Optional[Callable[[PlannedRun, Path], None]] = None
    log_line: Optional[Callable[[str], None]] = None
    prefix: str = "  | "


def run(model: str, prop: str, runner: Runner, options: Optional[RunOptions] = None, seed: Optional[int] = None,
        feedback: Optional[Feedback] = None) -> RunOutcome:
    """Plan and execute one (model, property, seed) cell; ``seed`` defaults to the options' one seed."""
    stop.check()  # a matrix that was told to stop starts no further cell
    options = options or RunOptions()
    planned = plan(model, prop, options.seed if seed is None else seed, options)
    return execute(planned, runner, feedback)


def execute(planned: PlannedRun, runner: Runner, feedback: Optional[Feedback] = None) -> RunOutcome:
    """Run a planned cell; never raises for a model failure (it is recorded).

    Raises ``boom.runners.stop.Stopped`` when the orchestrator is told to stop (no record is written).
    """
    stop.check()
    entry, data, rid, folder, task = planned.entry, planned.data, planned.run_id, planned.folder, planned.task
    model, seed, params = planned.model, planned.seed, planned.params
    existing = results.read_record(folder)
    if existing is not None and existing.status == RunStatus.OK and not planned.options.force:
        return RunOutcome(existing, results.read_scores(folder), folder, skipped=True)
    results.archive_previous(folder)
    folder.mkdir(parents=True, exist_ok=True)
    timeout_s = task.time_budget_s
    runfiles.write_atomic(folder / "task.json", runner.task_view(task).model_dump_json(indent=2))
    log_path = folder / "log.txt"
    feedback = feedback or Feedback()
    if feedback.started:
        feedback.started(planned, log_path)
    started = _now()
    follow = LogFollower(log_path, feedback.log_line, feedback.prefix) if feedback.log_line else nullcontext()
    try:
        with follow:
            ex = runner.execute(entry, task, folder, log_path, timeout_s)
    except Exception as exc:  # a runner bug or environment problem is still a recorded failure
        runfiles.append_text(log_path, traceback.format_exc())
        ex = Execution(returncode=None, timed_out=False, wall_s=0.0, error=f"runner error: {type(exc).__name__}: {exc}")

    # the folder is the model's now: hostile input (links, FIFOs, huge files) until checked (boom.runfiles)
    problems = results.check_after_run(folder, entry.spec.resources.disk_gb, ex.error)
    report = None
    try:
        report = results.read_model_report(folder)
    except runfiles.UnsafeEntry as exc:
        problems.append(str(exc))
    status, reason, scores = RunStatus.OK, None, None
    if problems:
        status, reason = RunStatus.FAILED, "unsafe run folder: " + "; ".join(problems)
    elif ex.returncode != 0 or ex.timed_out or ex.error:
        status, reason = _failure_reason(ex, log_path, timeout_s)
    else:
        try:
            scores = score_run(folder, data, rid, model, seed)
        except PredictionsError as exc:
            status, reason = RunStatus.FAILED, f"invalid predictions: {exc}"
    record = RunRecord(
        run_id=rid, model=model, dataset=task.dataset, property=task.property, seed=seed, status=status,
        reason=reason, runner=runner.name, device=task.device, hyperparameters=params, subset=data.subset,
        smoke=planned.options.smoke, model_sha256=entry.content_hash(), started_at=started,
        finished_at=_now(), wall_s=round(ex.wall_s, 3),
        timings=report.timings if report else ModelReport().timings,
        peak_memory_mb=None if ex.peak_memory_mb is None else round(ex.peak_memory_mb, 1),
        n_parameters=report.n_parameters if report else None,
        versions=report.versions if report else {}, data_sha256=data.sha256, split_sha256=data.split_sha256,
        model_report=report,
    )
    runfiles.write_atomic(folder / "record.json", record.model_dump_json(indent=2))
    return RunOutcome(record, scores, folder)


def score_run(folder: Path, data: "tasks.TaskData", rid: str, model: str, seed: int) -> Scores:
    """Validate predictions.csv, score both splits, write scores.json and the parity plot."""
    scores, arrays = compute_scores(results.read_predictions(folder, len(data.expected)), data, rid, model, seed)
    info = property_info(data.property)
    runfiles.write_atomic(folder / "scores.json", scores.model_dump_json(indent=2))
    runfiles.write_rendered(folder / "parity.png", lambda path: parity_plot(
        path, f"{model} · {info.name} ({info.dataset})", info.unit,
        *arrays["id"], *arrays["ood"], scores.id.rmse, scores.ood.rmse))
    return scores


def compute_scores(source: "str | Path", data: "tasks.TaskData", rid: str, model: str, seed: int,
                   name: str = "predictions.csv") -> tuple[Scores, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Validate predictions (CSV text, or a Path) against the task and score both splits; writes nothing.

    Returns the scores and, per split, (y_true, y_pred). Raises PredictionsError (one line) on bad predictions.
    """
    table = validate_predictions(source, data.expected, name=name)
    info = property_info(data.property)
    pred = dict(zip(table.mol_id, table.y_pred))
    std = dict(zip(table.mol_id, table.y_std)) if table.y_std is not None else None
    per_split = {}
    arrays = {}
    for split in ("id", "ood"):
        lab = data.labels[data.labels["split"] == split]
        y_true = lab["y"].to_numpy()
        y_pred = np.array([pred[m] for m in lab["mol_id"]])
        y_std = np.array([std[m] for m in lab["mol_id"]]) if std is not None else None
        per_split[split] = split_scores(y_true, y_pred, y_std)
        arrays[split] = (y_true, y_pred)
    ratio = per_split["ood"].rmse / per_split["id"].rmse if per_split["id"].rmse > 0 else float("inf")
    scores = Scores(run_id=rid, model=model, dataset=info.dataset, property=info.name, unit=info.unit, seed=seed,
                    split_sha256=data.split_sha256 or None, id=per_split["id"], ood=per_split["ood"], ood_id_rmse_ratio=ratio)
    return scores, arrays

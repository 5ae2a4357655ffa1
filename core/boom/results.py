"""The results tree: one folder per run, derived from everything that went into it.

``results/<dataset>/<property>/<model>/<run_id>/`` holds task.json, predictions.csv, model_report.json,
record.json, scores.json, log.txt and parity.png.  The run id hashes the model folder, the task data,
the hyperparameters, seed, subset and device, so a rerun of the same inputs is recognised (and
skipped) and a changed input never overwrites an earlier result.
"""
from __future__ import annotations

import json
import shutil
import stat
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Optional, TypeVar

from pydantic import ValidationError

from boom_schema import CONTRACT_VERSION, ModelReport, PredictionsError, RunRecord, Scores, limits
from boom import paths, runfiles
from boom.hashing import sha256_json

#: the files the orchestrator writes into a run folder after the model ran (whatever stands there is replaced)
OWN_FILES = ("record.json", "scores.json", "parity.png")
T = TypeVar("T", RunRecord, Scores)


def run_id(model_hash: str, data_sha: dict[str, str], params: dict[str, Any], seed: int, subset: Optional[str], device: str) -> str:
    return sha256_json({
        "contract": CONTRACT_VERSION, "model": model_hash, "data": data_sha, "params": params,
        "seed": seed, "subset": subset, "device": device,
    })[:16]


def run_dir(dataset: str, prop: str, model: str, rid: str, root: Optional[Path] = None) -> Path:
    return (root or paths.results_dir()) / dataset / prop / model / rid


def _read_own(path: Path, max_bytes: int, model: type[T]) -> Optional[T]:
    """One of the orchestrator's own files as ``model``; None when absent, unsafe (UnsafeEntry) or invalid."""
    try:
        text = runfiles.read_text(path, max_bytes)
        return None if text is None else model.model_validate_json(text)
    except ValueError:
        return None


def read_record(folder: Path) -> Optional[RunRecord]:
    """record.json of a run folder; None when absent, unsafe or not a record (as if absent: the run is redone)."""
    return _read_own(folder / "record.json", limits.RECORD_MAX_BYTES, RunRecord)


def read_scores(folder: Path) -> Optional[Scores]:
    """scores.json of a run folder, None when absent, unsafe or invalid."""
    return _read_own(folder / "scores.json", limits.SCORES_MAX_BYTES, Scores)


def read_model_report(folder: Path) -> Optional[ModelReport]:
    """The model's model_report.json; None when it wrote none.

    Raises :class:`boom.runfiles.UnsafeEntry` (one line) when the file is a link, a FIFO, a device, past
    ``limits.REPORT_MAX_BYTES`` or not a valid report: the run then fails with that reason, never silently.
    """
    text = runfiles.read_text(folder / "model_report.json", limits.REPORT_MAX_BYTES)
    if text is None:
        return None
    try:
        return ModelReport.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise runfiles.UnsafeEntry(f"model_report.json is not a valid report: field '{field}': {first['msg']}") from None


def read_predictions(folder: Path, n_rows: int) -> str:
    """predictions.csv as text for ``boom_schema.validate_predictions``, within ``limits.predictions_max_bytes``.

    Raises :class:`PredictionsError` (one line) when the file is missing, a link, a FIFO, a device or too large.
    """
    try:
        text = runfiles.read_text(folder / "predictions.csv", limits.predictions_max_bytes(n_rows))
    except runfiles.UnsafeEntry as exc:
        raise PredictionsError(str(exc)) from None
    if text is None:
        raise PredictionsError("predictions.csv: file not found (the model wrote no predictions)")
    return text


def check_after_run(folder: Path, disk_gb: float, runner_error: Optional[str] = None) -> list[str]:
    """One-line problems of a run folder the model has just left; an empty list when it is clean.

    Removes links, FIFOs, devices and sockets anywhere in it (``runfiles.sweep``), cuts an oversized log with a
    note (``limits.LOG_MAX_BYTES``), and checks the folder against ``resources.disk_gb`` (``runner_error``: a
    runner's watch that already stopped the model for that says so itself, and is kept instead).
    """
    problems = runfiles.sweep(folder, OWN_FILES)
    runfiles.cap_log(folder / "log.txt")
    over = runfiles.over_disk(folder, disk_gb)
    if runner_error and runfiles.DISK_LIMIT_NAME in runner_error:
        problems.append(runner_error)
    elif over:
        problems.append(over)
    return problems


def iter_runs(root: Optional[Path] = None) -> Iterator[tuple[RunRecord, Optional[Scores], Path]]:
    """Every run folder with a readable record, with its scores when the run succeeded."""
    root = root or paths.results_dir()
    for rec_path in sorted(root.glob("*/*/*/*/record.json")):
        record = read_record(rec_path.parent)
        if record is None:
            continue
        yield record, read_scores(rec_path.parent), rec_path.parent


def archive_previous(folder: Path) -> None:
    """Move an earlier attempt's files to ``previous/<time>/``: a rerun never overwrites what a run wrote."""
    if not folder.exists():
        return
    previous = folder / "previous"
    st = runfiles.lstat(previous)
    if st is not None and not stat.S_ISDIR(st.st_mode):
        runfiles.clear(previous)  # a model's planted link: the earlier files must not move through it
    keep = previous / datetime.now().strftime("%Y%m%dT%H%M%S%f")
    keep.mkdir(parents=True)
    for item in list(folder.iterdir()):
        if item.name != "previous":
            shutil.move(str(item), str(keep / item.name))


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)

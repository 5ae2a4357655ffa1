"""The results tree: one folder per run, derived from everything that went into it.

``results/<dataset>/<property>/<model>/<run_id>/`` holds task.json, predictions.csv, model_report.json,
record.json, scores.json, log.txt and parity.png.  The run id hashes the model folder, the task data,
the hyperparameters, seed, subset and device, so a rerun of the same inputs is recognised (and
skipped) and a changed input never overwrites an earlier result.
"""
from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Optional

from boom_schema import CONTRACT_VERSION, RunRecord, Scores
from boom import paths
from boom.hashing import sha256_json


def run_id(model_hash: str, data_sha: dict[str, str], params: dict[str, Any], seed: int, subset: Optional[str], device: str) -> str:
    return sha256_json({
        "contract": CONTRACT_VERSION, "model": model_hash, "data": data_sha, "params": params,
        "seed": seed, "subset": subset, "device": device,
    })[:16]


def run_dir(dataset: str, prop: str, model: str, rid: str, root: Optional[Path] = None) -> Path:
    return (root or paths.results_dir()) / dataset / prop / model / rid


def read_record(folder: Path) -> Optional[RunRecord]:
    path = folder / "record.json"
    if not path.exists():
        return None
    try:
        return RunRecord.model_validate_json(path.read_text())
    except ValueError:
        return None


def iter_runs(root: Optional[Path] = None) -> Iterator[tuple[RunRecord, Optional[Scores], Path]]:
    """Every run folder with a readable record, with its scores when the run succeeded."""
    root = root or paths.results_dir()
    for rec_path in sorted(root.glob("*/*/*/*/record.json")):
        record = read_record(rec_path.parent)
        if record is None:
            continue
        score_path = rec_path.parent / "scores.json"
        scores = Scores.model_validate_json(score_path.read_text()) if score_path.exists() else None
        yield record, scores, rec_path.parent


def archive_previous(folder: Path) -> None:
    """Move an earlier attempt's files to ``previous/<time>/``: a rerun never overwrites what a run wrote."""
    if not folder.exists():
        return
    keep = folder / "previous" / datetime.now().strftime("%Y%m%dT%H%M%S%f")
    keep.mkdir(parents=True)
    for item in list(folder.iterdir()):
        if item.name != "previous":
            shutil.move(str(item), str(keep / item.name))


def write_json(path: Path, text: str) -> None:
    """Atomic write: a crash never leaves a half-written record."""
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text(text)
    tmp.replace(path)


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)

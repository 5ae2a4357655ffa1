"""Write and submit one job array per matrix submission.

A submission is a folder under the results tree, ``<results>/_slurm/<submission-id>/``:

- ``cells.tsv``: ``index model property seed run_id folder``, one row per array task;
- ``cells.json``: the same cells with what a record needs (hyperparameters, data hashes, the finish time of
  the record the folder held at submission, so a stale record is never taken for this attempt's);
- ``job.sh``: the batch script; array task *i* runs row *i* as ``boom run MODEL PROP --seed S --threads $SLURM_CPUS_PER_TASK``
  followed by the run options (``RunOptions.run_args``), exactly the command that runs a cell locally;
- ``submission.json``: job id, options, Slurm settings; ``logs/<i>.out``: each task's output.

Cells whose record is ok are not submitted (unless ``force``), nor cells queued or running in an
earlier submission, so a resubmission retries only failed (or never finished) cells.
"""
from __future__ import annotations

import json
import math
import os
import secrets
import shlex
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

from boom_schema import RunStatus
from boom import paths, registry, results, runfiles
from boom.matrix import Cell, CellResult
from boom.options import RunOptions
from boom.slurm import commands
from boom.slurm.config import SlurmConfig, format_time, parse_time_s

TIME_MARGIN_S = 600  # data loading, scoring and interpreter start on top of the model's own limit


@dataclass
class SubmittedCell:
    index: int
    model: str
    prop: str
    seed: int
    run_id: str
    folder: str
    dataset: str
    params: dict
    subset: Optional[str]
    data_sha256: dict
    prior: str = ""  # finished_at of the record the folder held at submission ("" if none)

    @property
    def cell(self) -> Cell:
        return Cell(self.model, self.prop, self.seed)


@dataclass
class Submission:
    id: str
    folder: Path
    job_id: str
    cells: list[SubmittedCell]
    runner: str
    device: str
    created_at: str
    options: dict = field(default_factory=dict)
    cancelled_at: Optional[str] = None
    finished_at: Optional[str] = None

    def save(self) -> None:
        meta = {"id": self.id, "job_id": self.job_id, "runner": self.runner, "device": self.device,
                "created_at": self.created_at, "options": self.options, "cancelled_at": self.cancelled_at,
                "finished_at": self.finished_at, "n_cells": len(self.cells)}
        runfiles.write_atomic(self.folder / "submission.json", json.dumps(meta, indent=2))

    @classmethod
    def load(cls, folder: Path) -> "Submission":
        meta = json.loads((folder / "submission.json").read_text())
        cells = [SubmittedCell(**c) for c in json.loads((folder / "cells.json").read_text())]
        return cls(id=meta["id"], folder=folder, job_id=meta["job_id"], cells=cells, runner=meta["runner"],
                   device=meta["device"], created_at=meta["created_at"], options=meta.get("options", {}),
                   cancelled_at=meta.get("cancelled_at"), finished_at=meta.get("finished_at"))


def submissions_root() -> Path:
    return paths.results_dir() / "_slurm"


def all_submissions() -> list[Submission]:
    """Every submission with a job id, oldest first."""
    root = submissions_root()
    out = []
    for meta in sorted(root.glob("*/submission.json")):
        try:
            out.append(Submission.load(meta.parent))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(out, key=lambda s: (s.created_at, s.id))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _new_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def boom_command(cfg: SlurmConfig) -> str:
    return cfg.boom_command or f"{shlex.quote(sys.executable)} -m boom.cli"


def resources(cells: Sequence[SubmittedCell], cfg: SlurmConfig, options: RunOptions) -> dict:
    """The array's request: the largest of the cells' model.yaml resources unless set explicitly.

    CPUs: the config's ``cpus_per_job``, else ``--threads``, else ``--cpus`` (rounded up), else the specs'.
    Memory: ``--memory-gb``, else the config's ``memory_gb``, else the specs'.
    """
    specs = [registry.get(m).spec for m in sorted({c.model for c in cells})]
    cpus = (cfg.cpus_per_job or options.threads or (int(math.ceil(options.cpus)) if options.cpus else None)
            or max(int(math.ceil(s.resources.cpus)) for s in specs))
    mem_gb = options.memory_gb or cfg.memory_gb or max(s.resources.memory_gb for s in specs)
    if cfg.time:
        parse_time_s(cfg.time)  # raises ValueError for a malformed time
        time_limit = cfg.time
    else:
        limit = options.timeout_s or max(s.resources.timeout_s for s in specs)
        time_limit = format_time(limit + max(TIME_MARGIN_S, limit // 10))
    gpus = cfg.gpus_per_job if cfg.gpus_per_job is not None else (1 if options.device == "cuda" else 0)
    return {"cpus": int(cpus), "mem_mb": int(math.ceil(mem_gb * 1024)), "time": time_limit, "gpus": int(gpus)}


def _cells_tsv(cells: Sequence[SubmittedCell]) -> str:
    rows = ["index\tmodel\tproperty\tseed\trun_id\tfolder"]
    rows += [f"{c.index}\t{c.model}\t{c.prop}\t{c.seed}\t{c.run_id}\t{c.folder}" for c in cells]
    return "\n".join(rows) + "\n"


def job_script(sub_dir: Path, sid: str, n: int, res: dict, cfg: SlurmConfig, options: RunOptions) -> str:
    """The batch script: array task i runs ``boom run`` on row i of cells.tsv with ``options.run_args()``.

    Without ``--threads`` a task runs on the CPUs Slurm gave it (``$SLURM_CPUS_PER_TASK``).
    """
    q = shlex.quote
    array = f"0-{n - 1}" + (f"%{cfg.max_parallel}" if cfg.max_parallel else "")
    lines = [
        "#!/bin/bash",
        f"# BOOM-TTE matrix submission {sid}: array task i runs row i of cells.tsv with `boom run`.",
        f"#SBATCH --job-name={cfg.job_name}-{sid}",
        f"#SBATCH --array={array}",
        "#SBATCH --ntasks=1",
        f"#SBATCH --cpus-per-task={res['cpus']}",
        f"#SBATCH --mem={res['mem_mb']}M",
        f"#SBATCH --time={res['time']}",
        f"#SBATCH --output={sub_dir}/logs/%a.out",
        f"#SBATCH --chdir={sub_dir}",
    ]
    if cfg.partition:
        lines.append(f"#SBATCH --partition={cfg.partition}")
    if cfg.account:
        lines.append(f"#SBATCH --account={cfg.account}")
    if res["gpus"]:
        lines.append(f"#SBATCH --gres=gpu:{res['gpus']}")
    lines += [f"#SBATCH {arg}" for arg in cfg.sbatch_args]
    lines += ["", "set -euo pipefail", "# The submitting environment's locations (the results tree must be on a shared filesystem)."]
    env = {"BOOM_RESULTS_DIR": paths.results_dir(), "BOOM_DATA_DIR": paths.data_dir(),
           "BOOM_MODELS_DIR": paths.models_dir(), "BOOM_HOME": paths.repo_root()}
    if paths.raw_dir():
        env["BOOM_RAW_DIR"] = paths.raw_dir()
    lines += [f"export {k}={q(str(v))}" for k, v in env.items()]
    lines += list(cfg.setup)
    threads = [] if options.threads else ["--threads", '"$threads"']
    lines += [
        "",
        f"SUB={q(str(sub_dir))}",
        'row=$(awk -F"\\t" -v i="${SLURM_ARRAY_TASK_ID}" \'NR > 1 && $1 == i {print; exit}\' "$SUB/cells.tsv")',
        'if [ -z "$row" ]; then echo "boom slurm: no cell ${SLURM_ARRAY_TASK_ID} in $SUB/cells.tsv" >&2; exit 2; fi',
        "IFS=$'\\t' read -r index model prop seed run_id folder <<< \"$row\"",
        f'threads="{options.threads or "${SLURM_CPUS_PER_TASK:-1}"}"',
        'echo "boom slurm: cell $index: $model $prop seed $seed (run $run_id) on $(hostname), $threads thread(s)"',
        " ".join([f"exec {boom_command(cfg)} run", '"$model" "$prop" --seed "$seed"', *threads,
                  *(q(a) for a in options.run_args())]),
        "",
    ]
    return "\n".join(lines)


@dataclass
class Prepared:
    """What the submission step decided for each selected cell."""
    to_submit: list[SubmittedCell]
    done: list[CellResult]  # already ok, queued elsewhere, or not runnable


def prepare_cells(selected: Sequence[Cell], options: RunOptions, in_flight: Mapping[str, str],
                  echo: Callable[[str], None] = print) -> Prepared:
    """Plan every cell here (prepares each task's data once, serially) and keep those that need a run."""
    from boom.matrix import plan_cells

    todo: list[SubmittedCell] = []
    done: list[CellResult] = []
    planned, failed = plan_cells(selected, options, echo=echo)
    done.extend(failed.values())
    for p in planned:
        cell = Cell(p.model, p.prop, p.seed)
        rid, folder = p.run_id, p.folder
        rec = results.read_record(folder)
        if rec is not None and rec.status == RunStatus.OK and not options.force:
            res = CellResult(cell, rec.status.value, "", wall_s=rec.wall_s, folder=str(folder), skipped=True)
            _add_scores(res, folder)
            done.append(res)
            continue
        if rid in in_flight:
            done.append(CellResult(cell, "queued", f"already queued in submission {in_flight[rid]}",
                                   folder=str(folder), skipped=True))
            continue
        todo.append(SubmittedCell(len(todo), cell.model, cell.prop, cell.seed, rid, str(folder), p.task.dataset,
                                  dict(p.params), p.data.subset, dict(p.data.sha256), rec.finished_at if rec else ""))
    return Prepared(todo, done)


def _add_scores(res: CellResult, folder: Path) -> None:
    """The cell's ID/OOD RMSE from its scores.json, read through ``results.read_scores`` (a run folder is hostile)."""
    s = results.read_scores(Path(folder))
    if s is not None:
        res.id_rmse, res.ood_rmse = s.id.rmse, s.ood.rmse


def submit(cells: Sequence[SubmittedCell], cfg: SlurmConfig, options: RunOptions) -> Submission:
    """Write the submission folder and ``sbatch`` its array; returns the saved Submission."""
    if not cells:
        raise ValueError("nothing to submit")
    if options.runner == "auto":
        raise ValueError("--runner auto is decided per machine: choose local, docker or apptainer for Slurm jobs")
    sid = _new_id()
    folder = submissions_root() / sid
    (folder / "logs").mkdir(parents=True)
    res = resources(cells, cfg, options)
    (folder / "cells.tsv").write_text(_cells_tsv(cells))
    (folder / "cells.json").write_text(json.dumps([asdict(c) for c in cells], indent=2))
    script = folder / "job.sh"
    script.write_text(job_script(folder, sid, len(cells), res, cfg, options))
    os.chmod(script, 0o755)
    meta = {"run_options": asdict(options), "run_args": options.run_args(), "resources": res,
            "slurm": {k: v for k, v in asdict(cfg).items()}}
    job_id = commands.sbatch(script, ["--export=ALL"])
    created = datetime.now(timezone.utc).isoformat(timespec="microseconds")  # orders same-second submissions
    sub = Submission(sid, folder, job_id, list(cells), options.runner, options.device, created, meta)
    sub.save()
    return sub

"""The one entry point every model builds on: ``boom_kit.run(fit_predict)``.

It reads the task (``python main.py TASK_JSON``), seeds and limits threads, loads train (mol_id,
smiles, y) and the blind, unlabelled test molecules (test.csv), calls the model's ``fit_predict(ctx)``, then
writes ``predictions.csv`` (validated here too, so a model fails fast with the same one-line message
the orchestrator would give) and ``model_report.json``.  Any exception ends the process with status 1
and one line on stderr, which the orchestrator records as the run's reason.
"""
from __future__ import annotations

import json
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import pandas as pd

from boom_schema import ModelReport, Task, Timings, read_test, read_train, validate_predictions
from boom_schema.predictions import write_predictions
from boom_kit import accelerator, params
from boom_kit.runtime import Stopwatch, resolve_device, seed_everything, set_threads, versions


@dataclass
class Output:
    """What ``fit_predict`` returns: predictions aligned with ``ctx.test`` rows, in original units."""

    y_pred: np.ndarray
    y_std: Optional[np.ndarray] = None
    n_parameters: Optional[int] = None
    epochs: Optional[int] = None
    best_epoch: Optional[int] = None
    extra: dict[str, Any] = field(default_factory=dict)
    pretrained: Optional[str] = None  # checkpoint the weights started from; None = trained from scratch


@dataclass
class Context:
    """Everything a model needs for one run."""

    task: Task
    train: pd.DataFrame
    test: pd.DataFrame
    device: str
    stopwatch: Stopwatch
    notes: list[str] = field(default_factory=list)
    artefacts: list[str] = field(default_factory=list)
    defaults: Optional[dict[str, Any]] = None  # model.yaml's defaults: the names param() accepts and their types

    @property
    def seed(self) -> int:
        return self.task.seed

    def param(self, name: str) -> Any:
        """A hyperparameter from the task (spec defaults merged with --set overrides), typed like its default
        in model.yaml; a name model.yaml does not declare is an error (:mod:`boom_kit.params`)."""
        return params.lookup(self.task.hyperparameters, self.defaults, name, self.task.model)

    def declares(self, name: str) -> bool:
        """Whether model.yaml declares ``name`` (for the few knobs a model may leave out, e.g. precision)."""
        return name in (self.task.hyperparameters if self.defaults is None else self.defaults)

    def artefact(self, name: str) -> Path:
        """Path for an extra output file; it is listed in the model report."""
        self.artefacts.append(name)
        return Path(self.task.output_dir) / name

    def note(self, text: str) -> None:
        """A fact the reader of the run record should know (e.g. molecules without a geometry)."""
        self.notes.append(text)
        print(f"note: {text}", file=sys.stderr)


def _read_table(path: Path, blind: bool = False) -> pd.DataFrame:
    """train.csv, or the blind test.csv, checked by ``boom_schema.inputs`` (one-line errors) as a DataFrame."""
    table = read_test(path) if blind else read_train(path)
    columns: dict[str, Any] = {"mol_id": table.mol_id, "smiles": table.smiles}
    if table.y is not None:
        columns["y"] = np.array(table.y, dtype=np.float64)
    return pd.DataFrame(columns)


def load_context(task_path: str | Path, entry_script: Optional[str | Path] = None) -> Context:
    """Read the task and its input tables; seeds and threads are set before anything else.

    The hyperparameters' declared names and types come from the model.yaml beside ``entry_script``
    (default: the running script, ``sys.argv[0]``)."""
    task = Task.model_validate_json(Path(task_path).read_text())
    defaults = params.spec_defaults(entry_script)
    set_threads(task.threads)
    seed_everything(task.seed)
    train = _read_table(task.path("train"))
    test = _read_table(task.path("test"), blind=True)  # blind: ID and OOD together, shuffled
    return Context(task=task, train=train, test=test, device=resolve_device(task.device), stopwatch=Stopwatch(),
                   defaults=defaults)


def finish(ctx: Context, out: Output, packages: Sequence[str], started: float) -> None:
    """Write validated predictions and the model report."""
    task = ctx.task
    y_pred = np.asarray(out.y_pred, dtype=np.float64).reshape(-1)
    if y_pred.shape[0] != len(ctx.test):
        raise ValueError(f"model returned {y_pred.shape[0]} predictions for {len(ctx.test)} test molecules")
    y_std = None if out.y_std is None else np.asarray(out.y_std, dtype=np.float64).reshape(-1)
    Path(task.output_dir).mkdir(parents=True, exist_ok=True)
    write_predictions(task.predictions_path, ctx.test["mol_id"].tolist(), y_pred, y_std)
    validate_predictions(task.predictions_path, set(ctx.test["mol_id"]))
    sw = ctx.stopwatch.seconds
    train_s = sw.get("train")
    timings = Timings(
        featurise_s=sw.get("featurise"), train_s=train_s, predict_s=sw.get("predict"),
        total_s=time.perf_counter() - started, epochs=out.epochs,
        per_epoch_s=(train_s / out.epochs) if (train_s and out.epochs) else None,
    )
    report = ModelReport(
        timings=timings, n_parameters=out.n_parameters, device=ctx.device,
        versions=versions("numpy", "pandas", "scikit-learn", "rdkit", "torch", *packages),
        best_epoch=out.best_epoch, pretrained=out.pretrained, notes=ctx.notes, artefacts=ctx.artefacts, extra=out.extra,
        accelerator=accelerator.report(),
    )
    task.report_path.write_text(report.model_dump_json(indent=2))


def run(fit_predict: Callable[[Context], Output], packages: Sequence[str] = ()) -> None:
    """Entry point of a model script: ``boom_kit.run(fit_predict, packages=['chemprop'])``."""
    if len(sys.argv) != 2:
        print(f"usage: {Path(sys.argv[0]).name} TASK_JSON", file=sys.stderr)
        sys.exit(2)
    started = time.perf_counter()
    try:
        ctx = load_context(sys.argv[1])
        accelerator.configure(ctx.device, ctx.param("precision") if ctx.declares("precision") else None)
        out = fit_predict(ctx)
        finish(ctx, out, packages, started)
    except Exception as exc:  # the orchestrator records this line as the reason
        traceback.print_exc(file=sys.stderr)
        print(f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"predictions": str(ctx.task.predictions_path), "n": int(len(ctx.test))}))

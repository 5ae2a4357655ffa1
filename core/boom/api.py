"""The Python API: load a task as a model sees it, score predictions made anywhere, read the leaderboard.

>>> import boom
>>> task = boom.load_task("density")              # train with labels, the blind test set without
>>> preds = task.test[["mol_id"]].assign(y_pred=task.train["y"].mean())
>>> scores = boom.evaluate("density", preds)       # the same validation and metrics as `boom run`
>>> scores.ood.rmse, scores.ood_id_rmse_ratio

Nothing here has its own copy of the harness: ``load_task`` reads the input folder that ``boom run`` hands a
model (``boom.data.tasks.build``), ``evaluate`` calls the scorer a run uses (``boom.orchestrate.compute_scores``),
and ``leaderboard`` / ``runs`` are the report's tables (``boom.report``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import pandas as pd

from boom_schema import PredictionsError, Scores

EXTERNAL = "external"  # the model name and run id of predictions scored outside a run


@dataclass(frozen=True)
class LoadedTask:
    """One task's inputs, exactly the files a model gets (``task.input_dir``): no test label, no split name.

    ``train``: mol_id, smiles, y (original units). ``test``: mol_id, smiles, the ID and OOD molecules in the
    blind file's seeded shuffled order. ``geometries``: mol_id -> ``boom_kit.geometry.Geometry`` (symbols,
    positions in Angstrom) when loaded, else None; molecules whose conformer failed are absent from it.
    """

    property: str
    dataset: str
    unit: str
    subset: Optional[str]
    train: pd.DataFrame
    test: pd.DataFrame
    geometries: Optional[dict]
    input_dir: Path

    def __iter__(self):
        """``train, test = boom.load_task(...)``."""
        return iter((self.train, self.test))


def _property(prop: str):
    from boom import registry

    try:
        return registry.get_property(prop)  # an unknown name fails with a did-you-mean
    except KeyError as exc:
        raise ValueError(str(exc).strip("'\"")) from None


def _task_data(prop: str, subset: Optional[int], with_geometry: bool = False):
    from boom.data import tasks

    _property(prop)
    return tasks.build(prop, subset=subset, with_geometry=with_geometry)


def load_task(prop: str, subset: Optional[int] = None, geometry: Optional[bool] = None) -> LoadedTask:
    """The train set (with labels) and the blind test set (without) of one property.

    ``subset``: N seeded train molecules and N/4 of each test split (as ``boom run --subset N``; pass the
    same value to :func:`evaluate`). ``geometry``: None loads 3D geometries when the dataset ships them (qm9's
    DFT coordinates), True also for 10k_csd (seeded RDKit conformers, computed and cached on first use; minutes
    on the full set), False never. Data are prepared on first use (``boom data prepare``).
    """
    info = _property(prop)
    want_geometry = info.dataset == "qm9" if geometry is None else bool(geometry)
    data = _task_data(prop, subset, want_geometry)
    from boom_schema.inputs import read_test, read_train  # the readers a model uses (labels read bit for bit)

    tr = read_train(data.input_dir / data.files.train)
    te = read_test(data.input_dir / data.files.test)
    train = pd.DataFrame({"mol_id": tr.mol_id, "smiles": tr.smiles, "y": tr.y})
    test = pd.DataFrame({"mol_id": te.mol_id, "smiles": te.smiles})
    geometries = None
    if want_geometry:
        from boom_kit.geometry import read_extxyz

        geometries = read_extxyz(data.input_dir / data.files.geometries)
    return LoadedTask(property=prop, dataset=info.dataset, unit=info.unit, subset=data.subset, train=train,
                      test=test, geometries=geometries, input_dir=data.input_dir)


def _source(predictions: Union[pd.DataFrame, str, Path]) -> tuple[Union[str, Path], str]:
    """The predictions as validate_predictions takes them (CSV text or a Path) and the name its errors use."""
    if isinstance(predictions, pd.DataFrame):
        return predictions.to_csv(index=False, float_format="%.17g"), "predictions (DataFrame)"
    if isinstance(predictions, (str, Path)):
        path = Path(predictions)
        if not path.is_file():
            what = "is a folder" if path.is_dir() else "no such file"
            raise PredictionsError(f"{path}: {what}; pass the predictions CSV file (mol_id,y_pred[,y_std])")
        return path, path.name
    raise TypeError(f"predictions must be a pandas DataFrame or a path to a CSV file, not {type(predictions).__name__}")


def evaluate(prop: str, predictions: Union[pd.DataFrame, str, Path], subset: Optional[int] = None,
             model: str = EXTERNAL, seed: int = 0) -> Scores:
    """Score predictions of one property's test set, with the validation and metrics of a run.

    ``predictions``: a DataFrame or a CSV path with columns mol_id, y_pred[, y_std], one row per test molecule
    (any order; ``load_task(prop).test`` lists them). ``subset``: the ``subset`` the test set was loaded with.
    Raises :class:`boom_schema.PredictionsError` with the same one-line message a run records (``invalid
    predictions: ...``). Nothing is written.
    """
    from boom.orchestrate import compute_scores

    source, name = _source(predictions)
    data = _task_data(prop, subset)
    try:
        scores, _ = compute_scores(source, data, EXTERNAL, model, seed, name=name)
    except PredictionsError as exc:
        raise PredictionsError(f"invalid predictions: {exc}") from None
    return scores


def leaderboard(root: Optional[Path] = None) -> pd.DataFrame:
    """The leaderboard (one row per configuration and task, seeds aggregated) of a results tree."""
    from boom import report

    return report.leaderboard_frame(root=root)


def runs(root: Optional[Path] = None) -> pd.DataFrame:
    """Every run of a results tree, one row each, with its settings, status and metrics."""
    from boom import report

    return report.runs_frame(root=root)


def scores_frame(scores: Scores) -> pd.DataFrame:
    """A Scores object as a two-row table (split id / ood; n, rmse, mae, r2, spearman, max_error, mean_y_std)."""
    return pd.DataFrame([{"split": s, **getattr(scores, s).model_dump()} for s in ("id", "ood")]).set_index("split")


__all__ = ["LoadedTask", "load_task", "evaluate", "leaderboard", "runs", "scores_frame"]

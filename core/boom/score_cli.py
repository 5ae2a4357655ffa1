"""``boom score PROP FILE``: score predictions made outside the harness (``boom.api.evaluate``)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from boom_schema import PredictionsError


def _cell(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.6g}"


@click.command("score")
@click.argument("prop", metavar="PROPERTY")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--subset", type=click.IntRange(min=2), default=None,
              help="The --subset N the test set was taken with (default: the full task).")
@click.option("--json", "as_json", is_flag=True, help="Print the Scores JSON (as a run's scores.json).")
def score_cmd(prop: str, file: Path, subset: Optional[int], as_json: bool) -> None:
    """Score FILE (mol_id,y_pred[,y_std], one row per test molecule) on PROPERTY's ID and OOD test sets.

    The validation and metrics are those of `boom run`; nothing is written. The molecules to predict are the
    blind test.csv of the task (Python: `boom.load_task(PROP).test`).
    """
    from boom import api

    try:
        scores = api.evaluate(prop, file, subset=subset)
    except (PredictionsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(scores.model_dump_json(indent=2))
        return
    click.echo(f"{scores.property} ({scores.dataset}, {scores.unit}) from {file}")
    click.echo(f"  {'split':<5} {'n':>6} {'rmse':>11} {'mae':>11} {'r2':>9} {'spearman':>9} {'max_error':>11}")
    for name in ("id", "ood"):
        s = getattr(scores, name)
        click.echo(f"  {name:<5} {s.n:>6} {_cell(s.rmse):>11} {_cell(s.mae):>11} {_cell(s.r2):>9} "
                   f"{_cell(s.spearman):>9} {_cell(s.max_error):>11}")
    click.echo(f"  OOD/ID RMSE ratio {scores.ood_id_rmse_ratio:.4g}")

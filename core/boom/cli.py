"""The ``boom`` command line: the product; make targets are thin aliases of these verbs."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import click

from boom_schema import PROPERTIES, RunStatus, SpecError


def _fail(message: str) -> None:
    raise click.ClickException(message)


@click.group()
def main() -> None:
    """BOOM-TTE: out-of-distribution benchmarks for molecular property models."""


@main.group()
def data() -> None:
    """Prepare datasets and their BOOM splits."""


@data.command("prepare")
@click.option("--dataset", type=click.Choice(["all", "10k_csd", "qm9"]), default="all", show_default=True)
@click.option("--raw-dir", type=click.Path(path_type=Path), default=None, envvar="BOOM_RAW_DIR",
              help="Folder with the LLNL CHNO-10k CSVs (else downloaded and checked by sha256).")
@click.option("--force", is_flag=True, help="Recompute even when the manifest is current.")
def data_prepare(dataset: str, raw_dir: Optional[Path], force: bool) -> None:
    """Write molecules, splits and a manifest per dataset (idempotent)."""
    from boom.data.llnl10k import RawDataError
    from boom.data.prepare import DATASETS, prepare

    for name in DATASETS if dataset == "all" else (dataset,):
        started = time.perf_counter()
        try:
            manifest = prepare(name, raw_dir=raw_dir, force=force)
        except (RawDataError, RuntimeError) as exc:
            _fail(str(exc))
        counts = ", ".join(
            f"{p} {c['counts']['train']}/{c['counts']['id']}/{c['counts']['ood']}"
            for p, c in manifest["properties"].items()
        )
        click.echo(f"{name}: {manifest['n_molecules']} molecules; train/id/ood: {counts} "
                   f"({time.perf_counter() - started:.1f} s)")


def _runner(name: str):
    if name == "local":
        from boom.runners.local import LocalRunner

        return LocalRunner()
    from boom.runners import select

    return select(name)


@main.command("run")
@click.argument("model")
@click.argument("prop", metavar="PROPERTY")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a hyperparameter (repeatable).")
@click.option("--runner", "runner_name", type=click.Choice(["local", "docker", "auto"]), default="local", show_default=True)
@click.option("--subset", type=int, default=None, help="Use N train molecules (and N/4 of each test split).")
@click.option("--smoke", is_flag=True, help="Apply the model's smoke settings (tiny CPU run).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--threads", type=int, default=None, help="CPU threads (default: the spec's cpus, at most the cores).")
@click.option("--timeout", "timeout_s", type=int, default=None, help="Wall-clock limit in seconds.")
@click.option("--force", is_flag=True, help="Rerun even if this exact run already succeeded.")
def run_cmd(model: str, prop: str, seed: int, sets: tuple[str, ...], runner_name: str, subset: Optional[int],
            smoke: bool, device: str, threads: Optional[int], timeout_s: Optional[int], force: bool) -> None:
    """Run MODEL on PROPERTY, validate and score its predictions."""
    from boom import registry
    from boom.data.llnl10k import RawDataError
    from boom.orchestrate import RunSetupError, run

    try:
        overrides = registry.parse_overrides(list(sets))
        runner = _runner(runner_name)
        outcome = run(model, prop, runner, seed=seed, overrides=overrides, subset=subset, device=device,
                      threads=threads, timeout_s=timeout_s, force=force, smoke=smoke)
    except (RunSetupError, SpecError, RawDataError, ValueError, RuntimeError) as exc:
        _fail(str(exc))
    rec = outcome.record
    if outcome.skipped:
        click.echo(f"already done (use --force to rerun): {outcome.folder}")
    if rec.status != RunStatus.OK:
        click.echo(f"{model} {prop} seed {seed}: {rec.status.value}: {rec.reason}", err=True)
        click.echo(f"run folder: {outcome.folder}", err=True)
        sys.exit(1)
    s = outcome.scores
    unit = PROPERTIES[prop].unit
    click.echo(f"{model} {prop} seed {seed} ({rec.runner}, {rec.wall_s:.1f} s)")
    click.echo(f"  ID  RMSE {s.id.rmse:.4g} {unit}  MAE {s.id.mae:.4g}  R2 {s.id.r2:.3f}  (n={s.id.n})")
    click.echo(f"  OOD RMSE {s.ood.rmse:.4g} {unit}  MAE {s.ood.mae:.4g}  R2 {s.ood.r2:.3f}  (n={s.ood.n})")
    click.echo(f"  run folder: {outcome.folder}")


@main.command("report")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None, help="Where to write leaderboards.")
def report_cmd(out_dir: Optional[Path]) -> None:
    """Print the leaderboard of all runs and write it as Markdown and CSV."""
    from boom import report

    md, written = report.write(out_dir)
    click.echo(md)
    for path in written:
        click.echo(f"wrote {path}")


@main.group()
def models() -> None:
    """List and check model folders."""


@models.command("list")
def models_list() -> None:
    """Every model folder with its input and tasks."""
    from boom import registry

    try:
        found = registry.discover()
    except SpecError as exc:
        _fail(str(exc))
    for name, entry in found.items():
        s = entry.spec
        click.echo(f"{name:24s} {s.input.value:11s} gpu={s.gpu.value:8s} tasks={len(s.tasks)}/10  {s.description[:60]}")


if __name__ == "__main__":
    main()

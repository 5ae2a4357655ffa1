"""The ``boom`` command line: the product; make targets are thin aliases of these verbs."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import click

from boom import __version__, paths
from boom_schema import CONTRACT_VERSION, PROPERTIES, RunStatus, SpecError
from boom.options import COUNT, RunOptions, SlurmRequest, run_options, slurm_options


def _fail(message: str) -> None:
    raise click.ClickException(message)


class _Group(click.Group):
    """The top-level group: a missing checkout or models folder is a one-line error, not a traceback."""

    def invoke(self, ctx: click.Context):
        from boom.paths import PathsError

        try:
            return super().invoke(ctx)
        except PathsError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group)
@click.version_option(__version__, "--version", prog_name="boom", message=f"%(prog)s %(version)s (contract {CONTRACT_VERSION})")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Prepared data and task folders (same as BOOM_DATA_DIR; default <checkout>/data).")
@click.option("--results-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Run folders and leaderboards (same as BOOM_RESULTS_DIR; default <checkout>/results).")
def main(data_dir: Optional[Path], results_dir: Optional[Path]) -> None:
    """BOOM-TTE: out-of-distribution benchmarks for molecular property models."""
    from boom.runners import stop

    paths.use(data_dir=data_dir, results_dir=results_dir)
    stop.install_handlers()  # Ctrl-C / kill stop the model processes and containers too, not only boom


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


@data.command("verify")
@click.option("--dataset", type=click.Choice(["all", "10k_csd", "qm9"]), default="all", show_default=True)
def data_verify(dataset: str) -> None:
    """Check prepared splits against the pinned benchmark digests and files against their manifest."""
    from boom.data.prepare import DATASETS, verify

    bad = 0
    for name in DATASETS if dataset == "all" else (dataset,):
        for what, ok, detail in verify(name):
            click.echo(f"{'ok  ' if ok else 'FAIL'} {what}: {detail}")
            bad += not ok
    if bad:
        _fail(f"{bad} check(s) failed; 'boom data prepare --force' rewrites the prepared data")


def _feedback(quiet: bool, prefix: str = "  | "):
    """Where a run is, printed when it starts; the model's log lines while it runs unless ``quiet`` (stderr)."""
    from boom.orchestrate import Feedback

    def started(planned, log_path: Path) -> None:
        click.echo(f"{planned.name}: running ({planned.task.threads} thread(s), limit {planned.task.time_budget_s} s)"
                   f"\n  run folder: {planned.folder}\n  log: {log_path}", err=True)

    return Feedback(started=started, log_line=None if quiet else (lambda line: click.echo(line, err=True)),
                    prefix=prefix)


QUIET = click.option("--quiet", "-q", is_flag=True, help="Do not stream the model's log to the terminal.")


@main.command("run")
@click.argument("model")
@click.argument("prop", metavar="PROPERTY")
@run_options(many_seeds=False)
@QUIET
def run_cmd(model: str, prop: str, options: RunOptions, quiet: bool) -> None:
    """Run MODEL on PROPERTY, validate and score its predictions."""
    from boom.data.llnl10k import RawDataError
    from boom.orchestrate import RunSetupError, run

    seed = options.seed
    try:
        outcome = run(model, prop, options.make_runner(), options, feedback=_feedback(quiet))
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
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Export here instead of the results folder: the leaderboards, figures and each counted run's "
                   "record, scores and gzipped predictions (docs/leaderboard.md).")
@click.option("--readme", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also fill this README's block between <!-- results:begin --> and <!-- results:end -->.")
def report_cmd(out_dir: Optional[Path], readme: Optional[Path]) -> None:
    """Print the leaderboard of all runs and write it as Markdown, CSV and HTML with its figures."""
    from boom import report

    try:
        md, written = report.write(out_dir, readme=readme)
    except ValueError as exc:
        _fail(str(exc))
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

    broken = 0
    for name, entry in registry.discover_all().items():
        if isinstance(entry, SpecError):  # one broken folder is a row with its error; the others are still listed
            broken += 1
            click.echo(f"{name:24s} BROKEN      {entry}")
            continue
        s = entry.spec
        click.echo(f"{name:24s} {s.input.value:11s} gpu={s.gpu.value:8s} tasks={len(s.tasks)}/10  {s.description[:60]}")
    if broken:
        click.echo(f"{broken} model folder(s) have an invalid model.yaml (fix the field named above)", err=True)


@models.command("check")
@click.argument("name")
@click.option("--prop", "prop", default=None, help="Property of the smoke run (default: the model's first task).")
@click.option("--runner", "runner_name", type=click.Choice(["local", "docker", "auto"]), default="auto", show_default=True)
@click.option("--no-build", is_flag=True, help="Check spec and image definition only: no image build, no smoke run.")
@click.option("--subset", type=COUNT, default=60, show_default=True, help="Train molecules of the smoke run.")
def models_check(name: str, prop: Optional[str], runner_name: str, no_build: bool, subset: int) -> None:
    """Validate a model folder: spec, image definition, image build and a tiny smoke run."""
    from boom import images, registry
    from boom.orchestrate import RunSetupError, run
    from boom.runners import select

    try:
        entry = registry.get(name)
    except (KeyError, SpecError) as exc:
        _fail(f"spec: {exc}")
    click.echo(f"spec: ok ({entry.spec.input.value}, {len(entry.spec.tasks)}/10 tasks, gpu={entry.spec.gpu.value})")
    problems = images.check_dockerfile(entry)
    for p in problems:
        click.echo(f"dockerfile: {p}", err=True)
    if problems:
        _fail(f"{name}: image definition has problems (see docs/contract.md, 'Model images')")
    source = "its own Dockerfile" if images.own_dockerfile(entry) else "models/_base/model.Dockerfile"
    click.echo(f"dockerfile: ok ({source} on boom-tte/{images.model_base_kind(entry)})")
    if no_build:
        return
    runner = select(runner_name)
    if runner.name == "docker":
        try:
            tag = images.ensure_model(entry, log=sys.stderr)
        except (images.ImageBuildError, images.DaemonUnavailable) as exc:
            _fail(str(exc))
        click.echo(f"image: ok ({tag})")
    prop = prop or entry.spec.tasks[0]
    try:
        outcome = run(name, prop, runner, RunOptions(subset=subset, smoke=True, threads=1, force=True))
    except (RunSetupError, ValueError, RuntimeError) as exc:
        _fail(str(exc))
    rec = outcome.record
    if rec.status != RunStatus.OK:
        _fail(f"smoke run ({runner.name}, {prop}, subset {subset}): {rec.status.value}: {rec.reason}")
    click.echo(f"smoke run: ok ({runner.name}, {prop}, subset {subset}, OOD RMSE {outcome.scores.ood.rmse:.4g}, "
               f"{rec.wall_s:.1f} s) {outcome.folder}")


@main.command("matrix")
@click.option("--models", "models_", default=None, help="Comma-separated models (default: all).")
@click.option("--props", default=None, help="Comma-separated properties (default: every one a model supports).")
@run_options(many_seeds=True)
@click.option("--jobs", type=COUNT, default=1, show_default=True, help="Runs in parallel; cores are divided between them.")
@QUIET
@click.option("--strict", is_flag=True, help="Exit 1 when any cell failed (default: failures are rows, exit 0).")
@click.option("--no-report", is_flag=True, help="Do not write the leaderboard at the end.")
@click.option("--executor", type=click.Choice(["local", "slurm"]), default="local", show_default=True,
              help="Run cells here, or submit them to Slurm as one job array (settings: ~/.config/boom/slurm.toml).")
@slurm_options
def matrix_cmd(models_: Optional[str], props: Optional[str], options: RunOptions, jobs: int, quiet: bool,
               strict: bool, no_report: bool, executor: str, slurm: SlurmRequest) -> None:
    """Run every (model, property, seed) the specs support; finished runs are skipped, so reruns resume."""
    from boom import matrix

    if executor == "slurm" or slurm.wanted:
        from boom.slurm.cli import matrix_slurm

        matrix_slurm(models_, props, options, slurm, strict=strict, write_report=not no_report)
        return
    try:
        selected = matrix.cells_for(models_, props, options)
        runner = options.make_runner()
    except (ValueError, SpecError) as exc:
        _fail(str(exc))
    click.echo(f"matrix: {len(selected)} cells, {jobs} job(s), {options.threads or matrix.threads_per_job(jobs)} "
               f"thread(s) per job, runner {runner.name}")
    log_line = None if quiet else (lambda line: click.echo(line, err=True))
    results = matrix.run_matrix(selected, runner, options, jobs=jobs, echo=click.echo, log_line=log_line)
    if not matrix.conclude(results, not no_report, click.echo) and strict:
        sys.exit(1)


@main.command("compose")
@click.option("--check", is_flag=True, help="Exit 1 when compose.yaml is not what `boom compose` would write.")
@click.option("--stdout", "to_stdout", is_flag=True, help="Print instead of writing compose.yaml.")
def compose_cmd(check: bool, to_stdout: bool) -> None:
    """Generate compose.yaml from models/ (one service per model, then the report)."""
    from boom import compose

    try:
        if to_stdout:
            click.echo(compose.generate(), nl=False)
            return
        if check:
            if compose.check():
                click.echo(f"{compose.compose_path()} is up to date")
                return
            click.echo(f"{compose.compose_path()} is stale: run `boom compose` and commit it", err=True)
            sys.exit(1)
        click.echo(f"wrote {compose.write()}")
    except SpecError as exc:
        _fail(str(exc))


from boom.cache_cli import cache_group  # noqa: E402  (its own module: the feature cache)
main.add_command(cache_group)
from boom.score_cli import score_cmd  # noqa: E402  (its own module: scoring predictions made elsewhere)
main.add_command(score_cmd)


if __name__ == "__main__":
    main()

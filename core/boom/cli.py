"""The ``boom`` command line: the product; make targets are thin aliases of these verbs."""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Optional

import click

from boom import __version__, paths
from boom_schema import CONTRACT_VERSION, PROPERTIES, RunStatus, SpecError


# Numeric options are range-checked by click, so a mistake is a one-line "Invalid value for '--x'" naming the range
# (``--subset 0`` once started a full-data run, ``--threads 0`` was read as "not given", ``--seed -1`` hung).
SEED = click.IntRange(min=0)
COUNT = click.IntRange(min=1)  # molecules, threads, seconds, jobs
GPUS = click.IntRange(min=0)
POSITIVE = click.FloatRange(min=0, min_open=True)


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _seeds_option(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[str]:
    """``--seeds`` is ``0,1,2`` or ``0-4`` (seeds >= 0, a range low-high with low <= high)."""
    if value is None:
        return value
    for part in (p.strip() for p in value.split(",")):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise click.BadParameter(f"{part!r} is not a seed (an integer >= 0) or a range like 0-4", ctx, param)
    return value


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


def _runner(name: str):
    if name == "local":
        from boom.runners.local import LocalRunner

        return LocalRunner()
    from boom.runners import select

    return select(name)


@main.command("run")
@click.argument("model")
@click.argument("prop", metavar="PROPERTY")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a hyperparameter (repeatable).")
@click.option("--runner", "runner_name", type=click.Choice(["local", "docker", "apptainer", "auto"]), default="local", show_default=True)
@click.option("--subset", type=COUNT, default=None, help="Use N train molecules (and N/4 of each test split).")
@click.option("--train-subset", type=COUNT, default=None,
              help="Use N seeded train molecules and the FULL ID and OOD test sets (comparable to full runs).")
@click.option("--smoke", is_flag=True, help="Apply the model's smoke settings (tiny CPU run).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--threads", type=COUNT, default=None, help="CPU threads (default: the spec's cpus, at most the cores).")
@click.option("--timeout", "timeout_s", type=COUNT, default=None, help="Wall-clock limit in seconds.")
@click.option("--force", is_flag=True, help="Rerun even if this exact run already succeeded.")
def run_cmd(model: str, prop: str, seed: int, sets: tuple[str, ...], runner_name: str, subset: Optional[int],
            train_subset: Optional[int], smoke: bool, device: str, threads: Optional[int], timeout_s: Optional[int], force: bool) -> None:
    """Run MODEL on PROPERTY, validate and score its predictions."""
    from boom import registry
    from boom.data.llnl10k import RawDataError
    from boom.orchestrate import RunSetupError, run

    try:
        overrides = registry.parse_overrides(list(sets))
        runner = _runner(runner_name)
        outcome = run(model, prop, runner, seed=seed, overrides=overrides, subset=subset, train_subset=train_subset,
                      device=device,
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
@click.option("--no-build", is_flag=True, help="Check spec and Dockerfile only: no image build, no smoke run.")
@click.option("--subset", type=COUNT, default=60, show_default=True, help="Train molecules of the smoke run.")
def models_check(name: str, prop: Optional[str], runner_name: str, no_build: bool, subset: int) -> None:
    """Validate a model folder: spec, Dockerfile convention, image build and a tiny smoke run."""
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
        _fail(f"{name}: Dockerfile does not follow the convention (see models/rf/Dockerfile)")
    click.echo(f"dockerfile: ok (on boom-tte/{images.model_base_kind(entry)})")
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
        outcome = run(name, prop, runner, subset=subset, smoke=True, threads=1, force=True)
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
@click.option("--seeds", default=None, callback=_seeds_option, help="Seeds, e.g. 0,1,2 or 0-4 (default: each spec's `seeds`).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a hyperparameter of every model (repeatable).")
@click.option("--jobs", type=COUNT, default=1, show_default=True, help="Runs in parallel; cores are divided between them.")
@click.option("--runner", "runner_name", type=click.Choice(["local", "docker", "apptainer", "auto"]), default="local", show_default=True)
@click.option("--subset", type=COUNT, default=None, help="Use N train molecules (and N/4 of each test split).")
@click.option("--train-subset", type=COUNT, default=None,
              help="Use N seeded train molecules and the full ID and OOD test sets (local executor).")
@click.option("--smoke", is_flag=True, help="Apply each model's smoke settings.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--threads", type=COUNT, default=None, help="Threads per run (default: cores // jobs).")
@click.option("--timeout", "timeout_s", type=COUNT, default=None, help="Wall-clock limit per run in seconds.")
@click.option("--memory-gb", type=POSITIVE, default=None, help="Container memory limit (docker runner; default: spec).")
@click.option("--cpus", type=POSITIVE, default=None, help="Container CPU limit (docker runner; default: threads).")
@click.option("--force", is_flag=True, help="Rerun cells that already succeeded.")
@click.option("--strict", is_flag=True, help="Exit 1 when any cell failed (default: failures are rows, exit 0).")
@click.option("--no-report", is_flag=True, help="Do not write the leaderboard at the end.")
@click.option("--executor", type=click.Choice(["local", "slurm"]), default="local", show_default=True,
              help="Run cells here, or submit them to Slurm as one job array (settings: ~/.config/boom/slurm.toml).")
@click.option("--partition", default=None, help="Slurm partition (default: config / BOOM_SLURM_PARTITION).")
@click.option("--account", default=None, help="Slurm account (default: config / BOOM_SLURM_ACCOUNT).")
@click.option("--gpus-per-job", type=GPUS, default=None, help="GPUs per Slurm job (default: 1 with --device cuda).")
@click.option("--time", "time_limit", default=None, help="Slurm time limit per cell, e.g. 04:00:00 (default: spec).")
@click.option("--max-parallel", type=COUNT, default=None, help="Slurm array tasks running at once.")
@click.option("--status", "show_status", is_flag=True, help="Slurm: show pending/running/done/failed per cell.")
@click.option("--cancel", "do_cancel", is_flag=True, help="Slurm: cancel the unfinished submissions of these cells.")
@click.option("--no-wait", is_flag=True, help="Slurm: submit and return (follow with --status).")
def matrix_cmd(models_: Optional[str], props: Optional[str], seeds: Optional[str], sets: tuple[str, ...], jobs: int,
               runner_name: str,
               subset: Optional[int], train_subset: Optional[int], smoke: bool, device: str, threads: Optional[int],
               timeout_s: Optional[int], memory_gb: Optional[float], cpus: Optional[float], force: bool, strict: bool, no_report: bool,
               executor: str, partition: Optional[str], account: Optional[str], gpus_per_job: Optional[int],
               time_limit: Optional[str], max_parallel: Optional[int], show_status: bool, do_cancel: bool,
               no_wait: bool) -> None:
    """Run every (model, property, seed) the specs support; finished runs are skipped, so reruns resume."""
    from boom import matrix, registry
    from boom.runners import select

    slurm = executor == "slurm" or show_status or do_cancel
    if slurm and train_subset is not None:
        _fail("--train-subset is not yet passed to Slurm jobs; run these cells with --executor local, or use --subset")
    try:
        overrides = registry.parse_overrides(list(sets))
    except ValueError as exc:
        _fail(str(exc))
    if slurm:
        from boom.slurm.cli import matrix_slurm

        # keywords, not positions: the overrides were once dropped here by a positional mismatch
        matrix_slurm(models_, props, seeds, runner_name, subset, smoke, device, threads, timeout_s, force, strict,
                     no_report, partition, account, gpus_per_job, time_limit, max_parallel, show_status, do_cancel,
                     no_wait, memory_gb=memory_gb, overrides=overrides)
        return
    try:
        selected = matrix.cells(matrix.parse_list(models_), matrix.parse_list(props), matrix.parse_seeds(seeds))
        options = {k: v for k, v in {"memory_gb": memory_gb, "cpus": cpus}.items() if v is not None}
        runner = select(runner_name, **options) if runner_name != "local" else select("local")
    except (ValueError, SpecError) as exc:
        _fail(str(exc))
    click.echo(f"matrix: {len(selected)} cells, {jobs} job(s), {threads or matrix.threads_per_job(jobs)} thread(s) "
               f"per job, runner {runner.name}")
    results = matrix.run_matrix(selected, runner, jobs=jobs, overrides=overrides, subset=subset,
                                train_subset=train_subset, smoke=smoke,
                                device=device, timeout_s=timeout_s, force=force, threads=threads, echo=click.echo)
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

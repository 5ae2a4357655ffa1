"""One run description, from the command line to every executor.

:class:`RunOptions` is everything a user chooses about a run besides *which* cells: seeds, data subset, smoke,
device, threads, timeout, ``--set`` overrides, container limits, runner, force.  The click decorator
:func:`run_options` builds it once for ``boom run`` and ``boom matrix`` (same flags, same checks, same help);
``orchestrate``, ``matrix`` and ``slurm`` take the value instead of a dozen loose parameters.  A Slurm array task
gets it back as ``boom run`` arguments (:meth:`RunOptions.run_args`, parsed again by :func:`parse_run_args`:
a round trip the tests check).  :func:`slurm_options` groups the Slurm flags of ``boom matrix`` the same way
(:class:`SlurmRequest`); it lives here so that starting the command line does not import the Slurm executor.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Optional, Sequence

import click

RUNNERS = ("local", "docker", "apptainer", "auto")
DEVICES = ("cpu", "cuda")

# Numeric options are range-checked by click, so a mistake is a one-line "Invalid value for '--x'" naming the range
# (``--subset 0`` once started a full-data run, ``--threads 0`` was read as "not given", ``--seed -1`` hung).
SEED = click.IntRange(min=0)
COUNT = click.IntRange(min=1)  # molecules, threads, seconds, jobs
POSITIVE = click.FloatRange(min=0, min_open=True)
GPUS = click.IntRange(min=0)


@dataclass(frozen=True)
class RunOptions:
    """How to run a cell (not which cells).  ``seeds`` None: each model's ``seeds`` from its spec (matrix)."""

    seeds: Optional[tuple[int, ...]] = None
    overrides: tuple[tuple[str, str], ...] = ()  # --set KEY=VALUE, sorted by key (a dict is accepted)
    subset: Optional[int] = None
    train_subset: Optional[int] = None
    smoke: bool = False
    device: str = "cpu"
    threads: Optional[int] = None  # None: the spec's cpus, at most the cores (matrix: cores // jobs)
    timeout_s: Optional[int] = None  # None: the spec's resources.timeout_s
    memory_gb: Optional[float] = None  # container memory limit (docker; Slurm --mem); None: the spec's
    cpus: Optional[float] = None  # container CPU limit (docker); None: the threads
    runner: str = "local"
    force: bool = False

    def __post_init__(self) -> None:
        pairs = self.overrides.items() if isinstance(self.overrides, Mapping) else self.overrides
        object.__setattr__(self, "overrides", tuple(sorted((str(k), str(v)) for k, v in pairs)))
        if self.seeds is not None:
            object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if self.device not in DEVICES:
            raise ValueError(f"device {self.device!r}: expected one of {', '.join(DEVICES)}")
        if self.runner not in RUNNERS:
            raise ValueError(f"unknown runner {self.runner!r}; expected one of {', '.join(RUNNERS)}")

    @property
    def params(self) -> dict[str, str]:
        """The ``--set`` overrides as a dict (what ``registry.merge_params`` takes)."""
        return dict(self.overrides)

    @property
    def seed(self) -> int:
        """The one seed of a single run (``boom run --seed``); 0 when none was chosen."""
        if self.seeds and len(self.seeds) > 1:
            raise ValueError(f"one run has one seed, not {list(self.seeds)}")
        return self.seeds[0] if self.seeds else 0

    def but(self, **changes: Any) -> "RunOptions":
        return replace(self, **changes)

    def make_runner(self):
        """The runner object named by ``runner`` (container limits go to the Docker runner)."""
        from boom.runners import select

        if self.runner in ("docker", "auto"):
            limits = {k: v for k, v in (("memory_gb", self.memory_gb), ("cpus", self.cpus)) if v is not None}
            return select(self.runner, **limits)
        return select(self.runner)

    def run_args(self) -> list[str]:
        """These options as ``boom run`` arguments, seeds left out (each Slurm array task passes its cell's)."""
        args = ["--runner", self.runner, "--device", self.device]
        for flag, value in (("--subset", self.subset), ("--train-subset", self.train_subset),
                            ("--threads", self.threads), ("--timeout", self.timeout_s),
                            ("--memory-gb", self.memory_gb), ("--cpus", self.cpus)):
            if value is not None:
                args += [flag, repr(value) if isinstance(value, float) else str(value)]
        if self.smoke:
            args.append("--smoke")
        if self.force:
            args.append("--force")
        for key, value in self.overrides:
            args += ["--set", f"{key}={value}"]
        return args


def parse_seeds(text: Optional[str]) -> Optional[tuple[int, ...]]:
    """``0,1,2`` or ``0-4`` (seeds >= 0, a range low-high with low <= high); None stays None."""
    if text is None or not text.strip():
        return None
    out: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise ValueError(f"{part!r} is not a seed (an integer >= 0) or a range like 0-4")
        lo = int(m.group(1))
        out.update(range(lo, int(m.group(2) or lo) + 1))
    return tuple(sorted(out))


def _seeds_callback(ctx: click.Context, param: click.Parameter, value: Optional[str]):
    try:
        return parse_seeds(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def run_options(many_seeds: bool, runner_help: str = "") -> Callable[[Callable], Callable]:
    """The run flags of ``boom run`` (``--seed``) and ``boom matrix`` (``--seeds``); the command gets ``options``."""
    seed_option = (
        click.option("--seeds", "seeds", default=None, callback=_seeds_callback,
                     help="Seeds, e.g. 0,1,2 or 0-4 (default: each spec's `seeds`).")
        if many_seeds else click.option("--seed", "seeds", type=SEED, default=0, show_default=True))
    flags = [
        seed_option,
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a hyperparameter (repeatable)."),
        click.option("--runner", "runner_name", type=click.Choice(RUNNERS), default="local", show_default=True,
                     help=runner_help or None),
        click.option("--subset", type=COUNT, default=None, help="Use N train molecules (and N/4 of each test split)."),
        click.option("--train-subset", type=COUNT, default=None,
                     help="Use N seeded train molecules and the FULL ID and OOD test sets (comparable to full runs)."),
        click.option("--smoke", is_flag=True, help="Apply the model's smoke settings (tiny CPU run)."),
        click.option("--device", type=click.Choice(DEVICES), default="cpu", show_default=True),
        click.option("--threads", type=COUNT, default=None,
                     help="CPU threads per run (default: the spec's cpus, at most the cores; matrix: cores // jobs)."),
        click.option("--timeout", "timeout_s", type=COUNT, default=None, help="Wall-clock limit per run in seconds."),
        click.option("--memory-gb", type=POSITIVE, default=None,
                     help="Memory limit per run (docker container, Slurm --mem; default: the spec's)."),
        click.option("--cpus", type=POSITIVE, default=None, help="Container CPU limit (docker runner; default: threads)."),
        click.option("--force", is_flag=True, help="Rerun even if this exact run already succeeded."),
    ]

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def wrapper(*args, seeds, sets, runner_name, subset, train_subset, smoke, device, threads, timeout_s,
                    memory_gb, cpus, force, **kwargs):
            from boom import registry

            try:
                overrides = registry.parse_overrides(list(sets))
            except ValueError as exc:
                raise click.ClickException(str(exc)) from None
            options = RunOptions(
                seeds=(seeds,) if isinstance(seeds, int) else seeds, overrides=overrides, subset=subset,
                train_subset=train_subset, smoke=smoke, device=device, threads=threads, timeout_s=timeout_s,
                memory_gb=memory_gb, cpus=cpus, runner=runner_name, force=force)
            return command(*args, options=options, **kwargs)

        for flag in reversed(flags):
            wrapper = flag(wrapper)
        return wrapper

    return decorate


@dataclass(frozen=True)
class SlurmRequest:
    """The Slurm flags of ``boom matrix``: settings for ``slurm.load_config`` and what to do."""

    settings: dict = field(default_factory=dict)  # partition, account, gpus_per_job, time, max_parallel
    show_status: bool = False
    do_cancel: bool = False
    wait: bool = True

    @property
    def wanted(self) -> bool:
        return self.show_status or self.do_cancel


def slurm_options(command: Callable) -> Callable:
    """The Slurm flags of ``boom matrix``; the command gets them as one ``slurm`` value (a SlurmRequest)."""
    flags = [
        click.option("--partition", default=None, help="Slurm partition (default: config / BOOM_SLURM_PARTITION)."),
        click.option("--account", default=None, help="Slurm account (default: config / BOOM_SLURM_ACCOUNT)."),
        click.option("--gpus-per-job", type=GPUS, default=None, help="GPUs per Slurm job (default: 1 with --device cuda)."),
        click.option("--time", "time_limit", default=None,
                     help="Slurm time limit per cell, e.g. 04:00:00 (default: spec)."),
        click.option("--max-parallel", type=COUNT, default=None, help="Slurm array tasks running at once."),
        click.option("--status", "show_status", is_flag=True, help="Slurm: show pending/running/done/failed per cell."),
        click.option("--cancel", "do_cancel", is_flag=True,
                     help="Slurm: cancel the unfinished submissions of these cells."),
        click.option("--no-wait", is_flag=True, help="Slurm: submit and return (follow with --status)."),
    ]

    @functools.wraps(command)
    def wrapper(*args, partition, account, gpus_per_job, time_limit, max_parallel, show_status, do_cancel, no_wait,
                **kwargs):
        settings = {"partition": partition, "account": account, "gpus_per_job": gpus_per_job, "time": time_limit,
                    "max_parallel": max_parallel}
        return command(*args, slurm=SlurmRequest(settings, show_status, do_cancel, not no_wait), **kwargs)

    for flag in reversed(flags):
        wrapper = flag(wrapper)
    return wrapper


@click.command("run")
@click.argument("model")
@click.argument("prop")
@run_options(many_seeds=False)
def _run_parser(model: str, prop: str, options: RunOptions) -> tuple[str, str, RunOptions]:
    return model, prop, options


def parse_run_args(args: Sequence[str]) -> tuple[str, str, RunOptions]:
    """``MODEL PROPERTY [boom run options]`` -> (model, property, RunOptions): what ``boom run`` makes of them."""
    return _run_parser.main(list(args), standalone_mode=False)

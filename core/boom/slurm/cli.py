"""``boom matrix --executor slurm`` / ``--status`` / ``--cancel``: the click command delegates here."""
from __future__ import annotations

import sys
from typing import Optional

import click

from boom_schema import SpecError


def matrix_slurm(models_: Optional[str], props: Optional[str], seeds: Optional[str], runner_name: str,
                 subset: Optional[int], smoke: bool, device: str, threads: Optional[int], timeout_s: Optional[int],
                 force: bool, strict: bool, no_report: bool, partition: Optional[str], account: Optional[str],
                 gpus_per_job: Optional[int], time_limit: Optional[str], max_parallel: Optional[int],
                 show_status: bool, do_cancel: bool, no_wait: bool, memory_gb: Optional[float] = None,
                 overrides: Optional[dict] = None) -> None:
    from boom import matrix
    from boom import slurm
    from boom.slurm.commands import SlurmError

    restricted = any((models_, props, seeds))
    try:
        selected = matrix.cells(matrix.parse_list(models_), matrix.parse_list(props), matrix.parse_seeds(seeds))
        if show_status or do_cancel:
            chosen = selected if restricted else None
            if do_cancel:
                click.echo(slurm.cancel_cells(chosen))
            if show_status:
                click.echo(slurm.status(chosen))
            return
        if runner_name == "auto":
            raise click.ClickException("--runner auto is decided per machine: choose local or docker for Slurm jobs")
        cfg = slurm.load_config({"partition": partition, "account": account, "gpus_per_job": gpus_per_job,
                                 "time": time_limit, "max_parallel": max_parallel, "memory_gb": memory_gb})
        click.echo(f"matrix: {len(selected)} cells, executor slurm, runner {runner_name}")
        _, results = slurm.run_matrix(selected, runner_name, cfg, overrides=overrides, subset=subset, smoke=smoke,
                                      device=device, timeout_s=timeout_s, force=force, threads=threads,
                                      wait=not no_wait, echo=click.echo)
    except (ValueError, SpecError, SlurmError) as exc:
        raise click.ClickException(str(exc)) from None
    if no_wait:
        return
    if not matrix.conclude(results, not no_report, click.echo) and strict:
        sys.exit(1)

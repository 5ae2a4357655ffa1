"""``boom matrix --executor slurm`` / ``--status`` / ``--cancel``: the click command delegates here."""
from __future__ import annotations

import sys
from typing import Optional

import click

from boom_schema import SpecError
from boom.options import RunOptions, SlurmRequest


def matrix_slurm(models_: Optional[str], props: Optional[str], options: RunOptions, request: SlurmRequest,
                 strict: bool = False, write_report: bool = True) -> None:
    """Submit (and follow) the matrix, or show / cancel its submissions."""
    from boom import matrix
    from boom import slurm
    from boom.slurm.commands import SlurmError

    restricted = any((models_, props, options.seeds))
    try:
        selected = matrix.cells_for(models_, props, options)
        if request.wanted:
            chosen = selected if restricted else None
            if request.do_cancel:
                click.echo(slurm.cancel_cells(chosen))
            if request.show_status:
                click.echo(slurm.status(chosen))
            return
        if options.runner == "auto":
            raise click.ClickException("--runner auto is decided per machine: choose local or docker for Slurm jobs")
        cfg = slurm.load_config({**request.settings, "memory_gb": options.memory_gb})
        click.echo(f"matrix: {len(selected)} cells, executor slurm, runner {options.runner}")
        _, results = slurm.run_matrix(selected, cfg, options, wait=request.wait, echo=click.echo)
    except (ValueError, SpecError, SlurmError) as exc:
        raise click.ClickException(str(exc)) from None
    if not request.wait:
        return
    if not matrix.conclude(results, write_report, click.echo) and strict:
        sys.exit(1)

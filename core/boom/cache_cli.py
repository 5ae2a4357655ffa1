"""``boom cache``: see and clear the shared feature cache (``boom.cache``)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from boom_schema.limits import describe_bytes
from boom import cache


def _root(path: Optional[Path]) -> Path:
    root = path or cache.cache_dir()
    if root is None:
        raise click.ClickException(f"the feature cache is off ({cache.ENV}=off); set {cache.ENV} to a folder or "
                                   f"pass --path")
    return root


_path_option = click.option("--path", type=click.Path(path_type=Path, file_okay=False), default=None,
                            help="Cache folder (default: $BOOM_FEATURE_CACHE, else <data dir>/feature-cache).")


@click.group("cache")
def cache_group() -> None:
    """The shared feature cache: descriptor rows computed once per molecule and featuriser version."""


@cache_group.command("list")
@_path_option
def cache_list(path: Optional[Path]) -> None:
    """Size and molecules per featuriser."""
    root = _root(path)
    rows = cache.summary(root)
    click.echo(f"feature cache: {root}")
    if not rows:
        click.echo("  (empty)")
        return
    click.echo(f"  {'featuriser':<34} {'versions':<18} {'molecules':>10} {'segments':>9} {'size':>10}")
    for r in rows:
        versions = ",".join(f"{k} {v}" for k, v in sorted(r.versions.items())) or "-"
        click.echo(f"  {r.folder:<34} {versions:<18} {r.entries:>10} {r.segments:>9} {describe_bytes(r.bytes):>10}")
        if r.corrupt:
            click.echo(f"    {r.corrupt} corrupt segment(s): ignored by readers, removed by the next writer")
    click.echo(f"  total {describe_bytes(sum(r.bytes for r in rows))}")


@cache_group.command("clear")
@_path_option
@click.option("--featuriser", default=None, help="Only this featuriser (name, e.g. rdkit-descriptors, or folder).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def cache_clear(path: Optional[Path], featuriser: Optional[str], yes: bool) -> None:
    """Delete cached features (all, or one featuriser's); runs recompute them when needed."""
    root = _root(path)
    what = f"the {featuriser} features" if featuriser else "every cached feature"
    if not yes:
        click.confirm(f"delete {what} in {root}?", abort=True)
    folders, freed = cache.clear(root, featuriser)
    if featuriser and not folders:
        raise click.ClickException(f"no featuriser {featuriser!r} in {root}; `boom cache list` shows what is there")
    click.echo(f"removed {folders} featuriser folder(s), {describe_bytes(freed)} from {root}")

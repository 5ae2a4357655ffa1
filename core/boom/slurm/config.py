"""Slurm settings: built-in defaults < config file < ``BOOM_SLURM_*`` environment < command-line options.

The config file is ``$BOOM_SLURM_CONFIG`` if set, else ``~/.config/boom/slurm.toml`` (``$XDG_CONFIG_HOME``
respected); keys at the top level or under ``[slurm]``, e.g.::

    partition = "gpu"
    account = "chem"
    time = "04:00:00"          # default: the largest resources.timeout_s of the cells, plus a margin
    max_parallel = 20          # array tasks running at once (%K)
    setup = ["module load cuda/12.4", "source /shared/boom/.venv/bin/activate"]
    boom_command = "boom"      # default: this Python with -m boom.cli
    sbatch_args = ["--qos=normal"]

Each key can also be given as ``BOOM_SLURM_<KEY>`` (upper case; lists separated by ``;``).  Nothing here
names a site path: defaults come from the environment the matrix is submitted from.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping, Optional

ENV_PREFIX = "BOOM_SLURM_"


@dataclass(frozen=True)
class SlurmConfig:
    partition: Optional[str] = None
    account: Optional[str] = None
    gpus_per_job: Optional[int] = None  # default: 1 for --device cuda, else none
    time: Optional[str] = None  # Slurm time (HH:MM:SS, MM:SS, D-HH:MM...); default from the specs
    max_parallel: Optional[int] = None
    cpus_per_job: Optional[int] = None  # default: --threads, else the largest spec resources.cpus
    memory_gb: Optional[float] = None  # default: the largest spec resources.memory_gb
    setup: tuple[str, ...] = ()  # shell lines run in the job before `boom run`
    boom_command: Optional[str] = None  # default: "<this python> -m boom.cli"
    sbatch_args: tuple[str, ...] = ()
    poll_s: float = 10.0
    job_name: str = "boom"


_INT = {"gpus_per_job", "max_parallel", "cpus_per_job"}
_FLOAT = {"memory_gb", "poll_s"}
_LIST = {"setup", "sbatch_args"}


def config_path() -> Path:
    env = os.environ.get("BOOM_SLURM_CONFIG")
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "boom" / "slurm.toml"


def _coerce(key: str, value: Any) -> Any:
    if value is None:
        return None
    if key in _LIST:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(";") if v.strip())
        return tuple(str(v) for v in value)
    if key in _INT:
        return int(value)
    if key in _FLOAT:
        return float(value)
    return str(value)


def _read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # pragma: no cover
        import tomli as tomllib  # type: ignore[no-redef]
    data = tomllib.loads(path.read_text())
    data = data.get("slurm", data)
    known = {f.name for f in fields(SlurmConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown Slurm setting(s) {unknown}; known: {sorted(known)}")
    return data


def load(overrides: Optional[Mapping[str, Any]] = None, env: Optional[Mapping[str, str]] = None) -> SlurmConfig:
    """The effective settings; ``overrides`` (command-line options) win where not None."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    values.update(_read_file(config_path()))
    for f in fields(SlurmConfig):
        raw = env.get(ENV_PREFIX + f.name.upper())
        if raw not in (None, ""):
            values[f.name] = raw
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
    cfg = SlurmConfig()
    return replace(cfg, **{k: _coerce(k, v) for k, v in values.items()})


def parse_time_s(text: str) -> int:
    """Seconds of a Slurm time string: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S."""
    text = text.strip()
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
        parts = [int(p) for p in text.split(":")]
        parts += [0] * (3 - len(parts))
        h, m, s = parts
    else:
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 1:
            h, m, s = 0, parts[0], 0
        elif len(parts) == 2:
            h, m, s = 0, parts[0], parts[1]
        else:
            h, m, s = parts
    return days * 86400 + h * 3600 + m * 60 + s


def format_time(seconds: int) -> str:
    """Slurm's D-HH:MM:SS (minutes rounded up: Slurm's limits are whole minutes)."""
    minutes = max(1, -(-int(seconds) // 60))
    d, rest = divmod(minutes * 60, 86400)
    h, rest = divmod(rest, 3600)
    m = rest // 60
    return f"{d}-{h:02d}:{m:02d}:00" if d else f"{h:02d}:{m:02d}:00"

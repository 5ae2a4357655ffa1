"""Runners execute one model process for one task; the orchestrator does the rest uniformly."""
from __future__ import annotations

import sys

from boom.runners.base import Execution, Runner

__all__ = ["Execution", "Runner", "select"]


def select(name: str, **options) -> Runner:
    """The runner called ``name``: ``local``, ``docker``, ``apptainer`` (HPC sites; untested here), or ``auto`` (Docker when a daemon answers, else
    local; it says which on stderr).  ``options`` (memory_gb, cpus) go to the Docker runner."""
    if name == "local":
        from boom.runners.local import LocalRunner

        return LocalRunner()
    if name == "docker":
        from boom.runners.docker import DockerRunner

        return DockerRunner(**options)
    if name == "auto":
        from boom import images

        try:
            images.client(timeout=10)
        except Exception as exc:  # DaemonUnavailable, or the docker SDK missing
            from boom.runners.local import LocalRunner

            print(f"runner auto: local ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})",
                  file=sys.stderr)
            return LocalRunner()
        from boom.runners.docker import DockerRunner

        print("runner auto: docker (the Docker daemon answered)", file=sys.stderr)
        return DockerRunner(**options)
    if name == "apptainer":
        from boom.runners.apptainer import ApptainerRunner

        return ApptainerRunner()
    raise ValueError(f"unknown runner {name!r}; expected local, docker, apptainer or auto")

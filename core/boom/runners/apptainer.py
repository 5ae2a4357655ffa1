"""Apptainer (Singularity) runner: the model's Docker image, converted to a SIF, run with ``apptainer exec``.

BUILT AGAINST THE DOCUMENTED CLI, NOT TESTED HERE: no machine of this project has Apptainer.  The command
is ``apptainer exec --containall --cleanenv --bind IN:/task/input:ro --bind RUN:/task/output
--pwd /opt/boom/models/NAME [--nv] --env OMP_NUM_THREADS=T ... IMAGE.sif python ENTRYPOINT
/task/output/task.json`` (Apptainer 1.x; ``singularity`` 3.x takes the same options).  Only the command
construction is unit-tested.

Images: ``<images dir>/<name>-<12 hex>.sif`` for the Docker tag ``boom-tte/<name>:<12 hex>``
(``boom.images.model_tag``), the images dir being ``$BOOM_APPTAINER_IMAGES`` or ``<BOOM_HOME>/images``.
Convert on a machine with Docker: ``apptainer build rf-<hash>.sif docker-daemon://boom-tte/rf:<hash>``
(or ``docker save`` + ``apptainer build ... docker-archive://rf.tar`` where the HPC side has no daemon).
A missing SIF is a failed run whose reason is that build command.

Differences from the Docker runner: Apptainer runs as the invoking user (no uid switch); there is no
memory/CPU limit of its own (Slurm's allocation is the limit); ``--containall`` isolates PID/IPC and the
home folder but the network stays the host's unless the site allows ``--net --network none``.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Optional

from boom_schema import Task
from boom import paths, runfiles
from boom.registry import ModelEntry
from boom.runners import container as layer
from boom.runners.base import Execution
from boom.runners.process import supervise


def images_dir() -> Path:
    env = os.environ.get("BOOM_APPTAINER_IMAGES")
    return Path(env).expanduser().resolve() if env else paths.repo_root() / "images"


def sif_name(tag: str) -> str:
    """``boom-tte/rf:0123456789ab`` -> ``rf-0123456789ab.sif``."""
    repo, _, version = tag.rpartition(":")
    return f"{repo.rsplit('/', 1)[-1]}-{version}.sif"


class ApptainerRunner:
    name = "apptainer"

    def __init__(self, executable: Optional[str] = None, images: Optional[Path] = None) -> None:
        self.executable = executable or os.environ.get("BOOM_APPTAINER") or shutil.which("apptainer") \
            or shutil.which("singularity")
        self.images = Path(images) if images else images_dir()

    def task_view(self, task: Task) -> Task:
        return layer.task_view(task)

    def image_for(self, entry: ModelEntry) -> tuple[str, Path]:
        from boom import images

        tag = images.model_tag(entry)
        return tag, self.images / sif_name(tag)

    def command(self, entry: ModelEntry, task: Task, run_dir: Path, sif: Path) -> list[str]:
        """``apptainer exec`` of the shared container plan (``boom.runners.container``); as the invoking user."""
        plan = layer.plan(entry, task, run_dir)
        cmd = [self.executable or "apptainer", "exec", "--containall", "--cleanenv"]
        for m in plan.mounts:
            cmd += ["--bind", f"{m.host}:{m.target}" + (":ro" if m.read_only else "")]
        cmd += ["--pwd", plan.workdir]
        if task.device == "cuda":
            cmd.append("--nv")
        for key, value in plan.env.items():
            cmd += ["--env", f"{key}={value}"]
        return cmd + [str(sif), *plan.command]

    def execute(self, entry: ModelEntry, task: Task, run_dir: Path, log_path: Path, timeout_s: int) -> Execution:
        tag, sif = self.image_for(entry)
        if not self.executable:
            return Execution(returncode=None, timed_out=False, wall_s=0.0,
                             error="apptainer (or singularity) not found on PATH; set BOOM_APPTAINER")
        if not sif.exists():
            return Execution(returncode=None, timed_out=False, wall_s=0.0,
                             error=f"no Apptainer image {sif}: build it with `apptainer build {sif} docker-daemon://{tag}`")
        cmd = self.command(entry, task, run_dir, sif)
        runfiles.append_text(log_path, "[boom] " + " ".join(cmd) + "\n")
        return supervise(cmd, log_path, timeout_s, watch=runfiles.disk_watch(run_dir, entry.spec.resources.disk_gb))

"""What a model's container gets, the same for Docker and Apptainer: mounts, task view, environment, user, command.

- the task's input folder read-only at ``/task/input`` (it holds no test labels), the run folder read-write at
  ``/task/output``, the shared feature cache read-only when there is one (``boom.cache``); ``task.json`` in the
  run folder names these container paths (:func:`task_view`);
- the thread environment from the task's threads (OpenMP, MKL, OpenBLAS), unbuffered output, a headless
  matplotlib and a writable ``HOME`` in ``/tmp``;
- the user: the invoking user's uid:gid, so the files a model writes belong to them on the host; as root, the
  image's own ``boom`` user (10001) with the run folder lent to it and handed back afterwards (:func:`give_back`).
  Apptainer always runs as the invoking user, so it needs neither;
- the command: ``python <entrypoint> /task/output/task.json`` in ``/opt/boom/models/<name>``.

Each runner turns a :class:`ContainerPlan` into its own form (Docker SDK arguments, ``apptainer exec`` options).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from boom_schema import Task
from boom import cache
from boom.registry import ModelEntry

INPUT_MOUNT = "/task/input"
OUTPUT_MOUNT = "/task/output"
MODELS_ROOT = "/opt/boom/models"
IMAGE_USER_ID = 10001  # the ``boom`` user of models/_base/Dockerfile


@dataclass(frozen=True)
class Mount:
    host: str
    target: str
    read_only: bool


@dataclass(frozen=True)
class ContainerPlan:
    """One model process inside a container, independent of the container tool."""

    mounts: tuple[Mount, ...]
    env: dict[str, str]
    workdir: str
    command: tuple[str, ...]


def task_view(task: Task) -> Task:
    """The task as the container sees it: its folders at the mount points."""
    return task.model_copy(update={"input_dir": INPUT_MOUNT, "output_dir": OUTPUT_MOUNT})


def thread_env(threads: int) -> dict[str, str]:
    """The numeric libraries' thread counts: never more than the run was given (also the local runner's)."""
    n = str(threads)
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n}


def plan(entry: ModelEntry, task: Task, run_dir: Path) -> ContainerPlan:
    """Mounts, environment, working folder and command of ``task`` (the host's view of it) in ``run_dir``."""
    mounts = [Mount(str(Path(task.input_dir).resolve()), INPUT_MOUNT, True),
              Mount(str(Path(run_dir).resolve()), OUTPUT_MOUNT, False)]
    features = cache.host_folder()  # the shared feature cache, read-only (boom.cache)
    if features:
        mounts.append(Mount(str(features), cache.CONTAINER_MOUNT, True))
    env = {**thread_env(task.threads), "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg", "HOME": "/tmp",
           "MPLCONFIGDIR": "/tmp/matplotlib", **cache.model_env(in_container=True)}
    return ContainerPlan(tuple(mounts), env, f"{MODELS_ROOT}/{entry.name}",
                         ("python", entry.spec.entrypoint, f"{OUTPUT_MOUNT}/task.json"))


def user_for(run_dir: Path) -> str:
    """``uid:gid`` the container runs as; as root, the image's ``boom`` user, which is lent the run folder."""
    uid, gid = os.getuid(), os.getgid()
    if uid != 0:
        return f"{uid}:{gid}"
    os.chown(run_dir, IMAGE_USER_ID, IMAGE_USER_ID)
    return f"{IMAGE_USER_ID}:{IMAGE_USER_ID}"


def give_back(run_dir: Path) -> None:
    """As root, hand everything the container wrote back to root (the invoking user); a no-op otherwise."""
    if os.getuid() != 0:
        return
    for root, dirs, files in os.walk(run_dir):
        for name in [*dirs, *files]:
            try:
                os.lchown(os.path.join(root, name), 0, 0)
            except FileNotFoundError:
                pass
    os.chown(run_dir, 0, 0)


"""Docker runner: one container per run, from the model's content-tagged image (Docker SDK for Python).

- mounts, task view, thread environment, user and command from ``boom.runners.container`` (shared with
  Apptainer): the task's input folder read-only at /task/input, the run folder read-write at /task/output;
- ``network_mode="none"``; memory (``mem_limit``, no swap) and CPU (``nano_cpus``) limits from the model
  spec, the runner's overrides (CLI / ``BOOM_DOCKER_MEMORY_GB`` / ``BOOM_DOCKER_CPUS``) or the task's threads;
- a non-root user (``container.user_for``): the invoking user's uid:gid, or as root the image's ``boom`` user;
- the GPU through a device request only when the task's device is cuda and the host has one;
- the container's output streamed to the run's log.txt, a wall-clock timeout, the container always
  removed.  Every failure (daemon down, image build, OOM kill, timeout) comes back as an ``Execution``
  that the orchestrator records with a one-line reason.
"""
from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Optional

from boom_schema import Task
from boom import images, runfiles
from boom.registry import ModelEntry
from boom.runners import container as layer, stop
from boom.runners.base import Execution

WAIT_SLICE_S = 2.0  # how often a waiting run looks whether the orchestrator was told to stop


class _OverLimit(Exception):
    """The run folder passed resources.disk_gb while the container ran (a bind mount has no quota of its own)."""


def _env_float(name: str) -> Optional[float]:
    value = os.environ.get(name)
    return float(value) if value else None


def host_has_gpu(docker_client) -> bool:
    """An NVIDIA GPU usable by containers: the nvidia runtime registered, or nvidia-smi on the host."""
    try:
        runtimes = docker_client.info().get("Runtimes", {}) or {}
    except Exception:
        runtimes = {}
    return "nvidia" in runtimes or shutil.which("nvidia-smi") is not None


class DockerRunner:
    name = "docker"

    def __init__(self, memory_gb: Optional[float] = None, cpus: Optional[float] = None,
                 docker_client=None) -> None:
        self.memory_gb = memory_gb if memory_gb is not None else _env_float("BOOM_DOCKER_MEMORY_GB")
        self.cpus = cpus if cpus is not None else _env_float("BOOM_DOCKER_CPUS")
        self._client = docker_client

    # -- the task as the container sees it ------------------------------------------------------
    def task_view(self, task: Task) -> Task:
        return layer.task_view(task)

    # -- limits ---------------------------------------------------------------------------------
    def limits(self, entry: ModelEntry, task: Task) -> tuple[float, float]:
        """(memory GB, CPUs) of a run: runner override, else spec memory and the task's threads."""
        memory = self.memory_gb or entry.spec.resources.memory_gb
        cpus = self.cpus or float(task.threads)
        return memory, min(cpus, float(os.cpu_count() or 1))

    # -- one run --------------------------------------------------------------------------------
    def execute(self, entry: ModelEntry, task: Task, run_dir: Path, log_path: Path, timeout_s: int) -> Execution:
        import docker
        from docker.types import DeviceRequest

        with open(log_path, "a") as log:
            try:
                client = self._client or images.client()
            except images.DaemonUnavailable as exc:
                log.write(f"[boom] {exc}\n")
                return Execution(returncode=None, timed_out=False, wall_s=0.0, error=str(exc))
            try:
                tag = images.ensure_model(entry, log=log, docker_client=client)
            except (images.ImageBuildError, images.DaemonUnavailable) as exc:
                return Execution(returncode=None, timed_out=False, wall_s=0.0, error=str(exc))

            memory_gb, cpus = self.limits(entry, task)
            device_requests = None
            if task.device == "cuda":
                if host_has_gpu(client):
                    device_requests = [DeviceRequest(count=-1, capabilities=[["gpu"]])]
                else:
                    log.write("[boom] device cuda requested but the host has no GPU for containers; "
                              "the model falls back to what boom_kit resolves\n")
            plan = layer.plan(entry, task, run_dir)
            mem = f"{int(memory_gb * 1024)}m"
            user = layer.user_for(run_dir)
            log.write(f"[boom] docker run {tag} user={user} memory={mem} cpus={cpus:g} network=none "
                      f"gpu={'yes' if device_requests else 'no'} timeout={timeout_s}s\n")
            log.flush()
            container = None
            started = time.perf_counter()
            timed_out = False
            try:
                container = client.containers.create(
                    tag, command=list(plan.command), working_dir=plan.workdir,
                    volumes={m.host: {"bind": m.target, "mode": "ro" if m.read_only else "rw"} for m in plan.mounts},
                    network_mode="none", user=user, environment=dict(plan.env),
                    mem_limit=mem, memswap_limit=mem, nano_cpus=int(cpus * 1e9),
                    device_requests=device_requests,
                    labels={"boom.run_id": task.run_id, "boom.model": entry.name, "boom.property": task.property},
                    stdin_open=False, tty=False,
                )
                container.start()
                pump = threading.Thread(target=self._stream_logs, args=(container, log), daemon=True)
                pump.start()
                try:
                    code = self._wait(container, started + timeout_s,
                                      runfiles.disk_watch(run_dir, entry.spec.resources.disk_gb))
                except _OverLimit as over:
                    try:
                        container.kill()
                    except docker.errors.APIError:
                        pass
                    log.write(f"[boom] {over}\n")
                    return Execution(returncode=None, timed_out=False, wall_s=time.perf_counter() - started,
                                     error=str(over))
                if code is None:  # the time limit passed
                    timed_out = True
                    try:
                        container.kill()
                    except docker.errors.APIError:
                        pass
                    try:
                        code = int(container.wait(timeout=30).get("StatusCode", -1))
                    except Exception:
                        pass
                wall = time.perf_counter() - started
                pump.join(timeout=10)
                state = client.api.inspect_container(container.id)["State"]
                oom = bool(state.get("OOMKilled")) or (code == 137 and not timed_out)
                if oom:
                    log.write(f"[boom] container killed: out of memory (limit {mem})\n")
                if timed_out:
                    log.write(f"[boom] container killed after the time limit of {timeout_s} s\n")
                return Execution(returncode=code, timed_out=timed_out, wall_s=wall, oom_killed=oom)
            except stop.Stopped:
                log.write("[boom] run stopped: the orchestrator was told to stop, the container is removed\n")
                raise
            except docker.errors.DockerException as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                log.write(f"[boom] docker error: {exc}\n")
                return Execution(returncode=None, timed_out=False, wall_s=time.perf_counter() - started,
                                 error=f"docker error: {first[:300]}")
            finally:
                if container is not None:
                    try:
                        container.remove(force=True)
                    except docker.errors.APIError:
                        pass
                layer.give_back(run_dir)

    @staticmethod
    def _wait(container, deadline: float, watch=None) -> Optional[int]:
        """The container's exit status, or None when ``deadline`` (perf_counter) passed first.

        ``watch`` (``boom.runfiles.disk_watch``) is asked every slice; a reason it returns raises ``_OverLimit``.

        Waits in short slices so that a stop of the orchestrator (``boom.runners.stop``) is seen within
        seconds; the ``finally`` of ``execute`` then removes the container.
        """
        while True:
            stop.check()
            over = watch() if watch is not None else None
            if over:
                raise _OverLimit(over)
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            asked = time.perf_counter()
            try:
                return int(container.wait(timeout=min(WAIT_SLICE_S, left)).get("StatusCode", -1))
            except Exception:  # requests' ReadTimeout (not finished within the slice) or ConnectionError
                if time.perf_counter() - asked < WAIT_SLICE_S / 2:  # failed at once: do not spin on it
                    time.sleep(WAIT_SLICE_S)

    @staticmethod
    def _stream_logs(container, log) -> None:
        try:
            for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                log.write(chunk.decode(errors="replace"))
                log.flush()
        except Exception:
            pass

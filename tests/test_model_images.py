"""A torch model in its own image: chemprop on ``boom-tte/base-torch``, built from the local base.

chemprop stands for the torch models because its image once built and then failed at import
(``libXrender.so.1``, needed by its cuik-molmaker dependency, was missing from the base): building is not
enough, the container must run.  Its smoke configuration in the container must give byte-identical
predictions to the local runner (same wheels, same seed, one thread).  The other model images are built and
checked the same way by ``bench/build_model_images.py`` (results in bench/results/model_images.md); here
one image keeps the CI run within its time (base-torch with its CUDA wheels is about 10 GB).

With CI=true this fails when no Docker daemon answers; elsewhere it is skipped then.
"""
from __future__ import annotations

import filecmp
import shutil

import pytest

from tests import docker_support
from tests.conftest import REPO


@pytest.fixture(scope="module")
def torch_base(prepared) -> str:
    docker_support.require_daemon()
    return docker_support.ensure_base_image("base-torch", [REPO / "models" / "chemprop" / "requirements.txt"])


def test_chemprop_runs_in_its_image_like_it_runs_locally(torch_base: str, tmp_path) -> None:
    from boom.orchestrate import run
    from boom.runners.docker import DockerRunner
    from boom.runners.local import LocalRunner

    kw = dict(subset=60, smoke=True, threads=1, force=True)
    local = run("chemprop", "density", LocalRunner(), **kw)
    assert local.record.status.value == "ok", local.record.reason
    shutil.copyfile(local.folder / "predictions.csv", tmp_path / "local.csv")

    docker = run("chemprop", "density", DockerRunner(), **kw)
    log = (docker.folder / "log.txt").read_text() if (docker.folder / "log.txt").exists() else ""
    assert docker.record.status.value == "ok", f"{docker.record.reason}\n{log[-3000:]}"
    assert docker.record.runner == "docker"
    assert filecmp.cmp(tmp_path / "local.csv", docker.folder / "predictions.csv", shallow=False)
    assert docker.scores.ood.rmse == local.scores.ood.rmse

"""Model images: generated from ``models/_base/model.Dockerfile`` on the base that model.yaml's ``image:`` names,
a folder's own Dockerfile winning when present; and a torch model in its image, chemprop on
``boom-tte/base-torch``, built from the local base.

The first tests need no Docker daemon (what is built from what, with which arguments and tag).

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
import tarfile
from pathlib import Path

import pytest

from tests import docker_support
from tests.conftest import REPO

FIXTURES = REPO / "tests" / "fixtures" / "models"


def _entry(folder: Path):
    from boom.registry import ModelEntry
    from boom_schema import load_spec

    return ModelEntry(load_spec(folder / "model.yaml"), folder)


def _copy_model(tmp_path: Path, name: str = "broken") -> Path:
    folder = tmp_path / "models" / name
    shutil.copytree(FIXTURES / "broken", folder)
    if name != "broken":
        spec = folder / "model.yaml"
        spec.write_text(spec.read_text().replace("name: broken", f"name: {name}"))
    return folder


def test_every_model_is_built_from_the_template_on_the_base_its_spec_names() -> None:
    from boom import images, registry

    found = registry.discover(REPO / "models")
    kinds = {}
    for name, entry in found.items():
        assert images.own_dockerfile(entry) is None, f"{name}: the template makes this image; no own Dockerfile"
        assert images.model_dockerfile(entry) == REPO / "models" / "_base" / "model.Dockerfile"
        kind = images.model_base_kind(entry)
        assert images.model_buildargs(entry, f"boom-tte/{kind}:abc") == {"BOOM_BASE": f"boom-tte/{kind}:abc",
                                                                         "MODEL": name}
        assert images.check_dockerfile(entry) == [], name
        kinds[name] = kind
    assert kinds["rf"] == "base" and kinds["chemprop"] == "base-torch"
    assert set(kinds.values()) == {"base", "base-torch"}


def test_template_builds_any_model_by_its_arguments() -> None:
    text = (REPO / "models" / "_base" / "model.Dockerfile").read_text()
    body = [l for l in text.splitlines() if l.strip() and not l.startswith("#")]
    assert body[:3] == ["ARG BOOM_BASE=boom-tte/base-torch:latest", "FROM ${BOOM_BASE}", "ARG MODEL"]
    assert "COPY models/${MODEL}/ /opt/boom/models/${MODEL}/" in body and body[-1] == "WORKDIR /opt/boom/models/${MODEL}"


def test_own_dockerfile_wins_and_changes_the_tag(tmp_path: Path) -> None:
    from boom import images

    folder = _copy_model(tmp_path)
    entry = _entry(folder)
    template_tag = images.model_tag(entry)
    own = folder / "Dockerfile"
    own.write_text("# needs a system package\nARG BOOM_BASE=boom-tte/base:latest\nFROM ${BOOM_BASE}\n"
                   "COPY models/broken/ /opt/boom/models/broken/\nWORKDIR /opt/boom/models/broken\n")
    assert images.model_dockerfile(entry) == own and images.model_base_kind(entry) == "base"
    assert images.model_buildargs(entry, "boom-tte/base:abc") == {"BOOM_BASE": "boom-tte/base:abc"}
    assert images.check_dockerfile(entry) == []
    own_tag = images.model_tag(entry)
    assert own_tag != template_tag
    own.write_text("# its own FROM: no shared base is built for it\nFROM debian:bookworm\nCOPY models/broken/ /m/\n")
    assert images.model_base_kind(entry) is None and images.model_buildargs(entry, None) == {}
    assert images.model_tag(entry) not in (own_tag, template_tag)


def test_template_change_changes_the_tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from boom import images

    entry = _entry(FIXTURES / "broken")
    before = images.model_tag(entry)
    template = tmp_path / "model.Dockerfile"
    template.write_text((REPO / "models" / "_base" / "model.Dockerfile").read_text() + "RUN true\n")
    monkeypatch.setattr(images, "template_path", lambda: template)
    assert images.model_tag(entry) != before


def test_image_definition_problems_are_named(tmp_path: Path) -> None:
    from boom import images

    folder = _copy_model(tmp_path)
    entry = _entry(folder)
    template = (REPO / "models" / "_base" / "model.Dockerfile").read_text()
    (folder / "Dockerfile").write_text("# a copy\n" + template.replace("${MODEL}", "broken"))
    assert any("repeats what models/_base/model.Dockerfile makes" in p for p in images.check_dockerfile(entry))
    (folder / "Dockerfile").unlink()
    (folder / "requirements.txt").write_text("torch\n")
    assert any("'image: base' but requirements.txt installs torch" in p for p in images.check_dockerfile(entry))
    (folder / "requirements.txt").unlink()
    assert any("requirements.txt: missing" in p for p in images.check_dockerfile(entry))


def test_template_travels_in_the_context_of_a_model_outside_the_checkout(tmp_path: Path) -> None:
    """Test models live in temporary folders: the template is added to their build context."""
    pytest.importorskip("docker")
    from boom import images

    folder = _copy_model(tmp_path)
    context = folder.parent.parent
    with tarfile.open(fileobj=images.build_context(context, images.template_path())) as tar:
        names = tar.getnames()
        assert "models/broken/main.py" in names
        text = tar.extractfile(".boom-model.Dockerfile").read().decode()
    assert text == images.template_path().read_text()
    with tarfile.open(fileobj=images.build_context(REPO, images.template_path())) as tar:
        assert "models/_base/model.Dockerfile" in tar.getnames() and ".boom-model.Dockerfile" not in tar.getnames()


@pytest.fixture(scope="module")
def torch_base(prepared) -> str:
    docker_support.require_daemon()
    return docker_support.ensure_base_image("base-torch", [REPO / "models" / "chemprop" / "requirements.txt"])


def test_chemprop_runs_in_its_image_like_it_runs_locally(torch_base: str, tmp_path) -> None:
    from boom.options import RunOptions
    from boom.orchestrate import run
    from boom.runners.docker import DockerRunner
    from boom.runners.local import LocalRunner

    kw = RunOptions(subset=60, smoke=True, threads=1, force=True)
    local = run("chemprop", "density", LocalRunner(), kw)
    assert local.record.status.value == "ok", local.record.reason
    shutil.copyfile(local.folder / "predictions.csv", tmp_path / "local.csv")

    docker = run("chemprop", "density", DockerRunner(), kw)
    log = (docker.folder / "log.txt").read_text() if (docker.folder / "log.txt").exists() else ""
    assert docker.record.status.value == "ok", f"{docker.record.reason}\n{log[-3000:]}"
    assert docker.record.runner == "docker"
    assert filecmp.cmp(tmp_path / "local.csv", docker.folder / "predictions.csv", shallow=False)
    assert docker.scores.ood.rmse == local.scores.ood.rmse

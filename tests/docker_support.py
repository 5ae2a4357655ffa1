"""Docker test support: a local stand-in for the CUDA base image, an offline wheelhouse, the base image.

No registry can be pulled from on the test machines, so the Docker tests build everything locally:

1. ``boom-tte/debian-rootfs:bookworm``: Debian bookworm (python3, venv, libXrender) made with ``debootstrap`` into a
   folder and loaded with ``docker import``; it stands in for ``BASE_IMAGE`` (the CUDA runtime image).
2. ``models/_base/wheels/``: the base requirements downloaded on the host with pip (the host's Python is
   3.11, like bookworm's), so that image builds need no network (``PIP_OFFLINE=1``); torch's wheels and
   those of torch models go to ``models/_base/wheels-torch/``, which only base-torch copies.
3. ``boom-tte/base:<content hash>`` through ``boom.images`` (skipped when that tag exists), so CI rebuilds
   the base only when its definition, the schema, the kit or the constraints change.

Usable as a script too: ``python tests/docker_support.py [base|base-torch|orchestrator]`` builds what is
missing and prints the tags.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]
ROOTFS_TAG = "boom-tte/debian-rootfs:bookworm"
# python3 + venv for the base image; libXrender/libXext are system libraries that manylinux wheels (RDKit,
# chemprop's cuik-molmaker) assume present, as the CUDA runtime image's Dockerfile installs them.
ROOTFS_PACKAGES = ("python3", "python3-venv", "ca-certificates", "libxrender1", "libxext6")
ROOTFS_LABEL = "boom.rootfs.packages"
MIRROR = os.environ.get("BOOM_DEBIAN_MIRROR", "http://deb.debian.org/debian")
WHEELS = REPO / "models" / "_base" / "wheels"  # the base image's wheels (numpy, rdkit, ...)
TORCH_WHEELS = REPO / "models" / "_base" / "wheels-torch"  # torch's and the torch models' (GBs: base-torch only)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def daemon_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=10).ping()
        return True
    except Exception:
        return False


def _image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def _log(msg: str) -> None:
    print(f"[docker_support] {msg}", file=sys.stderr, flush=True)


def _rootfs_packages(tag: str) -> str | None:
    """The package list an imported rootfs image was made with (its label), None when there is no image."""
    out = subprocess.run(["docker", "image", "inspect", "--format", f'{{{{index .Config.Labels "{ROOTFS_LABEL}"}}}}',
                          tag], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def ensure_rootfs_image() -> str:
    """Debian bookworm with ROOTFS_PACKAGES, imported as an image (minutes the first time, then cached).

    An image made from another package list (an older checkout's) is rebuilt, not silently reused.
    """
    packages = ",".join(ROOTFS_PACKAGES)
    if _rootfs_packages(ROOTFS_TAG) == packages:
        return ROOTFS_TAG
    if shutil.which("debootstrap") is None:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    started = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="boom-rootfs-")
    try:
        root = Path(tmp) / "rootfs"
        _log(f"debootstrap bookworm into {root}")
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={packages}",
             "bookworm", str(root), MIRROR],
            check=True, stdout=subprocess.DEVNULL,
        )
        for mount in ("proc", "sys"):  # debootstrap unmounts these itself; make sure before tar and rmtree
            subprocess.run(["umount", "-l", str(root / mount)], capture_output=True)
        shutil.rmtree(root / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", str(root), "--exclude=./proc/*", "--exclude=./sys/*", "-c", "."],
                               stdout=subprocess.PIPE)
        subprocess.run(["docker", "import", "-c", "CMD [\"/bin/bash\"]", "-c", f"LABEL {ROOTFS_LABEL}={packages}",
                        "-", ROOTFS_TAG], stdin=tar.stdout,
                       check=True, stdout=subprocess.DEVNULL)
        tar.wait()
    finally:
        for mount in ("proc", "sys"):
            subprocess.run(["umount", "-l", str(Path(tmp) / "rootfs" / mount)], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    _log(f"{ROOTFS_TAG} built in {time.perf_counter() - started:.0f} s")
    return ROOTFS_TAG


def fill_wheelhouse(*requirement_files: Path, dest: Path = WHEELS, beside: Path | None = None) -> Path:
    """Download the wheels of the given requirement files (pinned by the constraints) into ``dest``.

    ``beside``: a wheelhouse the same image already carries; its wheels are not kept twice.
    """
    files = requirement_files or (REPO / "models" / "_base" / "requirements.txt",)
    dest.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--only-binary=:all:",
            "-d", str(dest), "-c", str(REPO / "requirements" / "constraints.txt")]
    if beside is not None:
        args += ["--find-links", str(beside)]
    for f in files:
        args += ["-r", str(f)]
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "PIP_NO_INDEX")}
    stamp = dest / (".done-" + "-".join(f.name for f in files))
    key = "".join(Path(f).read_text() for f in files) + (REPO / "requirements" / "constraints.txt").read_text()
    if stamp.exists() and stamp.read_text() == key:
        return dest
    subprocess.run(args, check=True, env=env)
    if beside is not None:  # pip copies what it found beside into dest: drop those again
        have = {p.name for p in beside.glob("*.whl")}
        for p in dest.glob("*.whl"):
            if p.name in have:
                p.unlink()
    stamp.write_text(key)
    return dest


def configure_env() -> None:
    """Point boom.images at the local rootfs and the offline wheelhouse (what the tests and CI use)."""
    os.environ.setdefault("BOOM_BASE_IMAGE", ROOTFS_TAG)
    os.environ.setdefault("BOOM_PIP_OFFLINE", "1")


def ensure_orchestrator_image() -> str:
    """boom-tte/orchestrator:latest for compose (not content-tagged: compose builds it too)."""
    base = ensure_base_image("base")
    fill_wheelhouse(REPO / "models" / "_base" / "orchestrator-requirements.txt",
                    dest=REPO / "models" / "_base" / "wheels-orchestrator", beside=WHEELS)
    from boom import images

    c = images.client()
    c.images.get(base).tag("boom-tte/base", "latest")
    return images.build(c, REPO, REPO / "models" / "_base" / "orchestrator.Dockerfile", "boom-tte/orchestrator:latest",
                        {"BOOM_BASE": base}, sys.stderr, latest=False)


def ensure_base_image(kind: str = "base", model_requirements: Sequence[Path] = ()) -> str:
    """The content-hash tagged base image, built only when missing.

    For ``base-torch`` the torch wheels and those of ``model_requirements`` go to their own wheelhouse,
    which only base-torch copies: the model images built on it install offline from what it carries.
    """
    if kind == "orchestrator":
        return ensure_orchestrator_image()
    ensure_rootfs_image()
    fill_wheelhouse()
    configure_env()
    from boom import images

    if kind == "base-torch":
        fill_wheelhouse(REPO / "models" / "_base" / "torch-requirements.txt", *model_requirements,
                        dest=TORCH_WHEELS, beside=WHEELS)
    return images.ensure_base(kind, log=sys.stderr)


def require_daemon() -> None:
    """Skip a Docker test where no daemon answers, but fail it under CI=true (CI must run them)."""
    import pytest

    if not daemon_answers():
        if in_ci():
            pytest.fail("CI=true but no Docker daemon answers: the Docker tests must run in CI")
        import warnings

        why = "no Docker daemon answers: the Docker tests did NOT run (set CI=true to make this a failure)"
        warnings.warn(why, pytest.PytestWarning)
        pytest.skip(why)


if __name__ == "__main__":
    started = time.perf_counter()
    for k in sys.argv[1:] or ["base"]:
        print(ensure_base_image(k))
    _log(f"done in {time.perf_counter() - started:.0f} s")


class FakeContainer:
    """A container that starts, prints one line, exits 0 and records its removal (no daemon needed)."""

    id = "fake"
    OUTPUT = "fake container output"

    def __init__(self) -> None:
        self.removed = False

    def start(self) -> None:
        pass

    def wait(self, timeout=None):
        return {"StatusCode": 0}

    def logs(self, **kw):
        return iter([f"{self.OUTPUT}\n".encode()])

    def kill(self) -> None:
        pass

    def remove(self, force=False) -> None:
        self.removed = True


class FakeDockerClient:
    """Records the container the Docker runner asks the daemon to create; ``runtimes`` as ``docker info`` lists them."""

    def __init__(self, runtimes: dict | None = None) -> None:
        self.runtimes = {"runc": {}} if runtimes is None else runtimes
        self.created: dict = {}
        self.container = FakeContainer()
        outer = self

        class _Containers:
            def create(self, image, **kw):
                outer.created = {"image": image, **kw}
                return outer.container

        class _Api:
            def inspect_container(self, cid):
                return {"State": {"OOMKilled": False, "ExitCode": 0}}

        self.containers, self.api = _Containers(), _Api()

    def info(self):
        return {"Runtimes": self.runtimes}

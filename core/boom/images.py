"""Images tagged by content: an unchanged model (and base) is never rebuilt.

Two shared base images come from ``models/_base/``: ``boom-tte/base`` (Python, the pinned scientific
stack, boom-schema, boom-kit, a non-root user) and ``boom-tte/base-torch`` (plus torch).  Each model image
is generated from one template, ``models/_base/model.Dockerfile`` (the base plus the folder's
``requirements.txt`` and the folder itself), on the base its model.yaml names (``image: base | torch``).
A folder with a Dockerfile of its own is built from that file instead (the escape hatch for a model that
needs more); it gets the same ``BOOM_BASE`` build argument when it declares ``ARG BOOM_BASE``.

Tags are ``boom-tte/<name>:<12 hex>`` where the hash covers everything that goes into the image: the
model folder, the template (or the folder's own Dockerfile), the base definition, the schema, the kit,
the constraints and the build arguments.  When
that tag exists nothing is built; ``:latest`` is moved to the newest build so that compose and people
typing ``docker run`` find it.  Build output goes to a log; a failure raises :class:`ImageBuildError`
with a one-line reason (the orchestrator records it as the run's reason).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Iterator, Optional

from boom_schema import ImageKind
from boom import paths
from boom.hashing import sha256_file, sha256_json
from boom.registry import ModelEntry

PREFIX = "boom-tte"
BASE_KINDS = ("base", "base-torch")
BASE_OF = {ImageKind.BASE: "base", ImageKind.TORCH: "base-torch"}  # model.yaml's image -> base image kind
DEFAULT_BASE_IMAGE = "nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04"
TEMPLATE = Path("models") / "_base" / "model.Dockerfile"  # relative to the repository root
BASE_DOCKERFILE = Path("models") / "_base" / "Dockerfile"
_TEMPLATE_IN_CONTEXT = ".boom-model.Dockerfile"  # the template's name in a build context outside the checkout
_BASE_ARG = re.compile(r"^\s*ARG\s+BOOM_BASE\b", re.M)
_thread_locks: dict[str, threading.Lock] = {}
_failed: dict[str, str] = {}  # tag -> reason: a failed build is not retried for every cell of a matrix
_thread_locks_guard = threading.Lock()


class ImageBuildError(RuntimeError):
    """An image could not be built; ``str(error)`` is one line."""


def base_image() -> str:
    """The image the shared base starts from (``BOOM_BASE_IMAGE``; default a CUDA runtime image)."""
    return os.environ.get("BOOM_BASE_IMAGE") or DEFAULT_BASE_IMAGE


def pip_offline() -> bool:
    """Build from the offline wheelhouses only (``BOOM_PIP_OFFLINE=1``): models/_base/wheels, and
    models/_base/wheels-torch for base-torch and the images built on it."""
    return os.environ.get("BOOM_PIP_OFFLINE", "").lower() in ("1", "true", "yes")


def _files_hash(root: Path, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if not p.is_file() or "__pycache__" in rel.parts or any(part.endswith(".egg-info") for part in rel.parts):
            continue
        if rel.parts and rel.parts[0] in exclude:
            continue
        out[str(rel)] = sha256_file(p)
    return out


def base_hash(kind: str = "base") -> str:
    """Hash of the base definition + schema + kit + constraints + build arguments."""
    if kind not in BASE_KINDS:
        raise ValueError(f"unknown base image kind {kind!r}; expected one of {BASE_KINDS}")
    repo = paths.repo_root()
    base_dir = repo / "models" / "_base"
    parts = {
        "base": {f: sha256_file(base_dir / f) for f in ("Dockerfile", "requirements.txt")},
        "schema": _files_hash(repo / "schema" / "boom_schema"),
        "schema_pyproject": sha256_file(repo / "schema" / "pyproject.toml"),
        "kit": _files_hash(repo / "models" / "_kit" / "boom_kit"),
        "kit_pyproject": sha256_file(repo / "models" / "_kit" / "pyproject.toml"),
        "constraints": sha256_file(repo / "requirements" / "constraints.txt"),
        "base_image": base_image(),
        "offline": pip_offline(),
    }
    h = sha256_json(parts)
    if kind == "base-torch":
        h = sha256_json({"base": h, **{f: sha256_file(base_dir / f) for f in ("torch.Dockerfile", "torch-requirements.txt")}})
    return h[:12]


def base_tag(kind: str = "base") -> str:
    return f"{PREFIX}/{kind}:{base_hash(kind)}"


def template_path() -> Path:
    return paths.repo_root() / TEMPLATE


def own_dockerfile(entry: ModelEntry) -> Optional[Path]:
    """The folder's own Dockerfile (which wins over the template), or None."""
    path = entry.folder / "Dockerfile"
    return path if path.is_file() else None


def model_dockerfile(entry: ModelEntry) -> Path:
    """The Dockerfile a model's image is built from: its own, else the shared template."""
    return own_dockerfile(entry) or template_path()


def model_base_kind(entry: ModelEntry) -> Optional[str]:
    """Which shared base a model's image builds on: the one its model.yaml names (None: an own Dockerfile
    without ``ARG BOOM_BASE``, which has its own FROM)."""
    own = own_dockerfile(entry)
    if own is not None and not _BASE_ARG.search(own.read_text()):
        return None
    return BASE_OF[entry.spec.image]


def model_buildargs(entry: ModelEntry, base: Optional[str]) -> dict[str, str]:
    """Build arguments of a model image: BOOM_BASE (the base's tag), and MODEL for the template."""
    args = {"BOOM_BASE": base} if base else {}
    if own_dockerfile(entry) is None:
        args["MODEL"] = entry.name
    return args


def model_tag(entry: ModelEntry) -> str:
    kind = model_base_kind(entry)
    own = own_dockerfile(entry)
    h = sha256_json({"model": entry.content_hash(), "base": base_hash(kind) if kind else None,
                     "template": None if own else sha256_file(template_path())})
    return f"{PREFIX}/{entry.name}:{h[:12]}"


def client(timeout: int = 60):
    """A Docker client that has answered a ping; raises DaemonUnavailable with one line otherwise."""
    import docker

    try:
        c = docker.from_env(timeout=timeout)
        c.ping()
        return c
    except Exception as exc:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DaemonUnavailable(f"Docker daemon unreachable at {host}: {first[:200]}") from None


class DaemonUnavailable(RuntimeError):
    """No Docker daemon answered; one-line message."""


def exists(docker_client, tag: str) -> bool:
    import docker

    try:
        docker_client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


@contextlib.contextmanager
def _build_lock(tag: str) -> Iterator[None]:
    """One build of a tag at a time, across threads and processes (parallel matrix jobs)."""
    with _thread_locks_guard:
        lock = _thread_locks.setdefault(tag, threading.Lock())
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", tag)
    with lock, open(Path(tempfile.gettempdir()) / f"boom-build-{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write(log: Optional[IO[str]], text: str) -> None:
    if log is not None:
        log.write(text)
        log.flush()


def _dockerfile_name(context: Path, dockerfile: Path) -> str:
    """The Dockerfile's name inside the context (the template travels in the tar when it lies outside)."""
    try:
        return dockerfile.resolve().relative_to(context.resolve()).as_posix()
    except ValueError:
        return _TEMPLATE_IN_CONTEXT


def build_context(context: Path, dockerfile: Path) -> IO[bytes]:
    """The build context as a tar: the folder minus ``.dockerignore``, minus the wheelhouses
    (``models/_base/wheels*``) that this Dockerfile does not COPY.  A Dockerfile outside the folder (the
    template, for test models in a temporary folder) is added to the tar.

    The torch wheelhouse alone is GBs and only base-torch copies it: sending it with every model build
    would cost more than the build.
    """
    from docker import utils

    ignore = context / ".dockerignore"
    exclude = [line.strip() for line in ignore.read_text().splitlines()
               if line.strip() and not line.strip().startswith("#")] if ignore.exists() else []
    text = dockerfile.read_text()
    for wheelhouse in sorted((context / "models" / "_base").glob("wheels*")):
        rel = wheelhouse.relative_to(context).as_posix()
        if wheelhouse.is_dir() and f"{rel}/" not in text:
            exclude.append(rel)
    rel_dockerfile = _dockerfile_name(context, dockerfile)
    inside = rel_dockerfile != _TEMPLATE_IN_CONTEXT
    return utils.tar(str(context), exclude=exclude, dockerfile=(rel_dockerfile, None if inside else text))


def build(docker_client, context: Path, dockerfile: Path, tag: str, buildargs: dict[str, str],
          log: Optional[IO[str]] = None, latest: bool = True, nocache: bool = False) -> str:
    """Build ``dockerfile`` (relative to ``context``) as ``tag``; stream its output to ``log``."""
    started = time.perf_counter()
    _write(log, f"[boom] building {tag} from {dockerfile} (context {context})\n")
    last_lines: list[str] = []
    error = None
    try:
        rel = _dockerfile_name(context, dockerfile)
        stream = docker_client.api.build(
            fileobj=build_context(context, dockerfile), custom_context=True, dockerfile=rel, tag=tag,
            buildargs=buildargs, rm=True, forcerm=True, decode=True, pull=False, nocache=nocache,
        )
        for chunk in stream:
            if "stream" in chunk:
                text = chunk["stream"]
                _write(log, text)
                last_lines.extend(l for l in text.splitlines() if l.strip())
                last_lines = last_lines[-20:]
            if "error" in chunk:
                error = chunk["error"].strip()
                _write(log, f"[boom] build error: {error}\n")
    except Exception as exc:  # API errors (bad Dockerfile path, daemon gone)
        error = f"{type(exc).__name__}: {exc}"
        _write(log, f"[boom] build error: {error}\n")
    if error is not None:
        line = " ".join(error.split())
        raise ImageBuildError(f"image build failed for {tag}: {line[:300]}")
    if latest:
        repo = tag.rsplit(":", 1)[0]
        docker_client.images.get(tag).tag(repo, "latest")
    _write(log, f"[boom] built {tag} in {time.perf_counter() - started:.1f} s\n")
    return tag


def ensure_base(kind: str = "base", log: Optional[IO[str]] = None, docker_client=None) -> str:
    """The base image of this kind, built (with its parents) only when its content tag is missing."""
    docker_client = docker_client or client()
    tag = base_tag(kind)
    with _build_lock(tag):
        if exists(docker_client, tag):
            return tag
        repo = paths.repo_root()
        if kind == "base-torch":
            parent = ensure_base("base", log, docker_client)
            return build(docker_client, repo, repo / "models" / "_base" / "torch.Dockerfile", tag,
                         {"BOOM_BASE": parent}, log)
        args = {"BASE_IMAGE": base_image(), "PIP_OFFLINE": "1" if pip_offline() else "0"}
        if not exists(docker_client, base_image()):
            _write(log, f"[boom] BASE_IMAGE {base_image()} is not local: the build pulls it. Without a registry, "
                        "run `python tests/docker_support.py` and set BOOM_BASE_IMAGE=boom-tte/debian-rootfs:bookworm "
                        "BOOM_PIP_OFFLINE=1\n")
        try:
            return build(docker_client, repo, repo / BASE_DOCKERFILE, tag, args, log)
        except ImageBuildError as exc:
            if exists(docker_client, base_image()):
                raise
            raise ImageBuildError(f"{exc} (BASE_IMAGE {base_image()} is not available locally; set "
                                  "BOOM_BASE_IMAGE, see `python tests/docker_support.py`)") from None


def ensure_model(entry: ModelEntry, log: Optional[IO[str]] = None, docker_client=None) -> str:
    """The model's image, built (with its base) only when its content tag is missing."""
    docker_client = docker_client or client()
    dockerfile = model_dockerfile(entry)
    if not dockerfile.exists():
        raise ImageBuildError(f"image build failed for {entry.name}: {dockerfile} does not exist")
    tag = model_tag(entry)
    if tag in _failed:
        _write(log, f"[boom] not rebuilding {tag}: it failed earlier in this process\n")
        raise ImageBuildError(_failed[tag])
    with _build_lock(tag):
        if exists(docker_client, tag):
            return tag
        kind = model_base_kind(entry)
        try:
            args = model_buildargs(entry, ensure_base(kind, log, docker_client) if kind else None)
            # Build context: the folder holding models/ (the repository root for real models), so that
            # the Dockerfile's ``COPY models/<name>/ ...`` lines resolve.
            context = entry.folder.parent.parent
            return build(docker_client, context, dockerfile, tag, args, log)
        except ImageBuildError as exc:
            _failed[tag] = str(exc)
            raise


def image_size_mb(docker_client, tag: str) -> float:
    return docker_client.images.get(tag).attrs["Size"] / 1e6


def _instructions(text: str, name: str) -> list[str]:
    """A Dockerfile's instructions with the model's name for ${MODEL}, its ARG lines left out (comparable)."""
    lines = [" ".join(l.split()) for l in text.replace("${MODEL}", name).splitlines()]
    return [l for l in lines if l and not l.startswith("#") and not l.startswith("ARG ")]


def check_dockerfile(entry: ModelEntry) -> list[str]:
    """Problems with how a model's image is defined (empty list: fine).

    The folder needs a requirements.txt (an empty file with a comment is fine); a model that installs torch
    must say ``image: torch``; an own Dockerfile that only repeats what the template makes is redundant.
    """
    folder = entry.folder
    problems = []
    req = folder / "requirements.txt"
    if not req.exists():
        problems.append(f"{req}: missing (an empty file with a comment is fine)")
    elif entry.spec.image is ImageKind.BASE and re.search(r"^\s*torch\b", req.read_text(), re.M):
        problems.append(f"{folder / 'model.yaml'}: 'image: base' but requirements.txt installs torch; "
                        "use 'image: torch' (boom-tte/base-torch carries the pinned torch)")
    own = own_dockerfile(entry)
    if own is not None:
        text = own.read_text()
        if _instructions(text, entry.name) == _instructions(template_path().read_text(), entry.name):
            problems.append(f"{own}: repeats what models/_base/model.Dockerfile makes; delete it "
                            "(a folder's own Dockerfile is for models that need more)")
        elif not text.lstrip().startswith("#"):
            problems.append(f"{own}: the first line should be a '# comment' saying why this model needs its own "
                            "Dockerfile")
    return problems

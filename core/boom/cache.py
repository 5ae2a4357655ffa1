"""The orchestrator's side of the shared feature cache: where it lives, how runs reach it, list and clear.

The cache itself (format, lookup, concurrent filling) is ``boom_kit.feature_cache``, the one reader and
writer of its files; this module only locates it, hands it to model processes and summarises it.

- Location: ``$BOOM_FEATURE_CACHE``, else ``<data dir>/feature-cache`` (``boom.paths.data_dir``);
  ``BOOM_FEATURE_CACHE=off`` disables it (models then compute every feature in memory).
- Local runs get ``BOOM_FEATURE_CACHE=<host folder>`` and fill it.  Container runs (Docker, Apptainer)
  get the folder as a read-only mount at :data:`CONTAINER_MOUNT` and ``BOOM_FEATURE_CACHE`` pointing
  there: a container reads what local runs stored and computes the rest in memory, with a note.  A
  container never writes to it, so nothing a model image does can plant rows that other runs would read.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from boom_schema.limits import KIB
from boom import paths, runfiles

ENV = "BOOM_FEATURE_CACHE"
CONTAINER_MOUNT = "/task/feature-cache"
_OFF = {"", "0", "off", "none", "false", "no"}
META_MAX_BYTES = 64 * KIB  # a featuriser's meta.json (name, params, versions, width) is a few hundred bytes


def cache_dir() -> Optional[Path]:
    """The host folder of the feature cache, or None when the user switched it off."""
    value = os.environ.get(ENV)
    if value is None:
        return paths.data_dir() / "feature-cache"
    if value.strip().lower() in _OFF:
        return None
    return Path(value).expanduser().resolve()


def host_folder() -> Optional[Path]:
    """The cache folder, created if needed (a bind mount needs it to exist); None when off or not creatable."""
    root = cache_dir()
    if root is None:
        return None
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return root


def model_env(in_container: bool) -> dict[str, str]:
    """Environment variables that tell a model process where the cache is (empty when there is none)."""
    root = host_folder()
    if root is None:
        return {ENV: "off"}
    return {ENV: CONTAINER_MOUNT if in_container else str(root)}


def _kit():
    try:
        from boom_kit import feature_cache
    except ImportError as exc:  # core without the kit beside it
        raise RuntimeError("the feature cache needs boom-kit: pip install -e models/_kit") from exc
    return feature_cache


@dataclass
class FeaturiserSummary:
    """One featuriser's folder in the cache."""

    folder: str
    name: str
    versions: dict
    entries: int  # distinct molecules stored
    segments: int
    bytes: int
    corrupt: int  # segments failing their header or key checksum


def summary(root: Path) -> list[FeaturiserSummary]:
    """Per featuriser: molecules, segments, bytes (reads headers and keys only, never follows symlinks)."""
    fc = _kit()
    out = []
    if not root.is_dir():
        return out
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.is_dir(follow_symlinks=False):
            continue
        folder = Path(entry.path)
        name, versions = entry.name.rsplit("-", 1)[0], {}
        try:  # runfiles: a local run's model wrote this folder (never a link, a FIFO or a huge file)
            text = runfiles.read_text(folder / "meta.json", META_MAX_BYTES)
            if text is not None:
                data = json.loads(text)
                name, versions = data.get("name", name), data.get("versions", {})
        except ValueError:  # unsafe (UnsafeEntry) or not JSON: the folder name says what it is
            pass
        keys: set[bytes] = set()
        segments = corrupt = size = 0
        for shard in sorted(os.scandir(folder), key=lambda e: e.name):
            if not shard.is_dir(follow_symlinks=False):
                continue
            for path in fc.segment_files(Path(shard.path)):
                segments += 1
                size += path.lstat().st_size
                try:
                    seg = fc.Segment(path)
                except fc.CorruptSegment:
                    corrupt += 1
                    continue
                except FileNotFoundError:  # compacted away while we looked
                    continue
                keys.update(seg.key_list())
                seg.close()
        out.append(FeaturiserSummary(entry.name, name, versions, len(keys), segments, size, corrupt))
    return out


def clear(root: Path, featuriser: Optional[str] = None) -> tuple[int, int]:
    """Remove every featuriser folder (or those whose name or folder is ``featuriser``); (folders, bytes)."""
    removed = freed = 0
    if not root.is_dir():
        return 0, 0
    for entry in list(os.scandir(root)):
        if not entry.is_dir(follow_symlinks=False):
            continue
        if featuriser is not None and featuriser not in (entry.name, entry.name.rsplit("-", 1)[0]):
            continue
        freed += sum(p.lstat().st_size for p in Path(entry.path).rglob("*") if p.is_file() and not p.is_symlink())
        shutil.rmtree(entry.path)
        removed += 1
    return removed, freed

"""A content-addressed, per-molecule feature cache shared by every run, model, property and seed.

Why: the random forest spent 88 of its 109 s featurising, and on QM9 the eight properties would compute
the same 130,831 descriptor rows eight times per seed.  A row depends only on the featuriser (its name,
parameters, code and library versions) and on the input SMILES string, so that pair is the key: the
qm9 properties, every ``--subset``/``--train-subset`` and every seed share one stored row per molecule.

Layout under the cache root (``$BOOM_FEATURE_CACHE``)::

    <featuriser name>-<16 hex of its definition>/
        meta.json                      what the featuriser is (name, params, versions, width)
        <shard 00..3f>/                molecules by the first 6 bits of sha256(SMILES)
            .lock                      flock'ed by a writer while it fills this shard
            <time>-<pid>-<rand>.seg    immutable segment: keys + float64 rows + checksums

Rules that make it safe:
- Keys are the exact input SMILES (sha256, first 16 bytes), not a canonical form: a canonical string can
  order atoms differently and change the last bits of a descriptor, and rows must be byte-identical to
  what the featuriser returns for that string.
- A segment is written to a temporary name and renamed into place, so a reader sees it whole or not at
  all; it is never changed after that.  Its header holds sha256 checksums of its key and value blocks;
  a segment that fails them (truncated, flipped bits) is ignored, its molecules recomputed, and, when the
  cache is writable, it is removed.
- Two processes filling the same cache share the work instead of repeating it: each takes a free shard
  (``flock``, non-blocking), recomputes only what is still missing there, writes one segment and moves
  on; when every pending shard is held by someone else it waits for one and then reads what was written.
  Where locks are not supported the fill still works (duplicate rows are identical and harmless).
- A read-only cache (a container's read-only mount, a folder without write permission) is read as
  usual; what is missing is computed in memory and said in a note.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

try:  # POSIX only; without it fills are unlocked (still correct, possibly duplicated work)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

ENV = "BOOM_FEATURE_CACHE"
OFF_VALUES = {"", "0", "off", "none", "false", "no"}
MAGIC = b"BOOMFC1\n"
KEY_BYTES = 16
SHARD_BITS = 6  # 64 shards: qm9 gives ~2,000 molecules per unit of shared work
COMPACT_AT = 16  # a writer merges a shard's segments once it holds this many
MAX_HEADER = 1 << 16
SEGMENT_SUFFIX = ".seg"

Compute = Callable[[list[str]], np.ndarray]
Note = Callable[[str], None]


class CorruptSegment(ValueError):
    """A segment that is not what its header and checksums say (truncated or altered)."""


@dataclass(frozen=True)
class Featuriser:
    """What a stored row depends on besides the SMILES; its digest names the cache folder."""

    name: str
    width: int
    params: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)

    def definition(self) -> dict:
        return {"name": self.name, "width": self.width, "params": self.params, "versions": self.versions}

    @property
    def digest(self) -> str:
        blob = json.dumps(self.definition(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def folder_name(self) -> str:
        return f"{self.name}-{self.digest}"


class _Progress:
    """Plain progress lines on stderr while rows are computed (the run's log, streamed live by ``boom run``).

    One line every ``every_s`` seconds and one at the end, so a 130,831-molecule featurisation says how far it is
    without a line per shard.
    """

    def __init__(self, name: str, missing: int, found: int, every_s: float = 10.0, stream=None) -> None:
        self.name, self.missing, self.found0, self.every_s = name, missing, found, every_s
        self.stream = stream if stream is not None else sys.stderr
        self.started = self.last = time.perf_counter()

    def _line(self, found: int, final: bool) -> None:
        elapsed = time.perf_counter() - self.started
        done = found - self.found0
        what = "computed" if final else "computing"
        self.stream.write(f"featurise {self.name}: {what} {done}/{self.missing} molecules ({elapsed:.0f} s)\n")
        self.stream.flush()

    def update(self, found: int) -> None:
        if time.perf_counter() - self.last >= self.every_s:
            self.last = time.perf_counter()
            self._line(found, final=False)

    def done(self, found: int) -> None:
        if found > self.found0:
            self._line(found, final=True)


@dataclass
class CacheStats:
    """What one lookup did, for the run's notes and report."""

    molecules: int = 0  # distinct SMILES asked for
    hits: int = 0  # rows read from the cache
    computed: int = 0  # rows computed by this process
    written: int = 0  # rows this process added to the cache
    corrupt_segments: int = 0
    read_only: bool = False

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def smiles_key(smiles: str) -> bytes:
    """The 16-byte key of an input SMILES string (exact string, UTF-8)."""
    return hashlib.sha256(smiles.encode("utf-8")).digest()[:KEY_BYTES]


def shard_of(key: bytes) -> str:
    return f"{key[0] >> (8 - SHARD_BITS):02x}"


def default_root() -> Optional[Path]:
    """The cache folder the runner handed over in ``$BOOM_FEATURE_CACHE``; None when unset or off."""
    value = os.environ.get(ENV, "")
    if value.strip().lower() in OFF_VALUES:
        return None
    return Path(value).expanduser()


# -- segments ------------------------------------------------------------------------------------------------
def write_segment(folder: Path, featuriser: Featuriser, keys: bytes, values: np.ndarray) -> Path:
    """Write one immutable segment into ``folder`` (temporary name, then rename) and return its path."""
    values = np.ascontiguousarray(values, dtype="<f8")
    n = len(keys) // KEY_BYTES
    if values.shape != (n, featuriser.width):
        raise ValueError(f"segment rows {values.shape} do not match {n} keys x width {featuriser.width}")
    vbytes = values.tobytes()
    header = json.dumps({
        "n": n, "width": featuriser.width, "featuriser": featuriser.digest,
        "keys_sha256": hashlib.sha256(keys).hexdigest(), "values_sha256": hashlib.sha256(vbytes).hexdigest(),
    }).encode()
    name = f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = folder / f".{name}.tmp"
    final = folder / f"{name}{SEGMENT_SUFFIX}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(MAGIC + len(header).to_bytes(4, "little") + header + keys + vbytes)
        os.chmod(tmp, 0o644)  # a container running as another uid reads it through a read-only mount
        os.replace(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return final


class Segment:
    """A segment opened for reading: header and keys checked at once, values read (and checked) on demand."""

    def __init__(self, path: Path, featuriser: Optional[Featuriser] = None) -> None:
        self.path = path
        self._fh = open(path, "rb")
        try:
            if self._fh.read(len(MAGIC)) != MAGIC:
                raise CorruptSegment(f"{path.name}: not a feature-cache segment")
            size = int.from_bytes(self._fh.read(4), "little")
            if not 0 < size <= MAX_HEADER:
                raise CorruptSegment(f"{path.name}: bad header length")
            try:
                self.header = json.loads(self._fh.read(size))
                self.n = int(self.header["n"])
                self.width = int(self.header["width"])
            except (ValueError, KeyError, TypeError) as exc:
                raise CorruptSegment(f"{path.name}: unreadable header ({exc})") from None
            if featuriser is not None and (self.header.get("featuriser") != featuriser.digest
                                           or self.width != featuriser.width):
                raise CorruptSegment(f"{path.name}: written for another featuriser")
            self.keys = self._fh.read(self.n * KEY_BYTES)
            if len(self.keys) != self.n * KEY_BYTES or hashlib.sha256(self.keys).hexdigest() != self.header.get("keys_sha256"):
                raise CorruptSegment(f"{path.name}: key block fails its checksum")
        except BaseException:
            self._fh.close()
            raise

    def key_list(self) -> list[bytes]:
        k = self.keys
        return [k[i:i + KEY_BYTES] for i in range(0, len(k), KEY_BYTES)]

    def values(self) -> np.ndarray:
        want = self.n * self.width * 8
        raw = self._fh.read(want + 1)
        if len(raw) != want or hashlib.sha256(raw).hexdigest() != self.header.get("values_sha256"):
            raise CorruptSegment(f"{self.path.name}: value block fails its checksum")
        return np.frombuffer(raw, dtype="<f8").reshape(self.n, self.width)

    def close(self) -> None:
        self._fh.close()


def segment_files(shard_dir: Path) -> list[Path]:
    """Regular ``*.seg`` files of a shard (symlinks and anything else refused), oldest first."""
    out = []
    try:
        entries = list(os.scandir(shard_dir))
    except FileNotFoundError:
        return []
    for entry in entries:
        if entry.name.endswith(SEGMENT_SUFFIX) and entry.is_file(follow_symlinks=False):
            out.append(Path(entry.path))
    return sorted(out)


# -- the cache -----------------------------------------------------------------------------------------------
class FeatureCache:
    """One cache root.  ``rows()`` returns the featuriser's rows for a list of SMILES, filling what is missing."""

    def __init__(self, root: Path | str, writable: Optional[bool] = None) -> None:
        self.root = Path(root)
        if writable is None:
            writable = self._probe_writable()
        self.writable = writable

    @classmethod
    def from_env(cls) -> Optional["FeatureCache"]:
        root = default_root()
        return cls(root) if root is not None else None

    def _probe_writable(self) -> bool:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        return os.access(self.root, os.W_OK | os.X_OK)

    def folder(self, featuriser: Featuriser) -> Path:
        return self.root / featuriser.folder_name

    # .. public entry ..
    def rows(self, featuriser: Featuriser, smiles: Sequence[str], compute: Compute,
             note: Optional[Note] = None) -> tuple[np.ndarray, CacheStats]:
        """Rows (float64, one per input, duplicates included) of ``featuriser`` for ``smiles``."""
        smiles = [str(s) for s in smiles]
        unique = list(dict.fromkeys(smiles))
        keys = [smiles_key(s) for s in unique]
        stats = CacheStats(molecules=len(unique), read_only=not self.writable)
        out = np.full((len(unique), featuriser.width), np.nan)
        found = np.zeros(len(unique), dtype=bool)
        by_shard: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            by_shard.setdefault(shard_of(key), []).append(i)
        fdir = self.folder(featuriser)
        if self.writable:
            try:
                self._write_meta(fdir, featuriser)
            except OSError as exc:
                self._to_read_only(stats, note, exc)
        for shard, idx in by_shard.items():
            self._read_shard(fdir / shard, featuriser, keys, idx, out, found, stats, note)
        stats.hits = int(found.sum())
        pending = [s for s, idx in by_shard.items() if not found[idx].all()]
        if pending and self.writable:
            self._fill(fdir, featuriser, unique, keys, by_shard, pending, out, found, compute, stats, note)
        missing = np.flatnonzero(~found)
        if missing.size:  # read-only, or the cache stopped accepting writes
            out[missing] = self._compute(compute, [unique[i] for i in missing], featuriser)
            stats.computed += int(missing.size)
            if note:
                note(f"feature cache {self.root} is read-only: {missing.size} of {len(unique)} molecules' "
                     f"{featuriser.name} computed in memory (a local run with a writable cache fills it)")
        index = {s: i for i, s in enumerate(unique)}
        return out[[index[s] for s in smiles]], stats

    # .. internals ..
    @staticmethod
    def _compute(compute: Compute, smiles: list[str], featuriser: Featuriser) -> np.ndarray:
        values = np.asarray(compute(smiles), dtype=np.float64)
        if values.shape != (len(smiles), featuriser.width):
            raise ValueError(f"featuriser {featuriser.name} returned {values.shape} for {len(smiles)} molecules "
                             f"(expected width {featuriser.width})")
        return values

    def _to_read_only(self, stats: CacheStats, note: Optional[Note], exc: BaseException) -> None:
        self.writable = False
        stats.read_only = True
        if note:
            note(f"feature cache {self.root} refused a write ({type(exc).__name__}: {exc}); reading it only")

    @staticmethod
    def _write_meta(fdir: Path, featuriser: Featuriser) -> None:
        meta = fdir / "meta.json"
        if meta.exists():
            return
        fdir.mkdir(parents=True, exist_ok=True)
        tmp = fdir / f".meta-{uuid.uuid4().hex[:8]}.tmp"
        tmp.write_text(json.dumps(featuriser.definition(), indent=1, sort_keys=True))
        os.chmod(tmp, 0o644)
        os.replace(tmp, meta)

    def _read_shard(self, shard_dir: Path, featuriser: Featuriser, keys: list[bytes], idx: list[int],
                    out: np.ndarray, found: np.ndarray, stats: CacheStats, note: Optional[Note]) -> None:
        """Copy the shard's stored rows of the still-missing ``idx`` into ``out``."""
        for attempt in range(3):  # a compaction may remove a listed segment: list again
            try:
                self._read_shard_once(shard_dir, featuriser, keys, idx, out, found, stats, note)
                return
            except FileNotFoundError:
                continue

    def _read_shard_once(self, shard_dir: Path, featuriser: Featuriser, keys: list[bytes], idx: list[int],
                         out: np.ndarray, found: np.ndarray, stats: CacheStats, note: Optional[Note]) -> None:
        wanted = {keys[i]: i for i in idx if not found[i]}
        for path in segment_files(shard_dir):
            if not wanted:
                return
            try:
                seg = Segment(path, featuriser)
            except CorruptSegment as exc:
                self._drop_corrupt(path, exc, stats, note)
                continue
            try:
                rows = [(r, wanted[k]) for r, k in enumerate(seg.key_list()) if k in wanted]
                if not rows:
                    continue
                try:
                    values = seg.values()
                except CorruptSegment as exc:
                    self._drop_corrupt(path, exc, stats, note)
                    continue
                src, dst = (np.array(a) for a in zip(*rows))
                out[dst] = values[src]
                found[dst] = True
                for d in dst:
                    wanted.pop(keys[d], None)
            finally:
                seg.close()

    def _drop_corrupt(self, path: Path, exc: CorruptSegment, stats: CacheStats, note: Optional[Note]) -> None:
        stats.corrupt_segments += 1
        removed = False
        if self.writable:
            try:
                os.unlink(path)
                removed = True
            except OSError:
                pass
        if note:
            note(f"feature cache: {exc}; its molecules are recomputed" + ("; segment removed" if removed else ""))

    def _fill(self, fdir: Path, featuriser: Featuriser, unique: list[str], keys: list[bytes],
              by_shard: dict[str, list[int]], pending: list[str], out: np.ndarray, found: np.ndarray,
              compute: Compute, stats: CacheStats, note: Optional[Note]) -> None:
        """Compute and store the missing rows shard by shard, sharing the shards with concurrent writers."""
        pending = list(pending)
        progress = _Progress(featuriser.name, int((~found).sum()), int(found.sum()))
        try:
            self._fill_pending(fdir, featuriser, unique, keys, by_shard, pending, out, found, compute, stats, note,
                               progress)
        finally:
            progress.done(int(found.sum()))

    def _fill_pending(self, fdir: Path, featuriser: Featuriser, unique: list[str], keys: list[bytes],
                      by_shard: dict[str, list[int]], pending: list[str], out: np.ndarray, found: np.ndarray,
                      compute: Compute, stats: CacheStats, note: Optional[Note], progress: "_Progress") -> None:
        while pending and self.writable:
            progressed = False
            for shard in list(pending):
                with _shard_lock(fdir / shard, blocking=False) as held:
                    if not held:
                        continue
                    self._fill_shard(fdir / shard, featuriser, unique, keys, by_shard[shard], out, found,
                                     compute, stats, note)
                progress.update(int(found.sum()))
                pending.remove(shard)
                progressed = True
                if not self.writable:
                    return
            if pending and not progressed:  # all held by others: wait for one, then read what they wrote
                shard = pending.pop(0)
                with _shard_lock(fdir / shard, blocking=True):
                    self._fill_shard(fdir / shard, featuriser, unique, keys, by_shard[shard], out, found,
                                     compute, stats, note)
                progress.update(int(found.sum()))

    def _fill_shard(self, shard_dir: Path, featuriser: Featuriser, unique: list[str], keys: list[bytes],
                    idx: list[int], out: np.ndarray, found: np.ndarray, compute: Compute, stats: CacheStats,
                    note: Optional[Note]) -> None:
        before = int(found.sum())
        self._read_shard(shard_dir, featuriser, keys, idx, out, found, stats, note)  # another writer's rows
        stats.hits += int(found.sum()) - before
        missing = [i for i in idx if not found[i]]
        if not missing:
            return
        values = self._compute(compute, [unique[i] for i in missing], featuriser)
        out[missing] = values
        found[missing] = True
        stats.computed += len(missing)
        try:
            shard_dir.mkdir(parents=True, exist_ok=True)
            write_segment(shard_dir, featuriser, b"".join(keys[i] for i in missing), values)
            stats.written += len(missing)
            self._compact(shard_dir, featuriser)
        except OSError as exc:
            self._to_read_only(stats, note, exc)

    @staticmethod
    def _compact(shard_dir: Path, featuriser: Featuriser) -> None:
        """Merge a shard's segments into one once there are many (caller holds the shard lock)."""
        paths = segment_files(shard_dir)
        if len(paths) < COMPACT_AT:
            return
        merged_keys: dict[bytes, np.ndarray] = {}
        for path in paths:
            try:
                seg = Segment(path, featuriser)
                try:
                    values = seg.values()
                finally:
                    seg.close()
            except CorruptSegment:
                continue
            for r, k in enumerate(seg.key_list()):
                merged_keys.setdefault(k, values[r])
        if merged_keys:
            write_segment(shard_dir, featuriser, b"".join(merged_keys), np.stack(list(merged_keys.values())))
        for path in paths:  # the merged segment is in place before any of its sources goes
            try:
                os.unlink(path)
            except OSError:
                pass


@contextmanager
def _shard_lock(shard_dir: Path, blocking: bool) -> Iterator[bool]:
    """Hold the shard's flock; yields False when ``blocking`` is off and another process holds it.

    Where the file system has no locks (some network mounts) it yields True without one: writers then may
    compute the same rows twice, which costs time but stores nothing wrong.
    """
    if fcntl is None:
        yield True
        return
    try:
        shard_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(shard_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield True  # writing the segment will then fail and turn the cache read-only, with a note
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) and not blocking:
                yield False
                return
            yield True  # ENOLCK / EOPNOTSUPP: no locking here
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def cached_rows(featuriser: Featuriser, smiles: Sequence[str], compute: Compute, note: Optional[Note] = None,
                cache: Optional[FeatureCache] = None) -> tuple[np.ndarray, Optional[CacheStats]]:
    """``featuriser``'s rows for ``smiles`` through ``cache`` (default: ``$BOOM_FEATURE_CACHE``), else computed."""
    cache = cache if cache is not None else FeatureCache.from_env()
    if cache is None:
        return FeatureCache._compute(compute, [str(s) for s in smiles], featuriser), None
    return cache.rows(featuriser, smiles, compute, note)

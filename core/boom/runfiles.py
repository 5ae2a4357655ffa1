"""Safe access to run folders: the one place the orchestrator reads or writes a file a model could reach.

A run folder is written by the model (in a container, or a process of its own) and then read and written by
the orchestrator on the host, as root under compose.  Everything in it is therefore hostile input: a
symbolic link to a host file, a FIFO (a reader hangs), a device or a huge file (a reader exhausts memory).
The rules, used by every runner and by the orchestrator:

- **never follow a link**: an entry is read only when ``lstat`` says it is a regular file, and it is then
  opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked again on the descriptor (the entry may change between
  the two);
- **read within a limit** (``boom_schema.limits``): a file past it is refused without being read;
- **write by atomic replace**: a temp file created exclusively in the same folder, then ``os.replace`` onto
  the name, which replaces whatever entry stands there (a link is replaced, not followed; a planted directory
  is removed first);
- every refusal is an :class:`UnsafeEntry` whose message is one line naming the file and what was wrong.
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

from boom_schema import limits
from boom_schema.limits import GIB, describe_bytes

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_CHUNK = 1 << 20
DISK_LIMIT_NAME = "resources.disk_gb"  # named in every over-limit reason


class UnsafeEntry(ValueError):
    """A run-folder entry the orchestrator refuses to use; ``str()`` is one line naming it and why."""


def kind(mode: int) -> str:
    """What an ``st_mode`` is, in words for a reason: 'a symbolic link', 'a FIFO', ..."""
    for test, words in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
                        (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"),
                        (stat.S_ISREG, "a regular file")):
        if test(mode):
            return words
    return "not a regular file"


def lstat(path: Path) -> Optional[os.stat_result]:
    """The entry's own status (a link is not followed), None when nothing stands there."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def check_regular(path: Path) -> Optional[os.stat_result]:
    """None when absent; the status of a regular file; else :class:`UnsafeEntry`."""
    st = lstat(path)
    if st is None:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeEntry(f"{path.name} is {kind(st.st_mode)}, not a regular file; refused")
    if st.st_nlink > 1:
        raise UnsafeEntry(f"{path.name} is a hard link shared with another file; refused")
    return st


def is_regular(path: Path) -> bool:
    """True only for a regular file at ``path`` itself; absent, a link, FIFO, device or shared hard link: False."""
    try:
        return check_regular(path) is not None
    except UnsafeEntry:
        return False


def read_bytes(path: Path, max_bytes: int) -> Optional[bytes]:
    """The content of a regular file of at most ``max_bytes``; None when absent; else :class:`UnsafeEntry`."""
    name = path.name
    if check_regular(path) is None:
        return None
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # replaced by a link since the lstat
            raise UnsafeEntry(f"{name} is a symbolic link, not a regular file; refused") from None
        raise UnsafeEntry(f"{name} cannot be opened ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeEntry(f"{name} is {kind(st.st_mode)}, not a regular file; refused")
        if st.st_size > max_bytes:
            raise UnsafeEntry(f"{name} is {describe_bytes(st.st_size)}, over its limit of {describe_bytes(max_bytes)}; "
                              f"refused unread")
        parts, total = [], 0
        while True:
            chunk = os.read(fd, min(_CHUNK, max_bytes + 1 - total))
            if not chunk:
                break
            parts.append(chunk)
            total += len(chunk)
            if total > max_bytes:  # grew after the fstat
                raise UnsafeEntry(f"{name} grew past its limit of {describe_bytes(max_bytes)} while being read; refused")
        return b"".join(parts)
    finally:
        os.close(fd)


def read_text(path: Path, max_bytes: int) -> Optional[str]:
    """:func:`read_bytes` decoded as UTF-8 (undecodable bytes replaced: validation names the bad line)."""
    data = read_bytes(path, max_bytes)
    return None if data is None else data.decode("utf-8", errors="replace")


def read_tail(path: Path, n_bytes: int) -> Optional[str]:
    """The last ``n_bytes`` of a regular file (a log's end); None when absent or not a regular file."""
    try:
        if check_regular(path) is None:
            return None
        fd = os.open(path, _READ_FLAGS)
    except (UnsafeEntry, OSError):
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        os.lseek(fd, max(0, st.st_size - n_bytes), os.SEEK_SET)
        return os.read(fd, n_bytes).decode("utf-8", errors="replace")
    finally:
        os.close(fd)


def clear(path: Path) -> Optional[str]:
    """Remove whatever entry stands at ``path`` (a link itself, never its target); what it was, or None."""
    st = lstat(path)
    if st is None:
        return None
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)  # rmtree does not follow the links inside
    else:
        os.unlink(path)
    return kind(st.st_mode)


def write_atomic(path: Path, data: Union[str, bytes]) -> None:
    """Write ``path`` by exclusive temp file + ``os.replace``: no link is followed, no half-written file is seen."""
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)  # O_EXCL: never a link
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.chmod(tmp, 0o644)
        st = lstat(path)
        if st is not None and stat.S_ISDIR(st.st_mode):
            clear(path)  # os.replace cannot replace a directory
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_rendered(path: Path, render: Callable[[Path], object]) -> None:
    """Let ``render`` (a plotting call that wants a path) write into a private folder, then place it atomically."""
    with tempfile.TemporaryDirectory(prefix="boom-render-") as private:
        out = Path(private) / path.name
        render(out)
        write_atomic(path, out.read_bytes())


def append_text(path: Path, text: str) -> None:
    """Append to a log; a planted entry at that name is removed first (a link is never written through)."""
    st = lstat(path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        clear(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeEntry(f"{path.name} is not a regular file; not written")
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def folder_bytes(folder: Path) -> int:
    """Apparent size of everything under ``folder`` (sparse files count whole; links are not followed)."""
    total = 0
    for root, dirs, files in os.walk(folder):  # os.walk does not descend into linked folders
        for name in (*dirs, *files):
            st = lstat(Path(root) / name)
            if st is not None:
                total += st.st_size
    return total


def cap_log(path: Path) -> Optional[str]:
    """Cut a log past ``limits.LOG_MAX_BYTES`` to its first and last halves with a note between; the note, or None."""
    cap = limits.LOG_MAX_BYTES  # read at each call (tests lower it)
    try:
        st = check_regular(path)
    except UnsafeEntry:
        return None  # sweep() reports it
    if st is None or st.st_size <= cap:
        return None
    half = cap // 2
    note = (f"\n[boom] log.txt was {describe_bytes(st.st_size)}, over its limit of {describe_bytes(cap)}: "
            f"{describe_bytes(st.st_size - 2 * half)} cut here\n")
    fd = os.open(path, _READ_FLAGS)
    try:
        head = os.pread(fd, half, 0)
        tail = os.pread(fd, half, st.st_size - half)
    finally:
        os.close(fd)
    write_atomic(path, head + note.encode() + tail)
    return note.strip()


def sweep(folder: Path, own_names: Iterable[str] = ()) -> list[str]:
    """Remove every entry of a finished run folder that is not a plain file or folder; one line per removal.

    A model's folder may hold only regular files and directories: a link, FIFO, device or socket anywhere in it
    (or a hard link shared with a file outside) is removed here, so neither this orchestrator nor a later
    ``cp -r`` / ``tar`` of the results follows it.  ``own_names`` (record.json, scores.json, parity.png) are
    written by the orchestrator after the run; a directory standing there is removed too.
    """
    problems = []
    for name in own_names:
        st = lstat(folder / name)
        if st is not None and stat.S_ISDIR(st.st_mode):
            clear(folder / name)
            problems.append(f"{name} was a directory (removed; the orchestrator writes that name)")
    for root, dirs, files in os.walk(folder):
        for name in sorted((*dirs, *files)):
            path = Path(root) / name
            st = lstat(path)
            if st is None or stat.S_ISDIR(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_nlink == 1):
                continue
            what = "a hard link shared with another file" if stat.S_ISREG(st.st_mode) else kind(st.st_mode)
            os.unlink(path)
            problems.append(f"{path.relative_to(folder)} was {what} (removed)")
    return problems


def over_disk(folder: Path, disk_gb: float) -> Optional[str]:
    """A one-line reason when ``folder`` (less the earlier attempts in ``previous/``) holds more than ``disk_gb``."""
    limit = int(disk_gb * GIB)
    total = 0
    for entry in os.scandir(folder):
        if entry.name == "previous":
            continue
        path = Path(entry.path)
        st = lstat(path)
        if st is None:
            continue
        total += folder_bytes(path) if stat.S_ISDIR(st.st_mode) else st.st_size
    if total <= limit:
        return None
    return (f"run folder holds {describe_bytes(total)}, over its limit of {describe_bytes(limit)} "
            f"({DISK_LIMIT_NAME}: {disk_gb:g} in model.yaml)")


def disk_watch(folder: Path, disk_gb: float, every_s: float = 5.0) -> Callable[[], Optional[str]]:
    """A check for a runner's wait loop: the over-limit reason at most every ``every_s``, else None."""
    last = [0.0]

    def check() -> Optional[str]:
        now = time.monotonic()
        if now - last[0] < every_s:
            return None
        last[0] = now
        try:
            over = over_disk(folder, disk_gb)
        except OSError:
            return None
        return None if over is None else f"{over}; the model was stopped"
    return check

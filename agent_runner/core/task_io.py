"""Task files on disk: read one without blocking or following a link out of the repo; write one atomically.

A task file is read only when it is a regular file: a FIFO would block the reader, `/dev/zero` never ends, and
a symlink to a file outside the repo would show that file to a model. Each is a TaskFileError saying why the
file "cannot be read". A new task file appears whole or not at all: it is written to a hidden temp file in the
same folder (its name is no task file's), synced, then linked into place, so a reader never sees it half
written and a full disk leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

from agent_runner.core.errors import TaskFileError

KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def read_task_bytes(path: Path, *, limit: int) -> tuple[bytes, int]:
    """Return the first `limit` + 1 bytes of the regular file at `path` (no more is read) and its size."""
    _check_link(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _unreadable(path, exc.strerror or str(exc)) from exc
    try:
        info = os.fstat(fd)
        kind = KINDS.get(stat.S_IFMT(info.st_mode))
        if kind is not None:
            raise _unreadable(path, f"it is {kind}, not a regular file")
        return _read_upto(fd, limit + 1), info.st_size
    except OSError as exc:
        raise _unreadable(path, exc.strerror or str(exc)) from exc
    finally:
        os.close(fd)


def _read_upto(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    n_read = 0
    while n_read < size and (chunk := os.read(fd, size - n_read)):
        chunks.append(chunk)
        n_read += len(chunk)
    return b"".join(chunks)


def _check_link(path: Path) -> None:
    """Raise TaskFileError when `path` is a symlink that is dangling, loops, or leads out of its repo."""
    target = "?"
    try:
        if not path.is_symlink():
            return
        target = os.readlink(path)
        os.stat(path)
    except FileNotFoundError as exc:
        raise _unreadable(path, f"it is a symlink to {target}, which does not exist") from exc
    except OSError as exc:
        reason = "it is a symlink loop" if exc.errno == errno.ELOOP else exc.strerror or str(exc)
        raise _unreadable(path, reason) from exc
    repo = repo_of(path.parent)
    if not Path(os.path.realpath(path)).is_relative_to(repo):
        raise _unreadable(path, f"it is a symlink to {target}, outside the repo {repo}; move the file in")


def repo_of(folder: Path) -> Path:
    """Return the resolved repo holding `folder`: the nearest folder with a `.git` (else `folder` itself)."""
    start = folder.resolve()
    return next((p for p in (start, *start.parents) if (p / ".git").exists()), start)


def _unreadable(path: Path, reason: str) -> TaskFileError:
    return TaskFileError(str(path), f"cannot be read: {reason}")


def write_new_file(path: Path, text: str, *, replace: bool = False) -> None:
    """Create `path` holding `text`, whole or not at all; raise FileExistsError when it exists already.

    With `replace`, an existing file is swapped for the new one in one rename (readers see old or new).
    """
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path) if replace else _link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    _sync_folder(path.parent)


def _link(temp: Path, path: Path) -> None:
    """Put `temp` at `path` unless something is there (a hard link; a rename where links fail)."""
    try:
        os.link(temp, path)
    except FileExistsError:
        raise
    except OSError:
        if path.exists() or path.is_symlink():
            raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
        os.replace(temp, path)


def _sync_folder(folder: Path) -> None:
    """Make the new name durable (best effort: some filesystems cannot sync a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

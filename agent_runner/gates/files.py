"""Reading back the files a gate run wrote where the agent's code could reach them (its scratch folder).

The agent's test code runs in the same sandbox as the gate's plugins and may replace their output with a
link, a FIFO, a device or a huge (sparse) file. `read_gate_file` opens the path itself (never following a
link, never blocking on a FIFO), reads only a regular file, and at most MAX_GATE_FILE_BYTES of it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_GATE_FILE_BYTES = 64 * 1024 * 1024


class GateFileError(OSError):
    """A gate's output file cannot be trusted: a link, not a regular file, or too big."""


def read_gate_bytes(path: Path, limit: int = MAX_GATE_FILE_BYTES) -> bytes:
    """Return the bytes of the regular file `path`; raise GateFileError (an OSError) for anything else.

    A missing file raises FileNotFoundError as usual.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        if os.path.islink(path):
            raise GateFileError(f"{path.name} is a symbolic link, not the gate's report") from exc
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise GateFileError(f"{path.name} is not a regular file")
        if info.st_size > limit:
            raise GateFileError(f"{path.name} is {info.st_size} bytes (more than the {limit} a gate reads)")
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise GateFileError(f"{path.name} grew past the {limit} bytes a gate reads")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_gate_text(path: Path, limit: int = MAX_GATE_FILE_BYTES) -> str:
    """Return the text (UTF-8, errors replaced) of the regular file `path`; see read_gate_bytes."""
    return read_gate_bytes(path, limit).decode("utf-8", errors="replace")

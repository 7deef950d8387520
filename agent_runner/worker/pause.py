"""The stop channel of a running attempt: a `pause` file in its run folder, checked before each model call.

The coordinator (or, on another machine, its executor) writes the file when a run's budget is reached; the
worker, not the agent, reads it before every model call, so the attempt stops there (never in the middle
of a gate round) and comes back as PAUSED: re-queued with no attempt spent. The run folder is outside what
the agent's sandbox can see or write; the coordinator still honours a PAUSED result only for an attempt it
asked to pause (an agent without a sandbox could write the file).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from stat import S_ISREG

PAUSE_FILE = "pause"
MAX_BYTES = 1024  # the reason, one line; anything longer is cut there


def pause_path(run_dir: Path) -> Path:
    """Return the pause file of the attempt whose run folder is `run_dir`."""
    return run_dir / PAUSE_FILE


def request_pause(run_dir: Path, reason: str) -> None:
    """Ask the attempt of `run_dir` to stop before its next model call (written whole: temp file, rename)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / f".{PAUSE_FILE}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # whatever is there (a link planted by an agent without a sandbox) is never followed
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write((reason or "paused").encode("utf-8")[:MAX_BYTES])
    os.replace(tmp, pause_path(run_dir))


def pause_reason(run_dir: Path) -> str | None:
    """Return why the attempt is asked to pause, or None while it is not (one stat when there is no file)."""
    try:
        fd = os.open(pause_path(run_dir), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with contextlib.closing(os.fdopen(fd, "rb")) as fh:
        if not S_ISREG(os.fstat(fd).st_mode):
            return None
        text = fh.read(MAX_BYTES).decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else "paused"

"""A forked worker's life: its own session, one work request served as `exec -` serves it, then clean-up.

Both fork servers (forkserver.py on this machine, forksocket.py on a remote one) fork children through
here; a child never returns to the server's code. What they (and `exec -`) read from pipes and sockets is
read here too, in linear time and with a byte limit: lines (LineReader) and whole requests (read_request).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from agent_runner.core.errors import ExecutorError
from agent_runner.executors.fork.client import MAX_COMMAND_BYTES
from agent_runner.repo import pools
from agent_runner.worker import serve as worker

LATE_NICE = 19  # added niceness for a worker's clean-up after its result is out
# A work request on a worker's stdin (`exec -`, a machine's forked worker) may carry the source repo as a
# base64 bundle for machines that cannot fetch it: 1 GiB holds a bundle of about 750 MB, beyond what one
# should ship per attempt (such a machine should fetch: `source = "remote"`).
MAX_REQUEST_BYTES = 1 << 30
READ_CHUNK = 1 << 20


class LineTooLong(ValueError):
    """A line passed its reader's byte limit; the rest of it, up to its newline, is skipped."""


class LineReader:
    """Splits bytes into lines as they arrive: each byte is searched once, no line is kept past `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._parts: list[bytes] = []  # the current line so far (no newline in it)
        self.pending = 0  # its length in bytes
        self._is_skipping = False  # the current line went over the limit: drop it up to its newline

    def feed(self, chunk: bytes) -> list[bytes | LineTooLong]:
        """Return the lines `chunk` completes (without newlines), a LineTooLong for each over the limit."""
        found: list[bytes | LineTooLong] = []
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            self._add(chunk[start:end], found)
            if not self._is_skipping:
                found.append(b"".join(self._parts))
            self._parts, self.pending, self._is_skipping = [], 0, False
            start = end + 1
        self._add(chunk[start:], found)
        return found

    def _add(self, piece: bytes, found: list[bytes | LineTooLong]) -> None:
        if self._is_skipping or not piece:
            return
        if self.pending + len(piece) > self.limit:
            found.append(LineTooLong(f"a line over {self.limit} bytes was refused"))
            self._parts, self.pending, self._is_skipping = [], 0, True
            return
        self._parts.append(piece)
        self.pending += len(piece)


def read_request(stream: BinaryIO, *, limit: int = MAX_REQUEST_BYTES) -> bytes:
    """Return all of `stream` (a work request); past `limit` bytes raise ExecutorError, the rest unread."""
    parts: list[bytes] = []
    size = 0
    while chunk := stream.read(min(READ_CHUNK, limit + 1 - size)):
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            raise ExecutorError(f"the work request on stdin is over {limit} bytes; it was refused unread")
    return b"".join(parts)


def fork_child(body: Callable[[], int]) -> int:
    """Fork; in the child, in its own session, run `body` and exit with its code. Return the child's pid."""
    # Frozen objects are never scanned: a child's collections then copy none of the parent's pages
    # (a full collection over unfrozen inherited objects costs a child ~20 ms of copy-on-write faults).
    gc.freeze()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        code = body()
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def run_child(command: dict[str, Any], done_fd: int | None = None) -> int:
    """Run the request as `exec -` would, logging to its log file, and write the result line to its file."""
    _redirect(command["log"])
    target = Path(command["result"])

    def emit(line: str) -> None:
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(line, encoding="utf-8")
        os.replace(tmp, target)
        if done_fd is not None:
            os.write(done_fd, f"{os.getpid()}\n".encode())  # one short write: atomic on a pipe

    def report(line: str) -> None:  # to the executor, through the server, on the pipe "done" takes
        with contextlib.suppress(OSError):
            os.write(done_fd or 0, f"{os.getpid()} {line}".encode("utf-8", "replace"))  # < PIPE_BUF: whole

    inline = bool(command.get("inline_bundle", False))
    # Nobody waits for this process's exit (the "done" above), so it can make checkouts ahead then.
    ahead = int(command.get("ahead", 0))
    return serve_child(
        lambda: command["request"], Path(command["workdir"]), inline, emit, ahead=ahead,
        report=report if done_fd is not None else None,
    )  # fmt: skip


def serve_child(
    read_request: Callable[[], Any],
    workdir: Path,
    inline_bundle: bool,
    emit: Callable[[str], None],
    *,
    ahead: int = 0,
    report: Callable[[str], None] | None = None,
) -> int:
    """In a forked child: serve one work request as `exec -` does and hand its result line to `emit`.

    With `ahead`, it then makes a checkout for a next attempt unless that many wait (niced, then exits).
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    worker.die_with_parent()
    worker.log_to_stderr()
    trash: list[Path] = []
    result = worker.serve_request(
        read_request(), workdir=workdir, inline_bundle=inline_bundle, trash=trash, ahead=ahead > 0,
        report=report,
    )  # fmt: skip
    emit(worker.result_line(result))
    # What is left (deleting the checkout, this process's exit) waits for any CPU other attempts need.
    lower_priority(LATE_NICE)
    worker.remove_in_background(trash)
    pools.make_noted_ahead(ahead)
    return 0


def lower_priority(nice: int) -> None:
    """Lower this process's CPU priority, and its session's (a child leads its own session).

    With the kernel's autogroups (Linux's default), each session shares the CPU as one group and a
    process's own nice value only counts inside its session: the session's nice must change too.
    """
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    with contextlib.suppress(OSError), open("/proc/self/autogroup", "w", encoding="ascii") as fh:
        fh.write(str(nice))


def _redirect(log: str) -> None:
    """Send stdout and stderr to the attempt's log; stdin reads nothing."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.close(null)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)


def await_command(fd: int, poll_s: float) -> dict[str, Any] | None:
    """Read one request line from the server; None when the server closed the pipe, died or sent too much."""
    server, reader = os.getppid(), LineReader(MAX_COMMAND_BYTES)
    lines: list[bytes | LineTooLong] = []
    while not lines:
        ready, _, _ = select.select([fd], [], [], poll_s)
        if os.getppid() != server:
            return None
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            lines = reader.feed(chunk)
    if isinstance(lines[0], LineTooLong):
        return None
    command: dict[str, Any] = json.loads(lines[0])
    return command


def detach_stdio() -> None:
    """Point stdin and stdout at /dev/null (a spare's inherited pipes must not keep the client waiting)."""
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)

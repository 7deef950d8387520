"""A worker's pipes, read with bounds: what a worker prints cannot fill the coordinator's memory."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from typing import IO

from agent_runner.core.errors import ExecutorError

# What a worker prints: a result line can carry the attempt's commits as a base64 bundle. The diff policy
# caps each changed file at 1 MB; 256 MiB (a 190 MB pack) is far beyond any change it accepts, and keeps a
# runaway worker from filling the coordinator's memory.
MAX_OUTPUT_BYTES = 256 << 20
MAX_STDERR_BYTES = 1 << 20  # ssh's messages and the worker's log: only this much of its end is kept


def communicate_bounded(
    proc: subprocess.Popen[bytes],
    stdin: bytes,
    *,
    timeout_s: float | None = None,
    limit: int = MAX_OUTPUT_BYTES,
    err_limit: int = MAX_STDERR_BYTES,
    on_line: Callable[[bytes], None] | None = None,
) -> tuple[bytes, bytes]:
    """Like `proc.communicate(stdin)`, but stdout is refused past `limit` bytes and stderr keeps its end.

    With `on_line`, each stdout line of at most LINE_BYTES is also handed to it as it arrives (the
    worker's report lines, before its result line).

    A stream the process was not given a pipe for (stderr to a log file) is left alone. Raises
    ExecutorError when stdout passes the limit, subprocess.TimeoutExpired after `timeout_s`; in both
    cases the process is killed first.
    """
    out, err = _Drain(limit, on_full=proc.kill), _Drain(err_limit)
    out.lines = _Lines(on_line) if on_line is not None else None
    jobs: list[tuple[Callable[..., None], IO[bytes] | None]] = [
        (lambda stream: _feed(stream, stdin), proc.stdin), (out.run, proc.stdout), (err.run, proc.stderr)
    ]  # fmt: skip
    threads = [threading.Thread(target=job, args=(s,), daemon=True) for job, s in jobs if s is not None]
    for thread in threads:
        thread.start()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    finally:
        for thread in threads:
            thread.join()
    if out.is_full:
        raise ExecutorError(f"the worker printed over {limit} bytes; its output was refused")
    return out.data(), err.data()


def _feed(stream: IO[bytes], data: bytes) -> None:
    with contextlib.suppress(OSError), stream:  # a process that exits unfed is not an error here
        stream.write(data)


class _Drain:
    """Reads a pipe in chunks: up to `limit` bytes, past which it calls `on_full` and stops, or (without
    `on_full`) to its end, keeping the last `limit` bytes."""

    def __init__(self, limit: int, *, on_full: Callable[[], None] | None = None) -> None:
        self.limit = limit
        self.on_full = on_full
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.is_full = False
        self.lines: _Lines | None = None

    def run(self, stream: IO[bytes]) -> None:
        with stream:
            while not self.is_full and (chunk := os.read(stream.fileno(), 65536)):
                self._keep(chunk)
                if self.lines is not None:
                    self.lines.feed(chunk)

    def _keep(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)
        if self.size <= self.limit:
            return
        if self.on_full is not None:
            self.is_full = True
            self.on_full()
            return
        while self.size - len(self.chunks[0]) >= self.limit:
            self.size -= len(self.chunks.popleft())

    def data(self) -> bytes:
        return b"".join(self.chunks)[-self.limit :]


LINE_BYTES = 4096  # a line longer than this (a result line with its bundle) is not passed to `on_line`


class _Lines:
    """Splits a stream into its short lines as chunks arrive, handing each to `on_line`."""

    def __init__(self, on_line: Callable[[bytes], None]) -> None:
        self.on_line = on_line
        self.part = b""
        self.is_skipping = False  # the current line is longer than LINE_BYTES

    def feed(self, chunk: bytes) -> None:
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            line = self.part + chunk[start:end]
            if not self.is_skipping and len(line) <= LINE_BYTES:
                self.on_line(line)
            self.part, self.is_skipping = b"", False
            start = end + 1
        rest = chunk[start:]
        if self.is_skipping or len(self.part) + len(rest) > LINE_BYTES:
            self.part, self.is_skipping = b"", True
        else:
            self.part += rest

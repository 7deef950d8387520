"""Running a child to its end with its output bounded: a command printing gigabytes keeps its first and last
MAX_OUTPUT_BYTES (halves) of each stream, and the middle is counted, not kept.

One thread, one selector over the pipes (as `subprocess.communicate` does), so a child is never blocked on a
full pipe and the runner's memory does not follow the child's output.
"""

from __future__ import annotations

import os
import select
import selectors
import subprocess
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

MAX_OUTPUT_BYTES = 64 * 1024 * 1024  # per stream: a ruff JSON report of ~90,000 violations still fits
CHUNK = 64 * 1024


@dataclass
class Bounded:
    """One stream as read: its first half-limit bytes, its last half-limit bytes, and how many were cut."""

    limit: int = MAX_OUTPUT_BYTES
    head: bytearray = field(default_factory=bytearray)
    tail: deque[bytes] = field(default_factory=deque)
    n_tail: int = 0
    n_cut: int = 0

    def add(self, chunk: bytes) -> None:
        room = self.limit // 2 - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail.append(chunk)
            self.n_tail += len(chunk)
        while self.tail and self.n_tail - len(self.tail[0]) >= self.limit // 2:  # whole chunks: no copying
            dropped = self.tail.popleft()
            self.n_tail -= len(dropped)
            self.n_cut += len(dropped)

    def text(self) -> str:
        """The kept bytes as text (newlines as universal newlines read them), a marker where some were cut."""
        cut = f"\n[... {self.n_cut} bytes of output cut here ...]\n".encode() if self.n_cut else b""
        data = bytes(self.head) + cut + b"".join(self.tail)
        return data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")


Sinks = dict[IO[bytes], Bounded]


@dataclass(frozen=True)
class Ended:
    """How a child ended: exit code (-1 when killed at the timeout), its two streams, seconds taken."""

    exit_code: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False


def run_bounded(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
    stdin_text: str | None = None,
    new_session: bool = False,
) -> Ended:
    """Run `argv` to its end or `timeout_s` (then kill it); OSError when it cannot start. With `new_session`
    the child has a session of its own (a terminal's Ctrl-C does not reach it)."""
    start = time.monotonic()
    stdin = subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL
    out, err = Bounded(MAX_OUTPUT_BYTES), Bounded(MAX_OUTPUT_BYTES)
    with subprocess.Popen(
        argv, cwd=cwd, env=dict(env), stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=new_session,
    ) as proc:  # fmt: skip
        data = (stdin_text or "").encode("utf-8", "replace")
        pipes = {proc.stdout: out, proc.stderr: err}
        try:
            is_done = _pump(proc, {k: v for k, v in pipes.items() if k is not None}, data, start + timeout_s)
        except BaseException:  # an attempt's alarm, Ctrl-C: the child ends with us (as subprocess.run does)
            proc.kill()
            raise
        if not is_done:
            proc.kill()
        code = proc.wait()
    seconds = time.monotonic() - start
    if not is_done:
        return Ended(-1, out.text(), f"timed out after {timeout_s:.0f} s", timeout_s, timed_out=True)
    return Ended(code, out.text(), err.text(), seconds)


def _pump(proc: subprocess.Popen[bytes], sinks: Sinks, data: bytes, deadline: float) -> bool:
    """Feed stdin and read both pipes until they close; False when `deadline` passed first."""
    with selectors.DefaultSelector() as selector:
        for pipe in sinks:
            selector.register(pipe, selectors.EVENT_READ)
        if proc.stdin is not None and data:
            selector.register(proc.stdin, selectors.EVENT_WRITE)
        elif proc.stdin is not None:
            proc.stdin.close()
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            for key, _ in selector.select(timeout=left):
                data = _step(key.fileobj, sinks, data, selector)  # type: ignore[arg-type]
    try:
        proc.wait(timeout=max(0.0, deadline - time.monotonic()))  # the pipes closed: it is ending
    except subprocess.TimeoutExpired:
        return False
    return True


def _step(pipe: IO[bytes], sinks: Sinks, data: bytes, selector: selectors.BaseSelector) -> bytes:
    """Read one chunk from an output pipe, or write one chunk to stdin; return the stdin bytes still to go."""
    fd = pipe.fileno()
    if pipe in sinks:
        chunk = os.read(fd, CHUNK)
        if chunk:
            sinks[pipe].add(chunk)
        else:
            _close(pipe, selector)
        return data
    try:
        n = os.write(fd, data[: select.PIPE_BUF])  # never more than the pipe takes without blocking
    except BrokenPipeError:  # the child stopped reading: the rest of its input is not needed
        n = len(data)
    if not data[n:]:
        _close(pipe, selector)
    return data[n:]


def _close(pipe: IO[bytes], selector: selectors.BaseSelector) -> None:
    selector.unregister(pipe)
    pipe.close()

"""The worker side of `run-agents exec -`: one work request in, one result out, no orphans left behind."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agent_runner.core.result import TaskResult, WorkRequest
from agent_runner.models import ratelimit
from agent_runner.worker.job import run_job
from agent_runner.worker.verify import run_verify

LOG_FORMAT = "%(asctime)s %(name)s: %(message)s"


def serve_request(
    data: bytes | str,
    *,
    workdir: Path,
    inline_bundle: bool = False,
    trash: list[Path] | None = None,
    ahead: bool = False,
    report: ratelimit.Sink | None = None,
) -> TaskResult:
    """Run the WorkRequest JSON `data` with stdout kept clean, and return its result.

    Rate-limit reports go to `report`, by default as lines on the real stdout before the result line
    (the agent's commands never hold that descriptor: it is not inherited).
    """
    request = WorkRequest.model_validate_json(data)
    with stdout_to_stderr() as stdout, last_words(), reporting(report or _line_writer(stdout)):
        if request.verify is not None:  # a verify-only job (the integration train): no agent
            return run_verify(request, workdir=workdir, trash=trash)
        return run_job(request, workdir=workdir, inline_bundle=inline_bundle, trash=trash, ahead=ahead)


@contextmanager
def reporting(sink: ratelimit.Sink) -> Iterator[None]:
    """Send the models' rate-limit report lines to `sink` while the block runs."""
    ratelimit.set_sink(sink)
    try:
        yield
    finally:
        ratelimit.set_sink(None)


def _line_writer(fd: int) -> ratelimit.Sink:
    def write(line: str) -> None:
        with contextlib.suppress(OSError):  # a hint only: a closed pipe costs the hint, not the attempt
            os.write(fd, line.encode("utf-8", "replace"))  # one short write: whole on a pipe

    return write


@contextmanager
def last_words() -> Iterator[None]:
    """Write an exception that ends the worker to stderr (the attempt's worker.log) as it propagates.

    One unbuffered write per line of the traceback: a log on a full disk keeps what fits, and an
    exception here never hides the one that ended the worker.
    """
    try:
        yield
    except Exception as exc:
        lines = ["the worker failed:\n", *traceback.format_exception(exc)]
        with contextlib.suppress(OSError):
            for line in lines:
                os.write(2, line.encode("utf-8", "replace"))
        raise


def remove_in_background(paths: list[Path]) -> None:
    """Delete `paths` in a detached `rm` process, so this worker can exit (and report) at once."""
    if not paths:
        return
    # A spawned `rm` (vfork) is cheaper than forking this large process. Its own process group outlives
    # us (a kill of ours misses it); it stays in our session, whose lowered CPU priority it shares.
    subprocess.Popen(
        ["rm", "-rf", "--", *map(str, paths)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, process_group=0,
    )  # fmt: skip


def result_line(result: TaskResult) -> str:
    """Return the one line a worker prints: the result JSON."""
    return result.model_dump_json(exclude_none=True) + "\n"


def log_to_stderr() -> None:
    """Send the runner's log lines (phase timings) to stderr, which executors keep as worker.log."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=LOG_FORMAT)


@contextmanager
def stdout_to_stderr() -> Iterator[int]:
    """Keep stdout for the one result line (and report lines): anything else written to fd 1 goes to
    stderr. Yields the real stdout's descriptor (not inherited by the commands the worker starts)."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield saved
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def die_with_parent(poll_s: float = 1.0) -> None:
    """Exit (with the whole process group when leading it) once the process that started this one dies."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(poll_s)
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpgrp(), signal.SIGKILL)  # the agent's commands go too
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()

"""A worker parent with the runner already imported: it forks one child per attempt.

Starting `run-agents exec -` costs about half a second of interpreter start and imports per attempt; a
fork of this process costs a few milliseconds. The child runs exactly what `exec -` runs (worker.py) in its
own session, with stdout and stderr in the attempt's worker.log and the result JSON in a file.

Protocol (one JSON object per line): the executor writes `{"id", "request", "workdir", "log", "result",
"inline_bundle"}`; the server answers `{"id", "pid"}` at once, `{"pid", "done"}` when the child has written
its result (it still has to exit), `{"pid", "report"}` for a child's report line (a rate limit its model
hit) and `{"pid", "exit"}` when the child ends. A line that is not such a
command, or is over MAX_COMMAND_BYTES (executors/forkclient.py), is answered `{"error"}` and skipped.
When its stdin closes (the coordinator is gone) it kills every child's process group and exits.
"""

from __future__ import annotations

import codecs
import gc
import importlib
import json
import os
import select
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agent_runner.config import prompts
from agent_runner.core import redact
from agent_runner.core.result import WorkRequest
from agent_runner.executors.fork import child as forkchild
from agent_runner.executors.fork.client import MAX_COMMAND_BYTES
from agent_runner.models import module_of

PRELOAD = (
    "agent_runner.worker.serve",
    "agent_runner.worker.job_agent",
    "agent_runner.worker.agent",
    "agent_runner.models",
    "agent_runner.tools",
    "agent_runner.worker.trajectory",
    "agent_runner.config.prompts",
    "agent_runner.gates.kinds",
    "agent_runner.worker.sandbox",
    "agent_runner.core.redact",
)
POLL_S = 1.0
REPORT_LINE_BYTES = 2048  # a child's "<pid> <report>" line (models/ratelimit.py: at most 1 KiB)
SPARE_IDLE_S = 0.05  # quiet time after which the server forks its spare children
COMMAND_KEYS = frozenset({"id", "request", "workdir", "log", "result"})


def preload() -> None:
    """Import what every attempt needs, so children inherit it."""
    for name in PRELOAD:  # a broken import fails here, loudly, rather than in every child
        importlib.import_module(name)
    _warm()
    # No collection first: it costs 10 ms of every start, and frees little (import-time garbage stays).
    gc.freeze()


def _warm() -> None:
    """Do once what every attempt does first: compile the prompt templates and the redaction patterns."""
    codecs.lookup("ascii")  # git's ref files are read as ASCII: its codec module loads here, not per child
    try:
        prompts.warm()
        redact.Redactor()  # its token patterns land in re's cache, which children inherit
    except Exception:  # a warm-up only: a child that needs them reports the real error
        return


def serve(read_fd: int = 0, write_fd: int = 1, *, spares: int = 0) -> None:
    """Fork a child per request line until the input closes; report pids and exit codes.

    With `spares`, the server forks up to that many children ahead of time, whenever it has had nothing to
    do for SPARE_IDLE_S, and hands the next requests to them: the fork is then off the request's path.
    """
    children: set[int] = set()
    idle: list[Spare] = []
    reader = forkchild.LineReader(MAX_COMMAND_BYTES)
    wake = _wake_on_child_exit()
    done_read, done_write = os.pipe()  # children write their pid here once their result is written
    os.set_blocking(done_read, False)  # ... and "<pid> <report line>" while they run (a rate limit)
    done_lines = forkchild.LineReader(REPORT_LINE_BYTES)
    while True:
        wants_spares = len(idle) < spares
        timeout = SPARE_IDLE_S if wants_spares else POLL_S
        ready, _, _ = select.select([read_fd, wake, done_read], [], [], timeout)
        if wake in ready:
            os.read(wake, 4096)
        if read_fd in ready:
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            for command in filter(None, (_command(line, write_fd) for line in reader.feed(chunk))):
                if import_model_module(command["request"]):  # spares forked before do not have it
                    _drop_spares(idle)
                pid = _hand_to_spare(idle, command) or spawn(command, done_write)
                children.add(pid)
                _send(write_fd, {"id": command["id"], "pid": pid})
        if not ready and wants_spares:  # quiet: prepare the next children now
            idle.extend(Spare.fork(done_write) for _ in range(spares - len(idle)))
        _forward_done(
            done_read, write_fd, done_lines
        )  # before reaping: a child's "done" always comes before its exit
        _reap(children, write_fd, idle)
    for pid in [*children, *(spare.pid for spare in idle)]:
        _kill_group(pid)


def _command(line: bytes | forkchild.LineTooLong, write_fd: int) -> dict[str, Any] | None:
    """Return the command on `line`, or None after answering `{"error"}` (too long, not a command)."""
    try:
        if isinstance(line, forkchild.LineTooLong):
            raise line
        command = json.loads(line)
        if not isinstance(command, dict) or not COMMAND_KEYS.issubset(command):
            raise ValueError(f"not an object with {', '.join(sorted(COMMAND_KEYS))}")
    except (ValueError, RecursionError) as exc:  # refused; the server goes on with the next command
        _send(write_fd, {"error": f"command refused (one JSON object a line, as ForkClient sends): {exc}"})
        return None
    return command


@dataclass
class Spare:
    """A child forked ahead of time, waiting for its one request on a pipe."""

    pid: int
    commands: int  # the server's end of that pipe

    @classmethod
    def fork(cls, done_fd: int) -> Spare:
        """Fork a spare child; it exits when the server closes the pipe unused or goes away."""
        read_end, write_end = os.pipe()

        def child() -> int:
            os.close(write_end)
            # the client's pipes must see EOF when the server goes, not when spares do
            forkchild.detach_stdio()
            command = forkchild.await_command(read_end, POLL_S)
            if command is None:
                return 0
            return forkchild.run_child(command, done_fd)

        pid = forkchild.fork_child(child)
        os.close(read_end)
        return cls(pid, write_end)

    def hand(self, command: dict[str, Any]) -> bool:
        """Give the spare its request; return False when it is gone."""
        data = (json.dumps(command) + "\n").encode()
        try:
            while data:
                data = data[os.write(self.commands, data) :]
        except OSError:  # it died unused (the reaper will see it)
            return False
        finally:
            os.close(self.commands)
        return True


def import_model_module(request: str | bytes) -> bool:
    """Import the module of the request's model class here, once, so every child forked later has it.

    A model SDK is large (`import anthropic` takes over a second): imported here, the first attempt on a
    model pays it and the rest inherit it. Returns whether a module was imported now; a spec that does
    not resolve is left for the child to report.
    """
    try:
        spec = WorkRequest.model_validate_json(request).model_spec
    except ValueError:  # the child reports a bad request
        return False
    return import_once(module_of(spec))


def import_once(module_name: str | None) -> bool:
    """Import `module_name` unless it is imported already; return whether it was imported now."""
    if not module_name or module_name in sys.modules:
        return False
    try:
        importlib.import_module(module_name)
    except Exception:  # the attempt that needs it reports the error
        return False
    return True


def _drop_spares(idle: list[Spare]) -> None:
    for spare in idle:
        os.close(spare.commands)  # it reads EOF and exits; the reaper collects it
    idle.clear()


def _hand_to_spare(idle: list[Spare], command: dict[str, Any]) -> int | None:
    while idle:
        spare = idle.pop()
        if spare.hand(command):
            return spare.pid
    return None


def spawn(command: dict[str, Any], done_fd: int | None = None) -> int:
    """Fork a child that runs one work request; return its pid (the child never returns).

    With `done_fd`, the child writes its pid there as soon as its result file is written: the executor
    can take the result without waiting for the exit of a large process (a few ms of teardown).
    """
    return forkchild.fork_child(lambda: forkchild.run_child(command, done_fd))


def _wake_on_child_exit() -> int:
    """Return a file descriptor that becomes readable whenever a child exits."""
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    return read_end


def _forward_done(done_read: int, write_fd: int, lines: forkchild.LineReader) -> None:
    try:
        data = os.read(done_read, 65536)
    except BlockingIOError:
        return
    for line in lines.feed(data):
        if isinstance(line, forkchild.LineTooLong):
            continue
        pid, _, report = line.decode("utf-8", "replace").partition(" ")
        if not pid.isdigit():
            continue
        message: dict[str, Any] = {"pid": int(pid), "report": report} if report else {"pid": int(pid)}
        _send(write_fd, message if report else {**message, "done": True})


def exited_children() -> Iterator[tuple[int, int]]:
    """Reap every child that has exited (without waiting); yield its pid and exit code."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, os.waitstatus_to_exitcode(status)


def _reap(children: set[int], write_fd: int, idle: list[Spare]) -> None:
    for pid, code in exited_children():
        for spare in [spare for spare in idle if spare.pid == pid]:  # died unused: nobody waits for it
            idle.remove(spare)
            os.close(spare.commands)
        if pid in children:
            children.discard(pid)
            _send(write_fd, {"pid": pid, "exit": code})


def _send(fd: int, message: dict[str, Any]) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle
    preload()
    serve(spares=int(sys.argv[1]) if len(sys.argv) > 1 else 0)

"""The executor's side of the fork server (fork/server.py): start attempts, see them end."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent_runner.core.errors import ExecutorError

START_TIMEOUT_S = 60.0
# A command line to the fork server: a task (at most MAX_TASK_JSON_BYTES, 1 MiB, as JSON) inside the
# request JSON, escaped once more here (3x at worst), and the config and keys (kilobytes). No source bundle
# travels to a local server (its workers read the repo from disk): 32 MiB is 10x what a task can fill.
# The server refuses longer lines (forkchild.LineReader).
MAX_COMMAND_BYTES = 32 << 20
MAX_ANSWER_BYTES = 1 << 16  # the server's answers are an id, a pid and a code, or a short error
log = logging.getLogger(__name__)


class ForkClient:
    """One fork server process; thread-safe `start` and `wait`."""

    def __init__(self, *, env: dict[str, str], cwd: Path | None, spares: int = 0) -> None:
        argv = [sys.executable, "-m", "agent_runner.executors.fork.server", str(spares)]
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=cwd, start_new_session=True
            )
        except OSError as exc:
            raise ExecutorError(f"cannot start the fork server: {exc}") from exc
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pids: dict[str, int] = {}
        self._exits: dict[int, int] = {}
        self._done: set[int] = set()  # children that wrote their result and are exiting
        self._n_sent = 0
        self._listeners: dict[int, Callable[[str], None]] = {}  # pid -> who takes its report lines
        self.is_alive = True
        threading.Thread(target=self._read, daemon=True, name="forkserver-reader").start()

    def start(self, command: dict[str, Any]) -> int:
        """Send one attempt to the server and return the pid of its child."""
        with self._lock:
            self._n_sent += 1
            command_id = command["id"] = f"{command['id']}:{self._n_sent}"
            self._write(command)
            if not self._changed.wait_for(
                lambda: command_id in self._pids or not self.is_alive, START_TIMEOUT_S
            ):
                raise ExecutorError("the fork server did not start the worker in time")
            if command_id not in self._pids:
                raise ExecutorError("the fork server died")
            return self._pids.pop(command_id)

    def wait(self, pid: int, *, on_report: Callable[[str], None] | None = None) -> int:
        """Block until child `pid` has written its result (0) or exited (its code; negative: a signal).

        Meanwhile each report line the child sends (a rate limit its model hit) goes to `on_report`.
        """
        with self._lock:
            if on_report is not None:
                self._listeners[pid] = on_report
            try:
                self._changed.wait_for(lambda: pid in self._exits or not self.is_alive)
            finally:
                self._listeners.pop(pid, None)
            if pid not in self._exits:
                raise ExecutorError("the fork server died while the worker ran")
            return self._exits.pop(pid)

    def _write(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        line = (json.dumps(command) + "\n").encode()
        if len(line) > MAX_COMMAND_BYTES:
            raise ExecutorError(
                f"the attempt's command is over {MAX_COMMAND_BYTES} bytes; the fork server refuses it"
            )
        try:
            self.proc.stdin.write(line)
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            self.is_alive = False
            raise ExecutorError("the fork server is gone") from exc

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while (line := self.proc.stdout.readline(MAX_ANSWER_BYTES)).endswith(b"\n"):
            message = json.loads(line)
            if "pid" not in message:  # a command it refused: this client sends none, so say so
                log.warning("the fork server says: %s", message.get("error", message))
                continue
            if "report" in message:
                self._pass_report(message["pid"], str(message["report"]))
                continue
            with self._lock:
                self._take(message)
                self._changed.notify_all()
        with self._lock:  # its end, or a line over the limit: a server that says that is of no use
            self.is_alive = False
            self._changed.notify_all()

    def _pass_report(self, pid: int, line: str) -> None:
        with self._lock:
            listener = self._listeners.get(pid)
        if listener is not None:
            listener(line)  # outside the lock: the listener takes its own

    def _take(self, message: dict[str, Any]) -> None:
        pid: int = message["pid"]
        if "id" in message:
            self._pids[message["id"]] = pid
        elif message.get("done"):
            self._done.add(pid)
            self._exits[pid] = 0  # its result is written; what is left is its exit
        elif pid in self._done:
            self._done.discard(pid)  # exited after "done", which the waiter already took
        else:
            self._exits[pid] = message["exit"]

    def close(self) -> None:
        """Close the server's input: it kills its children and exits."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

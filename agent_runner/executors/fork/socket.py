"""The fork server of an SSH machine: a warm agent-runner process on a unix socket that forks each attempt.

An attempt's short ssh command runs the tiny client (fork/gate.py), which connects and sends
one JSON header line (cwd, environment, workdir, inline_bundle) with its stdin, stdout and stderr attached
(SCM_RIGHTS). The server forks a child in its own session that runs exactly what
`run-agents exec - --inline-bundle` runs, on those descriptors, and answers `{"pid"}` at once and
`{"exit"}` when the child ends (`{"error"}` instead of a pid for a bad header, or one over MAX_HEADER
bytes). A client that goes away takes its child's process group with it (as the plain worker dies with
its shell). With no child and no client for `idle_s`, the server removes its socket and exits; the next
client starts a new one.

    python -m agent_runner.executors.fork.socket SOCKET_PATH [--idle SECONDS]
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_runner.executors.fork.child import LineReader, LineTooLong, fork_child, read_request, serve_child
from agent_runner.executors.fork.server import (
    POLL_S,
    _kill_group,
    _wake_on_child_exit,
    exited_children,
    import_once,
    preload,
)

# The header is cwd, workdir, flags and the ssh session's environment: kilobytes (Linux caps arguments and
# environment together at a quarter of the stack limit, 2 MiB by default). 1 MiB is generous.
MAX_HEADER = 1 << 20
HEADER_KEYS = frozenset({"cwd", "env", "workdir"})


@dataclass
class _Client:
    conn: socket.socket
    reader: LineReader = field(default_factory=lambda: LineReader(MAX_HEADER))
    fds: tuple[int, ...] = ()
    pid: int = 0


class SocketForkServer:
    """Accepts clients on `listener`, forks one child per client, reports pids and exit codes."""

    def __init__(self, listener: socket.socket, *, idle_s: float) -> None:
        self.listener = listener
        self.idle_s = idle_s
        self.selector = selectors.DefaultSelector()
        self.clients: dict[int, _Client] = {}  # by connection fd
        self.children: dict[int, _Client] = {}  # by child pid
        self.wake = _wake_on_child_exit()
        self.selector.register(listener, selectors.EVENT_READ, self._accept)
        self.selector.register(self.wake, selectors.EVENT_READ, self._reap)

    def serve(self) -> None:
        """Serve until idle for `idle_s`."""
        idle_since = time.monotonic()
        while True:
            for key, _ in self.selector.select(POLL_S):
                key.data(key.fileobj)
            self._reap(None)
            if self.clients or self.children:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= self.idle_s:
                return

    def _accept(self, listener: Any) -> None:
        conn, _ = self.listener.accept()
        self.clients[conn.fileno()] = _Client(conn)
        self.selector.register(conn, selectors.EVENT_READ, self._receive)

    def _receive(self, conn: Any) -> None:
        client = self.clients[conn.fileno()]
        try:
            data, fds, _, _ = socket.recv_fds(conn, 65536, 8)
        except OSError:
            data, fds = b"", []
        client.fds += tuple(fds)
        if not data:  # the client is gone: so goes its worker
            self._drop(client)
            return
        if client.pid:
            return  # nothing more is expected from a client once its worker runs
        lines = client.reader.feed(data)
        if lines:
            self._fork(client, lines[0])

    def _fork(self, client: _Client, line: bytes | LineTooLong) -> None:
        try:
            header = _header(line)
            if len(client.fds) != 3:
                raise ValueError(f"expected 3 file descriptors, got {len(client.fds)}")
            import_once(header.get("model_module"))  # once here, not in every attempt (an SDK: ~1 s)
            pid = spawn(header, client.fds)
        except (ValueError, OSError, RecursionError) as exc:  # the client runs the plain worker instead
            _send(client.conn, {"error": f"cannot start the worker: {exc}"})
            self._drop(client)
            return
        client.pid = pid
        self._close_fds(client)
        self.children[client.pid] = client
        _send(client.conn, {"pid": client.pid})

    def _reap(self, _: Any) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self.wake, 4096)
        for pid, code in exited_children():
            client = self.children.pop(pid, None)
            if client is not None:
                _send(client.conn, {"exit": code})
                client.pid = 0
                self._drop(client)

    def _drop(self, client: _Client) -> None:
        """Forget a client: kill its worker if that still runs, close its connection."""
        if client.pid:
            _kill_group(client.pid)
        self._close_fds(client)
        if self.clients.pop(client.conn.fileno(), None) is not None:
            self.selector.unregister(client.conn)
            client.conn.close()

    @staticmethod
    def _close_fds(client: _Client) -> None:
        for fd in client.fds:
            os.close(fd)  # the server must not hold the ssh channel open, or the attempt never ends
        client.fds = ()


def _header(line: bytes | LineTooLong) -> dict[str, Any]:
    """Return the header on `line`; raise ValueError when it is too long or not a header."""
    if isinstance(line, LineTooLong):
        raise line
    header = json.loads(line)
    if not isinstance(header, dict) or not HEADER_KEYS.issubset(header):
        raise ValueError(f"the header is not a JSON object with {', '.join(sorted(HEADER_KEYS))}")
    return header


def spawn(header: dict[str, Any], fds: tuple[int, ...]) -> int:
    """Fork a child that runs one attempt on `fds` as its stdio; return its pid (the child never returns)."""

    def child() -> int:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        # Other clients' descriptors (their ssh channels) must not stay open for this child's life.
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        sys.stdin = os.fdopen(0, "r", closefd=False)
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        os.chdir(header["cwd"])
        os.environ.clear()
        os.environ.update(header["env"])
        return run_child(header)

    return fork_child(child)


def run_child(header: dict[str, Any]) -> int:
    """Do what `run-agents exec - --inline-bundle --workdir W` does: request on stdin, result on stdout."""

    def emit(line: str) -> None:
        sys.stdout.write(line)
        sys.stdout.flush()

    inline = bool(header.get("inline_bundle"))
    return serve_child(lambda: read_request(sys.stdin.buffer), Path(header["workdir"]), inline, emit)


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    try:
        conn.sendall((json.dumps(message) + "\n").encode())
    except OSError:
        return  # a client that is gone learns nothing; its worker is killed when its EOF is read


def listen(path: str) -> socket.socket:
    """Bind the socket at `path` (replacing a dead server's leftover) and listen."""
    Path(path).unlink(missing_ok=True)  # the starter holds the lock: no live server owns this path
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)  # connecting means running a worker as this user: the owner only
    listener.listen(64)
    return listener


def main(argv: list[str]) -> None:
    """Preload, listen, print `ready` for the starter, serve until idle, then remove the socket."""
    path = argv[0]
    idle_s = float(argv[argv.index("--idle") + 1]) if "--idle" in argv else 600.0
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    preload()
    listener = listen(path)
    inode = os.stat(path).st_ino
    print("ready", flush=True)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)  # the starter has its answer; it must not wait for our stdout to close
    os.close(null)
    try:
        SocketForkServer(listener, idle_s=idle_s).serve()
    finally:
        if _inode(path) == inode:  # a server started in our place owns the path now: leave it
            Path(path).unlink(missing_ok=True)
        listener.close()


def _inode(path: str) -> int:
    try:
        return os.stat(path).st_ino
    except OSError:
        return 0


if __name__ == "__main__":
    main(sys.argv[1:])

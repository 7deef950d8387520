"""Both fork servers refuse an over-limit line with a clear error and go on serving the next request."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from agent_runner.core.errors import ExecutorError
from agent_runner.executors.fork.client import MAX_COMMAND_BYTES, ForkClient
from agent_runner.executors.fork.socket import MAX_HEADER

BIG = 50 * 1024 * 1024


def answer(stream: IO[bytes]) -> dict[str, Any]:
    """Return the server's next JSON line (an empty dict at EOF)."""
    line = stream.readline()
    return json.loads(line) if line else {}


def command(tmp_path: Path, command_id: str) -> dict[str, Any]:
    """A fork server command whose request is not valid: the child starts, fails and exits 1."""
    log, result = str(tmp_path / f"{command_id}.log"), str(tmp_path / f"{command_id}.json")
    return {"id": command_id, "request": "{}", "workdir": str(tmp_path), "log": log, "result": result}


@pytest.fixture
def local_server() -> Iterator[subprocess.Popen[bytes]]:
    """The local fork server (agent_runner.executors.fork.server) on pipes."""
    argv = [sys.executable, "-m", "agent_runner.executors.fork.server", "0"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def test_local_server_refuses_an_over_limit_line_and_serves_the_next(
    tmp_path: Path, local_server: subprocess.Popen[bytes]
) -> None:
    """An over-limit line and a non-JSON line each get an error; the next command still gets its child."""
    assert local_server.stdin is not None and local_server.stdout is not None
    lines = [b"x" * (MAX_COMMAND_BYTES + 1), b"not json", json.dumps(command(tmp_path, "c1")).encode()]
    data = b"\n".join(lines) + b"\n"
    writer = threading.Thread(target=_write, args=(local_server.stdin, data))
    writer.start()
    too_long, not_json, started = (answer(local_server.stdout) for _ in range(3))
    writer.join()
    assert f"over {MAX_COMMAND_BYTES} bytes" in too_long["error"] and "JSON" in not_json["error"]
    assert started["id"] == "c1" and answer(local_server.stdout) == {"pid": started["pid"], "exit": 1}


def _write(stream: IO[bytes], data: bytes) -> None:
    stream.write(data)
    stream.flush()


def test_fork_client_refuses_an_over_limit_command(tmp_path: Path) -> None:
    """The executor's client says the command is too large instead of sending it."""
    client = ForkClient(env=dict(os.environ), cwd=None)
    try:
        big = {**command(tmp_path, "big"), "request": "x" * MAX_COMMAND_BYTES}
        with pytest.raises(ExecutorError, match=f"over {MAX_COMMAND_BYTES} bytes"):
            client.start(big)
        assert client.is_alive
    finally:
        client.close()


@pytest.fixture
def socket_server(tmp_path: Path) -> Iterator[str]:
    """A machine's fork server (executors.fork.socket) on a unix socket; yields the socket path."""
    path = str(tmp_path / "s.sock")
    argv = [sys.executable, "-m", "agent_runner.executors.fork.socket", path, "--idle", "600"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    yield path
    proc.kill()
    proc.wait()


def test_socket_server_stops_reading_an_over_limit_header(tmp_path: Path, socket_server: str) -> None:
    """A 50 MB header without a newline is refused near the limit, unread beyond; the next client is fine."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(socket_server)
    n_sent = 0

    def flood() -> None:
        nonlocal n_sent
        try:
            while n_sent < BIG:
                n_sent += conn.send(b"x" * 65536)
        except OSError:  # the server closed the connection
            return

    sender = threading.Thread(target=flood)
    sender.start()
    with conn.makefile("rb") as reader:
        refused = answer(reader)
    sender.join()
    conn.close()
    assert f"over {MAX_HEADER} bytes" in refused.get("error", "") and n_sent < 8 * MAX_HEADER
    assert _serve_one(tmp_path, socket_server) == 1  # the child starts, reads a bad request, exits 1


def _serve_one(tmp_path: Path, path: str) -> int:
    """Hand a valid header and stdio to the server; return the child's exit code."""
    header = {"cwd": str(tmp_path), "env": {}, "workdir": str(tmp_path), "inline_bundle": True}
    stdin_read, stdin_write = os.pipe()
    os.close(stdin_write)  # an empty request
    with open(tmp_path / "child.err", "wb") as err, socket.socket(socket.AF_UNIX) as conn:
        conn.connect(path)
        fds = [stdin_read, err.fileno(), err.fileno()]
        socket.send_fds(conn, [(json.dumps(header) + "\n").encode()], fds)
        os.close(stdin_read)
        with conn.makefile("rb") as reader:
            assert "pid" in answer(reader)
            return int(answer(reader)["exit"])

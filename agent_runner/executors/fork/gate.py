"""The short command an SSH attempt runs on its machine: hand this process's stdio to the fork server.

Run once per attempt by the remote shell, so it imports only the standard library (a few milliseconds,
where `run-agents exec` costs about half a second of CPU). It connects to the fork server of this
interpreter and agent-runner version (fork/socket.py), starting it under a lock when there is
none, sends its stdin, stdout and stderr over the unix socket (SCM_RIGHTS), appends the worker's pid to the
attempt's pidfile and exits with the worker's exit code. When no server can be had it says so on stderr
and runs the plain command after `--` instead (`run-agents exec - ...`), which still finds stdin unread.

    python -m agent_runner.executors.fork.gate --pidfile P --workdir W [--inline-bundle] [--idle S] \
        [--model-module M] -- COMMAND...
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import select
import socket
import sys
from typing import Any, BinaryIO

FOLDER = "forkserver"  # under the current directory (the machine's workdir): socket paths stay short
FALLBACK_MARK = "agent-runner: fork server unavailable"
START_TIMEOUT_S = 60.0
MAX_LINE = 1 << 16  # the server's lines: "ready", then {"pid"} or {"error"}, then {"exit"}: short
Attempt = tuple[socket.socket, BinaryIO, int]  # the connection, its reader, the worker's pid


class Unavailable(Exception):
    """No fork server could take the attempt; stdin is still unread."""


def server_name() -> str:
    """Return the socket path of the server for this interpreter and this installed agent-runner."""
    mtime = os.stat(__file__).st_mtime_ns  # a reinstall of the same version is new code too
    key = f"{sys.executable}\0{installed_version()}\0{mtime}".encode()
    return f"{FOLDER}/{hashlib.sha256(key).hexdigest()[:16]}.sock"


def installed_version() -> str:
    """Return agent-runner's version from its dist-info folder name (importlib.metadata costs ~40 ms)."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith("agent_runner-") and name.endswith(".dist-info"):
                return name.removeprefix("agent_runner-").removesuffix(".dist-info")
    return "unknown"


def connect(name: str, *, idle_s: float) -> socket.socket:
    """Return a connection to the server at `name`, starting the server first when none answers."""
    try:
        return _connect(name)
    except OSError:
        pass
    os.makedirs(FOLDER, mode=0o700, exist_ok=True)  # whoever can connect can run workers as this user
    with open(name.removesuffix(".sock") + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one starter; the others find its server when they get the lock
        try:
            return _connect(name)
        except OSError:
            _start(name, idle_s=idle_s)
        try:
            return _connect(name)
        except OSError as exc:
            raise Unavailable(f"cannot connect to the new server: {exc}") from exc


def _connect(name: str) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(name)
    except OSError:
        conn.close()
        raise
    return conn


def _start(name: str, *, idle_s: float) -> None:
    """Start the server in its own session and wait for its ready line; raise Unavailable on failure."""
    import subprocess  # ~2.8 ms of each attempt's start: only the attempt that starts the server needs it

    argv = [sys.executable, "-m", "agent_runner.executors.fork.socket", name, "--idle", str(idle_s)]
    with open(name.removesuffix(".sock") + ".log", "ab") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, start_new_session=True
        )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT_S)
    line = proc.stdout.readline(MAX_LINE).decode(errors="replace").strip() if ready else ""
    proc.stdout.close()
    if line != "ready":
        proc.kill()
        raise Unavailable(f"the server did not start (see {os.path.abspath(name)[:-5]}.log): {line!r}")


def hand_over(conn: socket.socket, reader: BinaryIO, header: dict[str, object]) -> int:
    """Send the header and fds 0-2; return the worker's pid (raise Unavailable if none was started)."""
    data = (json.dumps(header) + "\n").encode()
    try:
        socket.send_fds(conn, [data], [0, 1, 2])
        line = _read_line(reader)
    except (OSError, ValueError) as exc:
        raise Unavailable(f"the server dropped the attempt: {exc}") from exc
    if "pid" not in line:
        raise Unavailable(f"the server did not start the worker: {line.get('error', line)}")
    return int(line["pid"])


def wait_exit(reader: BinaryIO) -> int:
    """Return the worker's exit code as a shell would (128 + signal when killed)."""
    try:
        code = int(_read_line(reader)["exit"])
    except (OSError, ValueError, KeyError) as exc:
        print(f"agent-runner: lost the fork server while the worker ran: {exc}", file=sys.stderr)
        return 1
    return 128 - code if code < 0 else code


def _read_line(reader: BinaryIO) -> dict[str, Any]:
    line = reader.readline(MAX_LINE)
    if len(line) == MAX_LINE and not line.endswith(b"\n"):
        raise ValueError(f"the server sent a line over {MAX_LINE} bytes")
    if not line.endswith(b"\n"):
        raise ConnectionResetError("the server closed the connection")
    return json.loads(line)  # type: ignore[no-any-return]


def start_attempt(args: dict[str, str]) -> Attempt:
    """Hand the attempt to a server (starting one once more if it closes on us); return it and the pid."""
    header = {
        "cwd": os.getcwd(), "env": dict(os.environ), "workdir": args["--workdir"],
        "inline_bundle": "--inline-bundle" in args, "model_module": args.get("--model-module"),
    }  # fmt: skip
    idle_s = float(args.get("--idle", "600"))
    name = server_name()
    try:
        return _start_once(name, header, idle_s=idle_s)
    except Unavailable:  # a server that has just gone idle closes on us: the next try starts another
        return _start_once(name, header, idle_s=idle_s)


def _start_once(
    name: str, header: dict[str, object], *, idle_s: float
) -> tuple[socket.socket, BinaryIO, int]:
    conn = connect(name, idle_s=idle_s)
    reader = conn.makefile("rb")
    try:
        return conn, reader, hand_over(conn, reader, header)
    except Unavailable:
        reader.close()
        conn.close()
        raise


def run(args: dict[str, str], fallback: list[str]) -> int:
    """Run one attempt through the server, or `fallback` in this process when there is none."""
    try:
        conn, reader, pid = start_attempt(args)
    except Exception as exc:
        print(f"{FALLBACK_MARK} ({type(exc).__name__}: {exc}); running `{' '.join(fallback)}`",
              file=sys.stderr, flush=True)  # fmt: skip
        os.execvp(fallback[0], fallback)
    with conn, reader:
        try:
            with open(args["--pidfile"], "a") as pidfile:
                pidfile.write(f"{pid}\n")
        except OSError as exc:  # the worker runs already: report, but do not run it twice
            print(f"agent-runner: cannot record the worker's pid: {exc}", file=sys.stderr)
        return wait_exit(reader)


def parse(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """Split `--flag value` options from the fallback command after `--`."""
    cut = argv.index("--")
    options, fallback = argv[:cut], argv[cut + 1 :]
    args: dict[str, str] = {}
    while options:
        flag = options.pop(0)
        args[flag] = "" if flag == "--inline-bundle" else options.pop(0)
    return args, fallback


if __name__ == "__main__":
    sys.exit(run(*parse(sys.argv[1:])))

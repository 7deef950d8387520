"""The machine-side fork server (forksocket) and its tiny client (forkgate), as an SSH attempt runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest
from fleet_helpers import git

from agent_runner.core.result import TaskResult, WorkRequest
from agent_runner.core.task import Task
from agent_runner.executors.fork.gate import FALLBACK_MARK, installed_version, server_name
from agent_runner.testing.scripts import bash_turn, finish_turn, write_script


@dataclass
class Machine:
    """A workdir as an SSH attempt's shell sees it, and a repo its requests fetch."""

    work: Path
    remote: Path
    scripts: Path

    def request(self, task_id: str, *, delay_s: float = 0.0) -> bytes:
        """Return a WorkRequest JSON whose scripted agent writes a file (after `delay_s`) and finishes."""
        turns = [bash_turn(f"echo {task_id} > {task_id}.txt", delay_s=delay_s), finish_turn()]
        task = Task(id=task_id, kind="change", model=write_script(self.scripts, task_id, turns))
        config = {"sandbox": "none", "test": "true"}
        return WorkRequest(task=task, repo=str(self.remote), config=config).model_dump_json().encode()

    def gate(self, task_id: str, *, idle_s: float = 30, fallback: tuple[str, ...] = ("false",)) -> list[str]:
        """Return the argv of the fork client for one attempt."""
        pidfile = str(self.work / f"{task_id}.pid")
        options = [
            "--pidfile",
            pidfile,
            "--workdir",
            str(self.work),
            "--inline-bundle",
            "--idle",
            str(idle_s),
        ]
        return [sys.executable, "-m", "agent_runner.executors.fork.gate", *options, "--", *fallback]

    def servers(self) -> list[int]:
        """Return the pids of fork servers serving this workdir (not their forked workers or helpers)."""
        found = []
        for pid in _forksocket_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            ppid, session = int(fields[1]), int(fields[3])
            if cwd == str(self.work) and session == pid and ppid not in _forksocket_pids():
                found.append(pid)
        return found


def _forksocket_pids() -> set[int]:
    pids = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"agent_runner.executors.fork.socket" in cmdline.read_bytes():
                pids.add(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    """A workdir and a bare repo with one commit."""
    remote, seed = tmp_path / "remote.git", tmp_path / "seed"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    seed.mkdir()
    (seed / "README.md").write_text("seed\n")
    git(seed, "init", "-q", "-b", "main")
    git(seed, "add", "-A")
    git(seed, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    git(seed, "push", "-q", str(remote), "main")
    work = tmp_path / "work"
    work.mkdir()
    found = Machine(work, remote, tmp_path / "scripts")
    yield found
    for pid in found.servers():
        os.kill(pid, signal.SIGKILL)


def wait_for(predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    """Poll `predicate` until it is true or fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def run_gate(
    machine: Machine, argv: list[str], data: bytes, **env: str
) -> subprocess.CompletedProcess[bytes]:
    """Run the fork client in the workdir with `data` on stdin."""
    environ = {**os.environ, **env}
    return subprocess.run(argv, input=data, capture_output=True, cwd=machine.work, env=environ, timeout=60)


def test_attempt_runs_forked_with_the_clients_stdio_env_and_pidfile(machine: Machine, tmp_path: Path) -> None:
    """The result comes back on the client's stdout; the worker saw its env; its group is in the pidfile."""
    home = tmp_path / "client-home"
    done = run_gate(machine, machine.gate("a1"), machine.request("a1"), AGENT_RUNNER_HOME=str(home))
    assert done.returncode == 0, done.stderr
    result = TaskResult.model_validate_json(done.stdout.decode().strip().splitlines()[-1])
    assert (result.task_id, result.outcome) == ("a1", "accepted") and result.bundle_b64
    assert list((home / "repos").glob("*.git"))  # the worker used the client's AGENT_RUNNER_HOME
    (pid,) = map(int, (machine.work / "a1.pid").read_text().split())
    assert machine.servers() and pid not in machine.servers()
    again = run_gate(machine, machine.gate("a2"), machine.request("a2"))
    assert again.returncode == 0 and len(machine.servers()) == 1  # the second attempt reused the server


def test_worker_failure_exit_code_and_stderr_reach_the_client(machine: Machine) -> None:
    """A request the worker cannot read fails it with exit 1 and its traceback on the client's stderr."""
    done = run_gate(machine, machine.gate("bad"), b'{"not": "a request"}')
    assert done.returncode == 1 and b"ValidationError" in done.stderr and done.stdout == b""


def test_killed_client_takes_its_worker_with_it(machine: Machine) -> None:
    """When the attempt's shell and client are killed, the server kills the forked worker's group."""
    proc = subprocess.Popen(machine.gate("slow"), stdin=subprocess.PIPE, cwd=machine.work)
    assert proc.stdin is not None
    proc.stdin.write(machine.request("slow", delay_s=30))
    proc.stdin.close()
    pidfile = machine.work / "slow.pid"
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 30, "the worker to start")
    pid = int(pidfile.read_text())
    proc.kill()
    proc.wait()
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), 10, "the worker to be killed")


def test_idle_server_exits_and_the_next_attempt_starts_another(machine: Machine) -> None:
    """With nothing to do for `idle`, the server removes its socket and exits; a new one starts on demand."""
    assert run_gate(machine, machine.gate("i1", idle_s=0.5), machine.request("i1")).returncode == 0
    (first,) = machine.servers()
    wait_for(lambda: not machine.servers(), 10, "the idle server to exit")
    assert not list((machine.work / "forkserver").glob("*.sock"))
    assert run_gate(machine, machine.gate("i2"), machine.request("i2")).returncode == 0
    assert machine.servers() and machine.servers() != [first]


def test_dead_servers_socket_is_replaced(machine: Machine) -> None:
    """A server killed outright leaves its socket file behind; the next client starts a new server."""
    assert run_gate(machine, machine.gate("d1"), machine.request("d1")).returncode == 0
    (first,) = machine.servers()
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: not machine.servers(), 10, "the server to die")
    done = run_gate(machine, machine.gate("d2"), machine.request("d2"))
    assert done.returncode == 0 and FALLBACK_MARK.encode() not in done.stderr


def test_no_server_falls_back_to_the_plain_command_with_stdin_unread(machine: Machine) -> None:
    """When no server can start, the client says so and runs the fallback, which gets the whole request."""
    (machine.work / "forkserver").write_text("not a folder")
    fallback = ("sh", "-c", "wc -c")
    data = machine.request("f1")
    done = run_gate(machine, machine.gate("f1", fallback=fallback), data)
    assert done.returncode == 0 and int(done.stdout) == len(data)
    assert done.stderr.decode().startswith(FALLBACK_MARK) and "wc -c" in done.stderr.decode()


def test_installed_version_matches_the_package_metadata() -> None:
    """The fork client keys its server by the installed version, read without importlib.metadata."""
    assert installed_version() == version("agent-runner")


def test_interpreter_keys_the_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another interpreter (another venv, another install) never reaches this install's server."""
    mine = server_name()
    monkeypatch.setattr(sys, "executable", "/other/venv/bin/python")
    assert server_name() != mine and mine.startswith("forkserver/") and mine.endswith(".sock")

"""The local fork server: early results, spare children forked while idle, checkouts made ahead, models."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from run_helpers import Project, git

from agent_runner.config.runner import load_config
from agent_runner.coordinator.scheduler import Scheduler
from agent_runner.executors.fork import child as forkchild
from agent_runner.executors.fork.client import ForkClient
from agent_runner.executors.local import LocalExecutor
from agent_runner.queue.intake import open_queue
from agent_runner.testing.scripts import probe_model_package


class RecordingForkClient(ForkClient):
    """A fork client that keeps every message the fork server sent."""

    def __init__(self, **kwargs: Any) -> None:
        self.messages: list[dict[str, Any]] = []
        super().__init__(**kwargs)

    def _take(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        super()._take(message)


def _children(pid: int) -> set[int]:
    """Return the server's forked children that stay (not the git it runs while it starts up).

    A vforked `git` shows the server's command line until it execs, so a child counts only when it is
    still there, with that command line, 0.1 s later.
    """

    def forked() -> set[int]:
        path = Path(f"/proc/{pid}/task/{pid}/children")
        found = {int(p) for p in path.read_text().split()} if path.exists() else set()
        return {child for child in found if _cmdline(child) == _cmdline(pid)}

    first = forked()
    time.sleep(0.1)
    return first & forked()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _wait_for(condition: Any, what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _start(project: Project, spares: int) -> tuple[LocalExecutor, RecordingForkClient]:
    executor = LocalExecutor(workdir=project.root / ".agent-runner", cwd=project.root, workers=spares)
    client = RecordingForkClient(env=dict(os.environ), cwd=project.root, spares=spares)
    executor._client = client
    return executor, client


def _run(project: Project, executor: LocalExecutor) -> list[str]:
    config = load_config(project.root, overrides={"workers": 1})
    queue = open_queue(project.root, config)
    return Scheduler(queue, executor, config=config, root=project.root).run().finished


def test_forked_worker_reports_its_result_before_it_exits(project: Project) -> None:
    """The fork server says "done" once the result is written, then the exit; the attempt lands once."""
    project.task("quick", project.edit_script("quick", "q.py", "q = 1\n"))
    config = load_config(project.root)
    executor = LocalExecutor(workdir=project.root / ".agent-runner", cwd=project.root)
    client = executor._client = RecordingForkClient(env=dict(os.environ), cwd=project.root)
    summary = Scheduler(open_queue(project.root, config), executor, config=config, root=project.root).run()
    deadline = time.monotonic() + 10
    while not any("exit" in m for m in client.messages) and time.monotonic() < deadline:
        time.sleep(0.01)
    executor.close()
    assert summary.finished == ["quick"]
    assert len({m["pid"] for m in client.messages}) == 1
    kinds = [next(k for k in ("id", "done", "exit") if k in m) for m in client.messages]
    assert kinds == ["id", "done", "exit"]
    assert client._exits == {} and client._done == set()  # the late exit is not left for a reused pid


def test_fork_client_takes_done_then_ignores_that_exit() -> None:
    """After "done" a waiter gets 0; the exit that follows is dropped, so a reused pid waits for its own."""
    client = ForkClient.__new__(ForkClient)
    client._exits, client._done, client._pids = {}, set(), {}
    client._take({"pid": 7, "done": True})
    assert client._exits.pop(7) == 0
    client._take({"pid": 7, "exit": 0})
    assert 7 not in client._exits  # pid 7 may now belong to a new child
    client._take({"pid": 7, "exit": -9})
    assert client._exits == {7: -9}


def test_an_idle_server_forks_a_spare_and_hands_it_the_next_request(project: Project) -> None:
    """The spare exists before the request; the request runs in it; closing the server ends every child."""
    executor, client = _start(project, spares=1)
    server = client.proc.pid
    project.task("zero", project.edit_script("zero", "zero.py", "x = 0\n"))
    assert _run(project, executor) == ["zero"]  # the server imports the scripted model for it
    _wait_for(lambda: any("exit" in m for m in client.messages), "the first child's exit")
    (spare,) = _wait_for(lambda: _children(server), "the spare child")
    n_before = len(client.messages)
    project.task("one", project.edit_script("one", "one.py", "x = 1\n"))
    assert _run(project, executor) == ["one"]
    started = client.messages[n_before]
    assert started == {"id": started["id"], "pid": spare}
    successor = _wait_for(lambda: _children(server) - {spare}, "a new spare")
    executor.close()
    _wait_for(lambda: not any(_is_running(pid) for pid in successor | {spare}), "the children to end")


def test_a_spare_that_dies_unused_is_replaced_and_never_reported(project: Project) -> None:
    """A killed spare is reaped quietly (no exit reaches the client) and the next request still runs."""
    executor, client = _start(project, spares=1)
    server = client.proc.pid
    (spare,) = _wait_for(lambda: _children(server), "the spare child")
    os.kill(spare, signal.SIGKILL)
    _wait_for(lambda: _children(server) - {spare}, "a replacement spare")
    project.task("two", project.edit_script("two", "two.py", "y = 2\n"))
    try:
        assert _run(project, executor) == ["two"]
        assert spare not in {m["pid"] for m in client.messages}
    finally:
        executor.close()


def test_each_attempt_makes_the_next_ones_checkout_ahead(project: Project) -> None:
    """An attempt makes the next one's checkout after its result; the next attempt starts in it and lands."""
    executor, _ = _start(project, spares=1)
    ready = project.root / ".agent-runner" / "ready"

    def made_ahead() -> list[Path]:
        runner_files = (".git", ".index", ".tmp")
        return [p for p in ready.glob("*/*") if p.is_dir() and not p.name.endswith(runner_files)]

    try:
        for name in ("a1", "a2"):  # a1 runs before any is made: it makes one for a2
            project.task(name, project.edit_script(name, f"{name}.py", f"{name} = 1\n"))
            assert _run(project, executor) == [name]
            _wait_for(made_ahead, "a checkout made ahead")  # waits on the file, not on time
    finally:
        executor.close()
    logs = {
        name: (project.root / ".agent-runner" / "runs" / name / "1" / "worker.log").read_text()
        for name in ("a1", "a2")
    }
    assert "using a checkout made ahead" in logs["a2"], logs
    for name in ("a1", "a2"):
        assert git(project.root, "show", f"agent/{name}:{name}.py") == f"{name} = 1"
    assert all(git(path, "status", "--porcelain") == "" for path in made_ahead())


def test_the_server_imports_a_models_module_once_for_every_attempt(project: Project, tmp_path: Path) -> None:
    """A model's module is imported by the fork server before forking, not by every attempt again."""
    imports = tmp_path / "imports.log"
    probe = probe_model_package(tmp_path, imports)
    for name in ("m1", "m2", "m3"):
        spec = project.edit_script(name, f"{name}.py", f"{name} = 1\n").replace("scripted:", probe, 1)
        project.task(name, spec)
    executor = LocalExecutor(workdir=project.root / ".agent-runner", cwd=project.root, workers=1)
    client = executor._client = RecordingForkClient(
        env={**os.environ, "PYTHONPATH": str(tmp_path)}, cwd=project.root, spares=1
    )
    try:
        assert sorted(_run(project, executor)) == ["m1", "m2", "m3"]
    finally:
        executor.close()
    assert imports.read_text().split() == [str(client.proc.pid)]  # once, in the server


def test_warm_makes_the_first_attempts_checkouts_while_workers_start(project: Project) -> None:
    """`warm` makes as many checkouts at the base as asked, in the background, for the first attempts."""
    executor = LocalExecutor(workdir=project.root / ".agent-runner", cwd=project.root, workers=2)
    base = git(project.root, "rev-parse", "HEAD")
    executor.warm(str(project.root), base, 3)
    ready = project.root / ".agent-runner" / "ready"

    def made() -> list[Path]:
        return [p for p in ready.glob(f"*/{base}.*") if p.is_dir() and not p.name.endswith((".tmp", ".git"))]

    assert len(_wait_for(lambda: len(made()) == 3 and made(), "three checkouts made ahead")) == 3
    assert all(git(path, "status", "--porcelain") == "" for path in made())


def test_lowering_priority_lowers_the_session_too() -> None:
    """After its result a worker yields the CPU: its own nice value and (autogroups) its session's."""
    pid = os.fork()
    if pid == 0:  # a child in its own session, as a forked worker is
        code = 1
        try:
            os.setsid()
            forkchild.lower_priority(19)
            group = Path("/proc/self/autogroup")
            is_group_low = not group.exists() or group.read_text().strip().endswith("nice 19")
            code = 0 if os.getpriority(os.PRIO_PROCESS, 0) == 19 and is_group_low else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

"""A train killed with SIGKILL in the middle goes on from its events and lands nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from train_helpers import Runner, TrainProject, git, sed_command


def _wait_for_fifo(path: Path, timeout_s: float) -> bool:
    """Open the FIFO for reading (it opens when the check script opens it to write); False on timeout."""
    opened = threading.Event()

    def reader() -> None:
        with open(path, "rb") as fh:
            opened.set()
            fh.read()

    threading.Thread(target=reader, daemon=True).start()
    return opened.wait(timeout_s)


def test_kill_9_mid_train_resumes_without_landing_twice(tmp_path: Path) -> None:
    """`land` is killed while the second result is being verified; the next `land` lands the rest once."""
    hook = tmp_path / "hook"
    project = TrainProject(tmp_path / "repo", hook=hook)
    project.shell_task("t1", sed_command('s/"start"/"begin"/', "calc.py"), priority=30)
    project.shell_task("t2", sed_command('s/"end"/"finish"/', "calc.py"), priority=20)
    project.shell_task("t4", sed_command("s/LIMIT = 10/LIMIT = 20/", "limits.py"), priority=10)
    runner = Runner(project)
    try:
        runner.run()
        os.mkfifo(hook)
        (tmp_path / "hook.arm").touch()  # the next check run of a tree with t2's change waits for the test
        argv = [sys.executable, "-m", "agent_runner.cli", "--root", str(project.root), "land"]
        proc = subprocess.Popen(argv, cwd=project.root, start_new_session=True, stdout=subprocess.DEVNULL)
        try:
            assert _wait_for_fifo(hook, 60), "the train never verified t2"
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        landed = [e["task"] for e in project.queue_events() if e["type"] == "train_landed"]
        assert landed == ["t1"]  # killed mid-train: t1 landed, t2 in its verify job
        train = runner.land()
        again = runner.land()
    finally:
        runner.executor.close()
    landed = [e["task"] for e in project.queue_events() if e["type"] == "train_landed"]
    assert landed == ["t1", "t2", "t4"]
    assert [s.task_id for s in train.landed] == ["t1", "t2", "t4"] and again.head == train.head
    log = git(project.root, "log", "--format=%s", "main..agent/integration").splitlines()
    assert len(log) == 3 and git(project.root, "rev-parse", "agent/integration") == train.head

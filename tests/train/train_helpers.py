"""Helpers for the train's tests: a real repo whose test command is a fast check script, and its tasks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from agent_runner.config.runner import RunnerConfig, load_config
from agent_runner.coordinator.scheduler import Scheduler
from agent_runner.coordinator.train import land
from agent_runner.core.train import TrainRun
from agent_runner.executors.local import LocalExecutor
from agent_runner.queue.intake import open_queue
from agent_runner.queue.store import Queue
from agent_runner.testing.scripts import ScriptedTasks, bash_turn, finish_turn

PYPROJECT = """\
[tool.agent-runner]
sandbox = "none"
test = "python run_checks.py"
lease_seconds = 30
heartbeat_seconds = 0.5
backoff_seconds = 0
workers = 2
"""
CALC = """\
def describe(x):
    parts = []
    parts.append("start")
    parts.append(str(x))
    parts.append("middle")
    parts.append("end")
    return " ".join(parts)
"""
# Runs every checks/*.py; a failing one is named. HOOK: see `hook_lines`.
RUN_CHECKS = """\
import pathlib
import runpy
import sys

sys.path.insert(0, ".")
{hook}
failed = []
for check in sorted(pathlib.Path("checks").glob("*.py")):
    try:
        runpy.run_path(str(check))
    except AssertionError as exc:
        failed.append(f"FAILED {{check}}: {{exc}}")
print("\\n".join(failed) or "all checks pass")
sys.exit(1 if failed else 0)
"""
# With <hook>.arm present, the first check run of a tree holding "finish" (t2's change) opens the FIFO
# <hook> for writing: it blocks until the test opens it, which tells the test the train is at that step.
HOOK = """\
import os
HOOK = {path!r}
armed = os.path.exists(HOOK + ".arm") and not os.path.exists(HOOK + ".fired")
if armed and "finish" in open("calc.py").read():
    open(HOOK + ".fired", "w").close()
    open(HOOK, "w").close()
"""


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` and return its output."""
    out = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def sed_command(pattern: str, file: str) -> str:
    """Return a shell command that edits `file` in place with a sed -E expression."""
    return f"sed -i -E '{pattern}' {file}"


class TrainProject(ScriptedTasks):
    """A source repo (calc.py, limits.py, checks/) with tasks whose agents are scripted shell edits."""

    def __init__(self, root: Path, hook: Path | None = None) -> None:
        self.root, self.tasks, self.scripts = root, root / "tasks", root.parent / "scripts"
        (root / "checks").mkdir(parents=True)
        self.tasks.mkdir()
        (root / "calc.py").write_text(CALC)
        (root / "limits.py").write_text("LIMIT = 10\n")
        (root / "checks" / "describe_check.py").write_text(
            'from calc import describe\n\nassert "7" in describe(7)\n'
        )
        hook_text = HOOK.format(path=str(hook)) if hook else ""
        (root / "run_checks.py").write_text(RUN_CHECKS.format(hook=hook_text))
        (root / "pyproject.toml").write_text(PYPROJECT)
        (root / ".gitignore").write_text("__pycache__/\n.agent-runner/\ntasks/queue.jsonl*\n")
        git(root, "init", "-q", "-b", "main")
        git(root, "add", "-A")
        git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")

    def shell_task(self, task_id: str, command: str, *, priority: int, **fields: Any) -> None:
        """Queue a change task whose agent runs `command`, then finishes."""
        spec = self.script(task_id, [bash_turn(command, text="edit"), finish_turn(f"{task_id} done")])
        self.task(task_id, spec, title=f"Task {task_id}", priority=priority, **fields)

    def five_tasks(self) -> None:
        """t1, t2: compatible edits of describe(); t3 conflicts with t1; t4 and t5 are red only together."""
        self.shell_task("t1", sed_command('s/"start"/"begin"/', "calc.py"), priority=50)
        self.shell_task("t2", sed_command('s/"end"/"finish"/', "calc.py"), priority=40)
        self.shell_task("t3", sed_command('s/"(start|begin)"/"first"/', "calc.py"), priority=30)
        self.shell_task("t4", sed_command("s/LIMIT = 10/LIMIT = 20/", "limits.py"), priority=20)
        # t5's check allows LIMIT below what it is now + 5: red on top of t4 only when made before it
        limit_check = (
            "n=$(sed -n 's/LIMIT = //p' limits.py); "
            'printf "from limits import LIMIT\\n\\nassert LIMIT < %s, \\"LIMIT too big\\"\\n" $((n + 5)) '
            "> checks/limit_check.py"
        )
        self.shell_task("t5", limit_check, priority=10)

    def cli(self, *args: str, timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run `run-agents --root <repo> args...` as a real subprocess."""
        argv = [sys.executable, "-m", "agent_runner.cli", "--root", str(self.root), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=self.root, **kwargs)


class Runner:
    """Runs the queue and the train of a project in this process, on one local executor."""

    def __init__(self, project: TrainProject) -> None:
        self.root = project.root
        self.config: RunnerConfig = load_config(self.root)
        self.queue: Queue = open_queue(self.root, self.config)
        state = self.config.path(self.root, "state_dir")
        self.executor = LocalExecutor(workdir=state, workers=2, cwd=self.root)

    def run(self) -> None:
        """Run the queue until nothing is runnable."""
        Scheduler(self.queue, self.executor, config=self.config, root=self.root).run()

    def land(self) -> TrainRun:
        """Run the train once and return it."""
        (train,) = land(self.queue, self.executor, config=self.config, root=self.root)
        return train

"""SSH executor: each attempt is `run-agents exec - --inline-bundle` on a fleet machine, over the system ssh.

The request (with the model keys, never the GitHub token) goes on the ssh channel's stdin; the result and
the commits come back on stdout. A machine that fails its check is left out of `slots()` with a warning
and checked again after `recheck_s`; a dropped connection is an ExecutorError (the scheduler re-queues
without spending an attempt). When a lost machine comes back, its lost attempts are killed if they still
run, and a result that arrived there late is handed to `on_late_result` (the queue's fencing rejects it).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agent_runner.config.machines import MachineConfig, MachineStatus, SshConfig, coordinator_version
from agent_runner.core.errors import ExecutorError
from agent_runner.core.protocols import Slot
from agent_runner.core.result import TaskResult, WorkRequest
from agent_runner.core.task import Task, TaskKind
from agent_runner.executors.fork.gate import FALLBACK_MARK
from agent_runner.executors.local import parse_result
from agent_runner.executors.pipe import communicate_bounded
from agent_runner.executors.source import RepoSource, forwarded_secrets
from agent_runner.executors.ssh_transport import (
    SSH_LOST,
    WORKDIR_FAILED,
    SshClient,
    attempt_script,
    check_script,
    describe_failure,
    harvest_script,
    kill_script,
    pause_script,
    stderr_tail,
    version_or_unknown,
)
from agent_runner.models import module_of
from agent_runner.models.ratelimit import ReportTap
from agent_runner.worker import deadline

if TYPE_CHECKING:
    from agent_runner.config.runner import RunnerConfig

__all__ = ["MachineConfig", "MachineStatus", "SshConfig", "SshExecutor", "coordinator_version"]
log = logging.getLogger(__name__)
CHECK_TIMEOUT_S = 30.0


@dataclass
class _Machine:
    config: MachineConfig
    client: SshClient
    status: MachineStatus
    n_busy: int = 0
    is_checking: bool = False
    lost: list[tuple[str, int]] = field(default_factory=list)


class SshExecutor:
    """Runs attempts on the machines of `[[tool.agent-runner.machines]]` over ssh."""

    def __init__(
        self,
        machines: Sequence[MachineConfig],
        *,
        ssh: SshConfig | None = None,
        forward_env: Sequence[str] = (),
        on_late_result: Callable[[TaskResult], None] | None = None,
    ) -> None:
        if not machines:
            raise ExecutorError(
                "no machines configured; add [[tool.agent-runner.machines]] to pyproject.toml"
            )
        self.settings = ssh or SshConfig()
        self.forward_env = list(forward_env)
        self.on_late_result = on_late_result or _discard_late
        self._control_dir = Path(tempfile.mkdtemp(prefix="ar-ssh-"))
        self._machines = {m.name: self._machine(m) for m in machines}
        self._running: dict[tuple[str, int], tuple[str, subprocess.Popen[bytes]]] = {}
        self._source = RepoSource()
        self._lock = threading.Lock()
        self._checked_once = False
        self.paused: dict[str, str] = {}  # machines taking no more attempts this run (a full disk), and why
        self.reports = ReportTap()  # the workers' rate-limit reports (they come with the result here)

    @classmethod
    def from_config(cls, config: RunnerConfig, *, root: Path | None = None) -> SshExecutor:
        """Build the executor from `[[tool.agent-runner.machines]]` and `[tool.agent-runner.ssh]`."""
        return cls(config.machines, ssh=config.ssh, forward_env=config.forward_env)

    def _machine(self, config: MachineConfig) -> _Machine:
        client = SshClient(config, settings=self.settings, control_dir=self._control_dir)
        return _Machine(config, client, MachineStatus(config.name, config.ssh, config.workers))

    # -- checks --------------------------------------------------------------------------------------
    def check(self, names: Sequence[str] | None = None) -> list[MachineStatus]:
        """Check machines now (in parallel) and return their status; failed ones get no slots."""
        chosen = [self._machines[n] for n in (names or self._machines)]
        with ThreadPoolExecutor(max_workers=max(1, len(chosen))) as pool:
            list(pool.map(self._check_one, chosen))
        self._checked_once = True
        return [m.status for m in chosen]

    def _check_one(self, machine: _Machine) -> None:
        status = self._probe(machine)
        status.n_busy = machine.n_busy
        if status.error:
            log.warning("machine %s is not usable: %s", status.name, status.error)
        elif status.is_version_mismatch:
            theirs, ours = status.runner_version, coordinator_version()
            log.warning("machine %s runs agent-runner %s, this one %s", status.name, theirs, ours)
        if status.is_reachable and machine.config.fork_server and not status.fork_python:
            log.warning(
                "machine %s: no fork server there (`%s` is not run-agents of a Python with "
                "agent_runner.executors.fork.gate); each attempt starts it in full (about 0.5 s more CPU)",
                status.name, machine.config.command,
            )  # fmt: skip
        was_down = not machine.status.is_reachable
        machine.status = status
        if status.is_reachable and was_down and machine.lost:
            self._harvest(machine)

    def _probe(self, machine: _Machine) -> MachineStatus:
        """Open the shared connection and run the check script; return what it found."""
        config = machine.config
        status = MachineStatus(config.name, config.ssh, config.workers, checked_at=time.time())
        status.error = machine.client.start_master() or ""
        done = None if status.error else machine.client.run(check_script(config), timeout_s=CHECK_TIMEOUT_S)
        if done is None or done.returncode != 0:
            status.error = status.error or describe_failure(done, config)
            return status
        facts = dict(line.split("=", 1) for line in done.stdout.decode().splitlines() if "=" in line)
        if facts.get("command") == "missing":
            status.error = (
                f"`{config.command}` is not found there; install agent-runner on it or set `command`"
            )
            return status
        status.is_reachable = True
        status.git_version = facts.get("git", "").removeprefix("git version ")
        status.python_version = facts.get("python", "").removeprefix("Python ")
        status.runner_version = version_or_unknown(facts.get("runner", ""))
        status.n_running_there = int(facts.get("running", "0").strip() or 0)
        status.fork_python = facts.get("py", "") if facts.get("fork") == "yes" else ""
        return status

    def _recheck_due(self) -> None:
        now = time.time()
        for machine in self._machines.values():
            due = now - machine.status.checked_at >= self.settings.recheck_s
            if not machine.status.is_reachable and due and not machine.is_checking:
                machine.is_checking = True
                threading.Thread(target=self._background_check, args=(machine,), daemon=True).start()

    def _background_check(self, machine: _Machine) -> None:
        try:
            self._check_one(machine)
        finally:
            machine.is_checking = False

    def _harvest(self, machine: _Machine) -> None:
        """Kill the lost attempts still running on a machine that came back; hand over late results."""
        lost, machine.lost = machine.lost, []
        for task_id, attempt in lost:
            done = machine.client.run(
                harvest_script(machine.config, task_id, attempt), timeout_s=CHECK_TIMEOUT_S
            )
            text = done.stdout.decode("utf-8", "replace")
            try:
                result = parse_result(text, _stub_request(task_id, attempt)) if text.strip() else None
            except ExecutorError:
                result = None
            if result is not None:
                self.on_late_result(result.model_copy(update={"machine": machine.config.name}))

    # -- the Executor protocol -------------------------------------------------------------------------
    def slots(self) -> list[Slot]:
        """Return the slots of machines that passed their last check (re-checking failed ones when due)."""
        if not self._checked_once:
            self.check()
        self._recheck_due()
        slots = []
        for machine in self._machines.values():
            if machine.status.is_reachable and machine.config.name not in self.paused:
                tags = frozenset(machine.config.tags)
                name = machine.config.name
                slots += [
                    Slot(f"{name}/{i + 1}", machine=name, tags=tags) for i in range(machine.config.workers)
                ]
        return slots

    def run(self, request: WorkRequest, slot: Slot) -> TaskResult:
        """Run one attempt on the slot's machine; raise ExecutorError when the machine or worker failed."""
        machine = self._machines.get(slot.machine)
        if machine is None:
            raise ExecutorError(f"no machine named '{slot.machine}'; known: {', '.join(self._machines)}")
        if not machine.status.is_reachable:
            raise ExecutorError(f"machine {slot.machine} is down: {machine.status.error}")
        payload = self._prepare(request, machine, slot).model_dump_json().encode()
        key = (request.task.id, request.attempt)
        machine.client.start_master()
        idle_s = self.settings.control_persist_s or 600
        script = attempt_script(
            machine.config, *key, fork_python=machine.status.fork_python, idle_s=idle_s,
            model_module=module_of(request.model_spec),
        )  # fmt: skip
        proc = machine.client.popen(script)
        with self._lock:
            self._running[key] = (machine.config.name, proc)
            machine.n_busy += 1
        try:
            stdout, stderr = communicate_bounded(
                proc, payload, timeout_s=deadline.backstop_s(request), on_line=self.reports.listener(key)
            )
        except subprocess.TimeoutExpired:  # the worker outlived its own deadline: kill it there too
            self.cancel(*key)
            minutes = deadline.request_minutes(request)
            return deadline.overdue_result(request, minutes, deadline.BACKSTOP_GRACE_S)
        finally:
            with self._lock:
                self._running.pop(key, None)
                machine.n_busy -= 1
        result = self._finish(machine, request, proc.returncode, stdout, stderr)
        if result.machine_problem:
            self.paused[machine.config.name] = result.machine_problem
        return result

    def _finish(
        self, machine: _Machine, request: WorkRequest, rc: int, stdout: bytes, stderr: bytes
    ) -> TaskResult:
        name = machine.config.name
        text = stdout.decode("utf-8", "replace")
        _note_fallback(name, stderr)
        if rc == SSH_LOST:
            try:  # the result may have arrived whole just before the connection dropped
                return parse_result(text, request).model_copy(update={"machine": name})
            except ExecutorError:
                self._lose(machine, request, stderr_tail(stderr))
        if rc == WORKDIR_FAILED:
            raise ExecutorError(f"cannot use the workdir {machine.config.workdir} on {name}")
        if rc != 0 and not text.strip():
            raise ExecutorError(f"worker on {name} exited with {rc}: {stderr_tail(stderr)}")
        return parse_result(text, request).model_copy(update={"machine": name})

    def _lose(self, machine: _Machine, request: WorkRequest, why: str) -> None:
        """Mark the machine down (its lost attempt is collected when it is back); raise ExecutorError."""
        machine.lost.append((request.task.id, request.attempt))
        machine.status.is_reachable = False
        machine.status.checked_at = time.time()
        machine.status.error = f"connection lost: {why}"
        log.warning(
            "lost machine %s running %s#%d: %s", machine.config.name, request.task.id, request.attempt, why
        )
        raise ExecutorError(f"lost the connection to machine {machine.config.name}: {why}")

    def _prepare(self, request: WorkRequest, machine: _Machine, slot: Slot) -> WorkRequest:
        """Return the request as the machine gets it: its repo source, its secrets, its slot name."""
        config = machine.config
        allowed = config.forward_env if config.forward_env is not None else self.forward_env
        update: dict[str, object] = {
            "secrets": forwarded_secrets(request.secrets, allowed),
            "worker": slot.name,
        }
        where = f"machine {config.name}"
        update.update(self._source.update(request, mode=config.source, url=config.repo_url, where=where))
        return request.model_copy(update=update)

    def pause(self, task_id: str, attempt: int, reason: str) -> None:
        """Ask an attempt to stop before its next model call: its pause file, written on its machine."""
        with self._lock:
            entry = self._running.get((task_id, attempt))
        machine = self._machines[entry[0]] if entry is not None else None
        if machine is not None and machine.status.is_reachable:
            script = pause_script(machine.config, task_id, attempt, reason)
            machine.client.run(script, timeout_s=CHECK_TIMEOUT_S)

    def cancel(self, task_id: str, attempt: int) -> None:
        """Kill the attempt's process group on its machine, then the local ssh client."""
        with self._lock:
            entry = self._running.get((task_id, attempt))
        if entry is None:
            return
        name, proc = entry
        machine = self._machines[name]
        if (
            machine.status.is_reachable
        ):  # a machine that is down gets its lost attempts killed when it is back
            machine.client.run(kill_script(machine.config, task_id, attempt), timeout_s=CHECK_TIMEOUT_S)
        else:
            machine.lost.append((task_id, attempt))
        proc.kill()

    def close(self) -> None:
        """Cancel running attempts (there and here) and close the shared connections."""
        with self._lock:
            running = list(self._running)
        for task_id, attempt in running:
            self.cancel(task_id, attempt)
        for machine in self._machines.values():
            machine.client.stop_master()
        shutil.rmtree(self._control_dir, ignore_errors=True)


def _discard_late(result: TaskResult) -> None:
    log.warning(
        "discarded a late result of %s attempt %d from %s", result.task_id, result.attempt, result.machine
    )


def _note_fallback(name: str, stderr: bytes) -> None:
    """Log when the fork client there had to run the plain worker command."""
    for line in stderr.decode("utf-8", "replace").splitlines():
        if line.startswith(FALLBACK_MARK):
            log.warning("machine %s: %s", name, line.removeprefix("agent-runner: "))


def _stub_request(task_id: str, attempt: int) -> WorkRequest:
    return WorkRequest(task=Task(id=task_id, kind=TaskKind.CHANGE), attempt=attempt, repo="")

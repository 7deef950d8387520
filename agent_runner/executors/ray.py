"""Ray executor: each attempt is a Ray task that runs `run-agents exec - --inline-bundle` on some node.

Ray's own retries are off (the queue decides retries): a dead worker or node is an ExecutorError and the
task is re-queued. A task pinned to a machine asks for a sliver of the custom resource of that name; as Ray
leaves a task that no live node can take pending forever, the executor keeps its own deadline and reports
such a task as unschedulable. `ray` is imported only when this executor is built.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_runner.config.machines import RayConfig
from agent_runner.core.errors import ExecutorError
from agent_runner.core.protocols import Slot
from agent_runner.core.result import TaskResult, WorkRequest
from agent_runner.executors.local import parse_result
from agent_runner.executors.pipe import communicate_bounded
from agent_runner.executors.source import RepoSource, forwarded_secrets
from agent_runner.models.ratelimit import ReportTap
from agent_runner.repo.layout import AttemptPaths
from agent_runner.worker.pause import request_pause

if TYPE_CHECKING:
    from agent_runner.config.runner import RunnerConfig

MAX_REPORTS = 1000  # report lines read from a worker's output
INSTALL_HINT = "the Ray executor needs Ray: pip install 'agent-runner[ray]'"
PIN_AMOUNT = 0.001  # a sliver of the machine's custom resource: pins without limiting how many run there
POLL_S = 0.5
PAUSE_POLL_S = 1.0  # how often a Ray task asks the pause board whether its attempt is to pause


class PauseBoard:
    """A Ray actor: the attempts the coordinator asked to pause, and why (the Ray tasks ask it)."""

    def __init__(self) -> None:
        self.asked: dict[tuple[str, int], str] = {}

    def ask(self, task_id: str, attempt: int, reason: str) -> None:
        self.asked[(task_id, attempt)] = reason

    def reason(self, task_id: str, attempt: int) -> str | None:
        return self.asked.get((task_id, attempt))


def import_ray() -> Any:
    """Return the ray module, or raise ExecutorError naming the extra to install."""
    try:
        import ray  # ~235 ms, and an optional extra: paid only when this executor is built
    except ImportError as exc:
        raise ExecutorError(INSTALL_HINT) from exc
    return ray


def _die_with_parent() -> None:
    if sys.platform == "linux":  # the worker must not outlive a killed Ray worker process
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_attempt(
    payload: bytes, workdir: str, extra_env: dict[str, str], board: Any = None, key: tuple[str, int] = ("", 0)
) -> tuple[int, bytes, bytes]:
    """Run the worker command on this node (inside a Ray task) and return its exit code, stdout, stderr;
    while it runs, a pause the `board` holds for attempt `key` becomes its pause file on this node."""
    folder = str(Path(workdir).expanduser())
    argv = [sys.executable, "-m", "agent_runner.cli", "exec", "-", "--inline-bundle", "--workdir", folder]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | extra_env
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        preexec_fn=_die_with_parent,
    )  # fmt: skip
    done = threading.Event()
    if board is not None:
        run_dir = AttemptPaths.under(Path(folder), *key).run_dir
        threading.Thread(target=_relay_pause, args=(board, key, run_dir, done), daemon=True).start()
    try:
        stdout, stderr = communicate_bounded(proc, payload, err_limit=4000)
    finally:
        done.set()
    return proc.returncode, stdout, stderr


def _relay_pause(board: Any, key: tuple[str, int], run_dir: Path, done: threading.Event) -> None:
    """Write the attempt's pause file here once the coordinator asked the board to pause it."""
    ray = import_ray()
    while not done.wait(PAUSE_POLL_S):
        try:
            reason = ray.get(board.reason.remote(*key))
        except ray.exceptions.RayError:  # the board is gone with its coordinator: nothing more to relay
            return
        if reason:
            request_pause(run_dir, reason)
            return


@dataclass(frozen=True)
class AnySlot(Slot):
    """A Ray slot: Ray places the task, so every pin is accepted here and checked by Ray."""

    def accepts(self, pin: str | None) -> bool:
        return True


class RayExecutor:
    """Runs attempts as Ray tasks on a Ray cluster (or a local Ray it starts)."""

    def __init__(self, config: RayConfig | None = None, *, forward_env: list[str] | None = None) -> None:
        self.config = config or RayConfig()
        self.forward_env = list(forward_env or [])
        self.ray = import_ray()
        self._is_owner = not self.ray.is_initialized()
        if self._is_owner:
            self.ray.init(address=self.config.address, include_dashboard=False, log_to_driver=False)
        self._remote = self.ray.remote(num_cpus=self.config.num_cpus, max_retries=0)(run_attempt)
        self._source = RepoSource()
        self._refs: dict[tuple[str, int], Any] = {}
        self._lock = threading.Lock()
        self._board: Any = None  # the PauseBoard actor, made with the first attempt
        self.reports = ReportTap()  # the workers' rate-limit reports (they come with the result here)

    @classmethod
    def from_config(cls, config: RunnerConfig, *, root: Path | None = None) -> RayExecutor:
        """Build the executor from `[tool.agent-runner.ray]`."""
        return cls(config.ray, forward_env=config.forward_env)

    def slots(self) -> list[Slot]:
        """Return `workers` slots; Ray decides the node."""
        return [AnySlot(f"ray/{i + 1}", machine="ray") for i in range(self.config.workers)]

    def has_resource(self, name: str) -> bool:
        """Return whether some live node offers the custom resource `name`."""
        return self.ray.cluster_resources().get(name, 0) > 0

    def run(self, request: WorkRequest, slot: Slot) -> TaskResult:
        """Run one attempt as a Ray task; raise ExecutorError on node loss or an unschedulable pin."""
        pin = request.task.machine
        options = {"resources": {pin: PIN_AMOUNT}} if pin else {}
        payload = self._prepare(request, slot).model_dump_json().encode()
        key = (request.task.id, request.attempt)
        remote = self._remote.options(**options)
        ref = remote.remote(payload, self.config.workdir, self.config.env, self._pause_board(), key)
        with self._lock:
            self._refs[key] = ref
        try:
            self._wait(ref, pin)
            rc, stdout, stderr = self._get(ref)
        finally:
            with self._lock:
                self._refs.pop(key, None)
        take = self.reports.listener(key)
        for line in stdout.split(b"\n", MAX_REPORTS)[:-1]:  # its rate-limit reports: here, at its end
            take(line)
        text = stdout.decode("utf-8", "replace")
        if rc != 0 and not text.strip():
            raise ExecutorError(f"worker exited with {rc} on Ray: {stderr.decode('utf-8', 'replace')[-400:]}")
        return parse_result(text, request).model_copy(update={"machine": f"ray:{slot.name}"})

    def _wait(self, ref: Any, pin: str | None) -> None:
        """Wait for the task; give up when its pin has had no live node for `unschedulable_after_s`."""
        missing_since: float | None = None
        while not self.ray.wait([ref], timeout=POLL_S)[0]:
            if pin is None or self.has_resource(pin):
                missing_since = None
                continue
            missing_since = missing_since or time.monotonic()
            if time.monotonic() - missing_since >= self.config.unschedulable_after_s:
                self.ray.cancel(ref, force=True)
                raise ExecutorError(
                    f"unschedulable: no live Ray node offers the resource '{pin}' the task is pinned to; "
                    f"start one with `ray start --resources '{{\"{pin}\": 1}}'` or remove the pin"
                )

    def _get(self, ref: Any) -> tuple[int, bytes, bytes]:
        try:
            return self.ray.get(ref)  # type: ignore[no-any-return]
        except self.ray.exceptions.TaskCancelledError as exc:
            raise ExecutorError("the attempt was cancelled") from exc
        except self.ray.exceptions.RayError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExecutorError(f"Ray lost the attempt ({type(exc).__name__}): {first}") from exc

    def _prepare(self, request: WorkRequest, slot: Slot) -> WorkRequest:
        update: dict[str, Any] = {"secrets": forwarded_secrets(request.secrets, self.forward_env)}
        update["worker"] = slot.name
        c = self.config
        update.update(self._source.update(request, mode=c.source, url=c.repo_url, where="the Ray executor"))
        return request.model_copy(update=update)

    def _pause_board(self) -> Any:
        with self._lock:
            if self._board is None:
                self._board = self.ray.remote(num_cpus=0)(PauseBoard).remote()
            return self._board

    def pause(self, task_id: str, attempt: int, reason: str) -> None:
        """Ask an attempt to stop before its next model call: its Ray task writes the pause file there."""
        self._pause_board().ask.remote(task_id, attempt, reason)

    def cancel(self, task_id: str, attempt: int) -> None:
        """Cancel the attempt's Ray task (its worker process and the worker command die)."""
        with self._lock:
            ref = self._refs.get((task_id, attempt))
        if ref is not None:
            self.ray.cancel(ref, force=True)

    def close(self) -> None:
        """Cancel what still runs; shut down the Ray this executor started (not one started by others)."""
        with self._lock:
            refs = list(self._refs.values())
        for ref in refs:
            self.ray.cancel(ref, force=True)
        if self._board is not None:
            self.ray.kill(self._board)
        if self._is_owner:
            self.ray.shutdown()

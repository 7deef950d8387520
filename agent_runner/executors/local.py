"""Local executor: each attempt runs the worker (`run-agents exec -`) in its own process on this machine.

By default the processes are forked from a fork server that has the runner imported (a few ms per attempt
instead of ~0.5 s of interpreter start); `fork=False` starts `run-agents exec -` itself for every attempt.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from agent_runner.core.errors import ExecutorError, GitError
from agent_runner.core.protocols import LOCAL_MACHINE, Slot
from agent_runner.core.result import TaskResult, WorkRequest
from agent_runner.executors.fork.client import ForkClient
from agent_runner.executors.pipe import MAX_OUTPUT_BYTES, communicate_bounded
from agent_runner.models.ratelimit import ReportTap
from agent_runner.repo import diskspace, git, pools
from agent_runner.repo.layout import AttemptPaths
from agent_runner.repo.ownership import remove_dead
from agent_runner.repo.workspace import init_state_dir
from agent_runner.worker import deadline
from agent_runner.worker.pause import request_pause
from agent_runner.worker.request import request_config

KILL_GRACE_S = 5.0
log = logging.getLogger(__name__)
SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "COOKIE")


def worker_command() -> list[str]:
    """Return the command line that starts `run-agents` with this interpreter."""
    return [sys.executable, "-m", "agent_runner.cli"]


def worker_env(environ: Mapping[str, str], forward: list[str]) -> dict[str, str]:
    """Return the worker's environment: everything but secrets (model keys travel on stdin instead)."""
    drop = set(forward) | {"GITHUB_TOKEN", "GH_TOKEN"}
    return {
        k: v for k, v in environ.items() if k not in drop and not any(m in k.upper() for m in SECRET_MARKERS)
    }


def parse_result(stdout: str, request: WorkRequest) -> TaskResult:
    """Return the TaskResult in the worker's stdout (its last JSON line); raise ExecutorError if none."""
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                result = TaskResult.model_validate(json.loads(line))
            except (ValueError, ValidationError):
                continue
            if (result.task_id, result.attempt) != (request.task.id, request.attempt):
                raise ExecutorError(
                    f"worker answered for {result.task_id}#{result.attempt}, not the task it got"
                )
            return result
    raise ExecutorError("the worker printed no result")


class LocalExecutor:
    """Runs the worker command as a subprocess per attempt, `workers` at a time."""

    is_spend_seen = True  # its workers' trajectories are where the coordinator reads them (a run's budget)

    def __init__(
        self,
        *,
        workdir: Path,
        workers: int = 2,
        forward_env: list[str] | None = None,
        command: list[str] | None = None,
        cwd: Path | None = None,
        fork: bool = True,
        backstop_grace_s: float = deadline.BACKSTOP_GRACE_S,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.n_workers = workers
        self.forward_env = list(forward_env or [])
        self.command = command or worker_command()
        self.cwd = cwd
        self.fork = fork and command is None
        self._procs: dict[tuple[str, int], subprocess.Popen[bytes]] = {}
        self._pids: dict[tuple[str, int], int] = {}
        self._client: ForkClient | None = None
        self._lock = threading.Lock()
        self.backstop_grace_s = backstop_grace_s
        self.paused: str | None = None  # why this machine takes no more attempts this run (a full disk)
        self._overdue: set[tuple[str, int]] = set()  # attempts whose worker the backstop killed
        self.reports = ReportTap()  # the workers' rate-limit reports, for the coordinator

    def prepare(self) -> None:
        """Start the fork server now, so its imports overlap the coordinator's own start-up."""
        if self.fork:
            self._fork_client()

    def warm(self, repo: str, base_commit: str, count: int) -> None:
        """Make `count` checkouts of `repo` at `base_commit` ahead, in the background, while workers start."""
        if not self.fork:
            return  # a plain `run-agents exec` worker makes no checkouts ahead, so takes none

        def make() -> None:
            try:
                cache = git.ensure_cache(repo, need=base_commit)
                pool = pools.pool_for(self.workdir, repo)
                for _ in range(count):
                    if pools.make_ready(cache, pool, base_commit, keep=count) is None:
                        return
            except (GitError, OSError) as exc:  # an optimisation only: the first attempts clone
                log.info("no checkouts made ahead of the first attempts: %s", exc)

        threading.Thread(target=make, daemon=True, name="warm-checkouts").start()

    def slots(self) -> list[Slot]:
        """Return one slot per local worker (none once the machine is paused: its disk is full)."""
        if self.paused is not None:
            return []
        return [Slot(f"local-{i + 1}", machine=LOCAL_MACHINE) for i in range(self.n_workers)]

    def run(self, request: WorkRequest, slot: Slot) -> TaskResult:
        """Run one attempt in a subprocess; its stderr goes to runs/<task>/<attempt>/worker.log.

        A worker still running `backstop_grace_s` past the attempt's wall-clock limit is killed (the
        attempt fails, naming the limit); a worker that dies leaves no checkout behind.
        """
        paths = AttemptPaths.under(self.workdir, request.task.id, request.attempt)
        init_state_dir(self.workdir)
        paths.run_dir.mkdir(parents=True, exist_ok=True)
        request = request.model_copy(update={"worker": slot.name})
        key = (request.task.id, request.attempt)
        minutes = deadline.request_minutes(request)
        timer = threading.Timer(minutes * 60 + self.backstop_grace_s, self._kill_overdue, (key,))
        timer.daemon = True
        timer.start()
        try:
            result = self._run_worker(request, slot, paths)
        except ExecutorError:
            remove_dead(paths.checkout)  # its worker is dead: no attempt owns it any more
            if key in self._overdue:
                return deadline.overdue_result(request, minutes, self.backstop_grace_s)
            raise
        finally:
            timer.cancel()
        if result.machine_problem:
            self._pause(result.machine_problem)
        return result

    def _run_worker(self, request: WorkRequest, slot: Slot, paths: AttemptPaths) -> TaskResult:
        if self.fork:
            return self._run_forked(request, slot, paths)
        argv = [*self.command, "exec", "-", "--workdir", str(self.workdir)]
        key = (request.task.id, request.attempt)
        with open(paths.run_dir / "worker.log", "ab") as log:
            proc = self._start(argv, log, key)
            try:
                stdout, _ = communicate_bounded(
                    proc, request.model_dump_json().encode(), on_line=self.reports.listener(key)
                )
            finally:
                with self._lock:
                    self._procs.pop(key, None)
        if proc.returncode != 0:
            _signal_group(proc.pid, signal.SIGKILL)  # what it started goes with it
            raise self._died(proc.returncode, slot, paths, request)
        return parse_result(stdout.decode("utf-8", "replace"), request)

    def _run_forked(self, request: WorkRequest, slot: Slot, paths: AttemptPaths) -> TaskResult:
        key = (request.task.id, request.attempt)
        result_file = paths.run_dir / "result.json"
        result_file.unlink(missing_ok=True)
        client = self._fork_client()
        command = {
            "id": f"{key[0]}#{key[1]}", "request": request.model_dump_json(), "workdir": str(self.workdir),
            "log": str(paths.run_dir / "worker.log"), "result": str(result_file),
            "ahead": self.n_workers + 1,  # checkouts kept made ahead: a round of attempts, and one more
        }  # fmt: skip
        pid = client.start(command)
        with self._lock:
            self._pids[key] = pid
        try:
            code = client.wait(pid, on_report=self.reports.listener(key))
        finally:
            with self._lock:
                self._pids.pop(key, None)
        if code != 0 or not result_file.exists():
            _signal_group(pid, signal.SIGKILL)  # what it started goes with it
            raise self._died(code, slot, paths, request)
        with open(result_file, "rb") as fh:  # the worker's own file, read with the same bound as its stdout
            size = os.fstat(fh.fileno()).st_size  # read(bound) would reserve the whole bound at once
            if size > MAX_OUTPUT_BYTES:
                raise ExecutorError(f"the worker's result is over {MAX_OUTPUT_BYTES} bytes; it was refused")
            text = fh.read(size)
        return parse_result(text.decode("utf-8", "replace"), request)

    def _died(self, code: int, slot: Slot, paths: AttemptPaths, request: WorkRequest) -> ExecutorError:
        """Return the error of a worker that exited without a result; a full disk pauses this machine."""
        config = request_config(request)
        tail = _tail(paths.run_dir / "worker.log")
        if problem := diskspace.low_space(self.workdir, config.min_free_mb):
            self._pause(problem)
            tail = f"{tail}; {problem}"
        return ExecutorError(f"worker exited with {code} on {slot.name}: {tail}")

    def _pause(self, problem: str) -> None:
        if self.paused is None:
            log.warning("this machine is paused: %s", problem)
        self.paused = problem

    def _kill_overdue(self, key: tuple[str, int]) -> None:
        """Kill an attempt's worker (and all it started) that ran past its wall-clock limit and grace."""
        with self._lock:
            self._overdue.add(key)
            proc, pid = self._procs.get(key), self._pids.get(key)
        for group in (proc.pid if proc is not None else None, pid):
            if group is not None:
                _signal_group(group, signal.SIGKILL)

    def _fork_client(self) -> ForkClient:
        with self._lock:
            if self._client is None or not self._client.is_alive:
                env = worker_env(os.environ, self.forward_env)
                # one spare child per worker: a slot that frees gets a child forked while all were busy
                self._client = ForkClient(env=env, cwd=self.cwd, spares=self.n_workers)
            return self._client

    def _start(self, argv: list[str], log: IO[bytes], key: tuple[str, int]) -> subprocess.Popen[bytes]:
        env = worker_env(os.environ, self.forward_env)
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env,
                cwd=self.cwd, start_new_session=True,  # Ctrl-C in the terminal reaches the coordinator only
            )  # fmt: skip
        except OSError as exc:
            raise ExecutorError(f"cannot start the worker `{' '.join(argv[:3])}`: {exc}") from exc
        with self._lock:
            self._procs[key] = proc
        return proc

    def pause(self, task_id: str, attempt: int, reason: str) -> None:
        """Ask an attempt's worker to stop before its next model call (its pause file, on this machine)."""
        request_pause(AttemptPaths.under(self.workdir, task_id, attempt).run_dir, reason)

    def cancel(self, task_id: str, attempt: int) -> None:
        """Stop an attempt's worker and everything it started (SIGTERM, then SIGKILL)."""
        with self._lock:
            proc = self._procs.get((task_id, attempt))
            pid = self._pids.get((task_id, attempt))
        if proc is not None:
            _kill_group(proc)
        if pid is not None:
            _signal_group(pid, signal.SIGTERM)
            threading.Timer(KILL_GRACE_S, _signal_group, (pid, signal.SIGKILL)).start()

    def close(self) -> None:
        """Stop every worker still running."""
        with self._lock:
            procs = list(self._procs.values())
            client, self._client = self._client, None
        for proc in procs:
            _kill_group(proc)
        if client is not None:
            client.close()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=KILL_GRACE_S)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path, n_chars: int = 800) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return text[-n_chars:].strip().replace("\n", " | ") or "(empty log: the worker wrote nothing)"

"""The coordinator: the single writer of the queue file; claims, dispatches, heartbeats and records results.

All queue writes happen on the thread that calls `Scheduler.run`; executors run attempts in worker threads
and hand results back through an in-memory queue.
"""

from __future__ import annotations

import functools
import os
import queue as stdqueue
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from agent_runner import git
from agent_runner.config import RunnerConfig
from agent_runner.errors import ExecutorError, GitError, GitHubError, RunnerError, StaleAttemptError
from agent_runner.landing import land_result, landing_repo, source_repo
from agent_runner.protocols import Executor, Publisher, Slot
from agent_runner.queue import Claim, Queue
from agent_runner.queue_state import TaskState
from agent_runner.result import Outcome, TaskResult, WorkRequest
from agent_runner.scheduling import (
    Done,
    RunEvent,
    Running,
    RunSummary,
    SchedulerOptions,
    is_pending,
    model_for,
    overlaps,
    sync_task_files,
)
from agent_runner.task import Limits, Task, TaskKind, TaskStatus

BACKOFF_CAP_S = 600.0
POLL_S = 0.2
BASE_TTL_S = 30.0
WATCH_RESYNC_S = 5.0  # a safety net under the file watcher (a file written while it starts up)


class Scheduler:
    """Runs the queue on an executor until nothing runnable is left (or forever with `watch`)."""

    def __init__(
        self,
        queue: Queue,
        executor: Executor,
        *,
        config: RunnerConfig,
        root: Path,
        publisher: Publisher | None = None,
        only: Iterable[str] = (),
        model: str | None = None,
        on_event: Callable[[RunEvent], None] | None = None,
    ) -> None:
        self.queue, self.executor, self.config = queue, executor, config
        self.root = Path(root).resolve()
        self.publisher = publisher
        self.options = SchedulerOptions(only=frozenset(only), model=model)
        self.on_event = on_event or (lambda event: None)
        self.state_dir = config.path(self.root, "state_dir")
        self.running: dict[tuple[str, int], Running] = {}
        self.blocked_models: dict[str, str] = {}
        self.summary = RunSummary()
        self._done: stdqueue.Queue[Done] = stdqueue.Queue()
        self._stop = threading.Event()
        self._cancel = threading.Event()
        self._resync = threading.Event()
        self._reported_invalid: set[tuple[str, str]] = set()
        self._budget_hit = self._budget_blocked = False
        self._synced_at = 0.0
        self._bases: dict[tuple[str, str | None], tuple[str, float]] = {}
        self._secrets = {k: os.environ[k] for k in config.forward_env if os.environ.get(k)}
        self._config_json = config.model_dump(mode="json", by_alias=True)

    # -- control (any thread) -------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop claiming; running attempts finish and are recorded (first Ctrl-C)."""
        self._stop.set()

    def cancel(self) -> None:
        """Stop claiming and cancel running attempts, releasing their leases (second Ctrl-C)."""
        self._stop.set()
        self._cancel.set()

    def request_sync(self) -> None:
        """Ask the loop to read the task folder again (watch mode)."""
        self._resync.set()

    # -- the loop ---------------------------------------------------------------------------------------
    def run(self, *, watch: bool = False) -> RunSummary:
        """Run until nothing runnable is left (or until stopped, with `watch`); return the summary."""
        self.options.watch = watch
        started = time.time()
        self.summary.interrupted = False
        prepare = getattr(self.executor, "prepare", None)  # optional: warm up workers while we sync
        if callable(prepare):
            prepare()
        self._sync()
        if self.publisher is not None:
            self._publish_interrupted()
        for task_id in sorted(self.options.only - set(self.queue.states)):
            self.summary.failed[task_id] = (
                "no such task in tasks/ or the queue; `run-agents list` shows the ids"
            )
            self._emit("unknown", task_id, message=self.summary.failed[task_id])
        try:
            while True:
                self._drain(timeout=0)
                if self._cancel.is_set():
                    self._cancel_running()
                self._heartbeat_due()
                if self._resync.is_set() or (watch and time.monotonic() - self._synced_at > WATCH_RESYNC_S):
                    self._resync.clear()
                    self._sync()
                if not self._stop.is_set():
                    self._dispatch()
                    self._check_budget()
                if not self.running and (self._stop.is_set() or (not watch and not self._has_pending())):
                    break
                self._drain(timeout=POLL_S)
        finally:
            self.summary.wall_s = time.time() - started
            self.summary.interrupted = self._stop.is_set()
            self.summary.blocked_models = dict(self.blocked_models)
        return self.summary

    def _sync(self) -> None:
        self._synced_at = time.monotonic()
        for invalid in sync_task_files(self.root, self.config, self.queue):
            key = (invalid.id, invalid.reason)
            if key not in self._reported_invalid:
                self._reported_invalid.add(key)
                self._emit("invalid", invalid.id, message=invalid.reason)
                self.summary.invalid[invalid.id] = invalid.reason

    def _has_pending(self) -> bool:
        states = self.queue.refresh()
        slots = self.executor.slots()
        return not self._budget_hit and any(
            is_pending(s, states, in_scope=self._in_scope, slots=slots) or self._leased_elsewhere(s)
            for s in states.values()
        )

    def _leased_elsewhere(self, state: TaskState) -> bool:
        """A task running under another (maybe killed) coordinator's lease: wait until it ends or expires."""
        is_ours = (state.id, state.attempt) in self.running
        return state.status == TaskStatus.RUNNING and not is_ours and self._in_scope(state)

    def _in_scope(self, state: TaskState) -> bool:
        if self.options.only and state.id not in self.options.only:
            return False
        return self._model_of(state) not in self.blocked_models

    def _model_of(self, state: TaskState) -> str:
        return model_for(state.task, self.options.model, self.config)

    # -- dispatch ---------------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        self._budget_blocked = False
        if self._budget_hit:
            return
        busy = {run.slot.name for run in self.running.values()}
        for slot in self.executor.slots():
            if slot.name in busy:
                continue
            claim = self.queue.claim(
                slot.name, lease_s=self.config.lease_seconds, accept=self._acceptor(slot)
            )
            if claim is None:
                continue
            self._start(claim, slot)

    def _acceptor(self, slot: Slot) -> Callable[[TaskState], bool]:
        running_paths = [(run.task.repo, run.task.paths) for run in self.running.values()]

        def accept(state: TaskState) -> bool:
            repo, paths = state.task.get("repo"), state.task.get("paths") or []
            if not self._in_scope(state) or not slot.accepts(state.task.get("machine")):
                return False
            if any(r == repo and overlaps(paths, other) for r, other in running_paths):
                return False
            return self._fits_budget(state)

        return accept

    def _fits_budget(self, state: TaskState) -> bool:
        """Whether the task's cost limit fits what is left of the run's budget after running tasks' limits."""
        budget = self.config.budget_usd
        if budget is None:
            return True
        reserved = sum(self._cost_cap(run.task.kind, run.task.limits) for run in self.running.values())
        task = Task.model_validate(state.task)
        if self.summary.cost_usd + reserved + self._cost_cap(task.kind, task.limits) <= budget + 1e-9:
            return True
        self._budget_blocked = True
        return False

    def _cost_cap(self, kind: TaskKind, limits: Limits) -> float:
        cap = self.config.limits_for(kind, limits).cost_usd
        return (self.config.budget_usd or 0.0) if cap is None else cap

    def _check_budget(self) -> None:
        if self._budget_blocked and not self.running and not self._budget_hit:
            self._budget_hit = True
            spent, budget = self.summary.cost_usd, self.config.budget_usd or 0.0
            message = (
                f"spent ${spent:.2f} of the ${budget:.2f} budget; the next task's cost limit does not fit"
            )
            self._emit("budget", message=message)

    def _start(self, claim: Claim, slot: Slot) -> None:
        try:
            task = Task.model_validate(claim.state.task)
            request = self._request(task, claim, slot)
        except (RunnerError, ValueError) as exc:
            reason = f"cannot start: {exc}"
            self._record_safely(claim.task_id, claim.attempt, lambda: self._fail(claim, reason))
            return
        now = time.monotonic()
        run = Running(claim, task, slot, request.model or "", now, now)
        self.running[(claim.task_id, claim.attempt)] = run
        self._emit("started", task.id, claim.attempt, slot.name, message=run.model)
        thread = threading.Thread(
            target=self._work, args=(request, slot), daemon=True, name=f"task-{task.id}"
        )
        thread.start()

    def _request(self, task: Task, claim: Claim, slot: Slot) -> WorkRequest:
        repo = source_repo(self.root, task)
        base_commit = self._base_commit(repo, task.base)
        return WorkRequest(
            task=task, attempt=claim.attempt, repo=repo, base=task.base, base_commit=base_commit,
            model=model_for(claim.state.task, self.options.model, self.config), config=self._config_json,
            secrets=self._secrets, worker=slot.name,
        )  # fmt: skip

    def _base_commit(self, repo: str, base: str | None) -> str | None:
        """Resolve a local repo's base once per run (re-read after BASE_TTL_S, for watch mode)."""
        if not git.is_local(repo):
            return None
        cached = self._bases.get((repo, base))
        if cached is None or time.monotonic() - cached[1] > BASE_TTL_S:
            cached = self._bases[(repo, base)] = (git.resolve_base(Path(repo), base), time.monotonic())
        return cached[0]

    def _work(self, request: WorkRequest, slot: Slot) -> None:
        key = (request.task.id, request.attempt)
        try:
            self._done.put(Done(key, result=self.executor.run(request, slot)))
        except BaseException as exc:  # every failure of a worker thread must reach the loop
            self._done.put(Done(key, error=exc))

    # -- leases ---------------------------------------------------------------------------------------
    def _heartbeat_due(self) -> None:
        now = time.monotonic()
        for key, run in list(self.running.items()):
            if now - run.last_beat < self.config.heartbeat_seconds:
                continue
            try:
                self.queue.heartbeat(*key, lease_s=self.config.lease_seconds)
                run.last_beat = now
            except StaleAttemptError as exc:
                self._abandon(key, str(exc))

    def _abandon(self, key: tuple[str, int], reason: str) -> None:
        self.running.pop(key, None)
        self.executor.cancel(*key)
        self._emit("discarded", key[0], key[1], message=reason)

    def _cancel_running(self) -> None:
        for key in list(self.running):
            run = self.running.pop(key)
            self.executor.cancel(*key)
            reason = "cancelled by Ctrl-C; runs again next time"
            self._record_safely(*key, functools.partial(self.queue.release, *key, reason, infra=False))
            self._emit("cancelled", key[0], key[1], run.slot.name, message=reason)

    # -- results ----------------------------------------------------------------------------------------
    def _drain(self, *, timeout: float) -> None:
        try:
            done = self._done.get(timeout=timeout) if timeout else self._done.get_nowait()
        except stdqueue.Empty:
            return
        while True:
            run = self.running.pop(done.key, None)
            if run is not None:
                self._record(run, done)
            try:
                done = self._done.get_nowait()
            except stdqueue.Empty:
                return

    def _record(self, run: Running, done: Done) -> None:
        key = (run.claim.task_id, run.claim.attempt)
        if done.result is None:
            error = done.error
            reason = str(error) if isinstance(error, ExecutorError) else f"worker failed: {error!r}"
            self._record_safely(*key, lambda: self._infra(run, reason))
            return
        result = _redacted(
            done.result.model_copy(update={"machine": done.result.machine or run.slot.machine})
        )
        self.summary.add_cost(result)
        handler = {
            Outcome.ACCEPTED: self._accept,
            Outcome.REJECTED: lambda r, res: self._fail(r.claim, res.reason, res),
            Outcome.INFRA: lambda r, res: self._infra(r, res.reason, res),
            Outcome.MODEL_AUTH: self._model_auth,
        }[result.outcome]
        self._record_safely(*key, lambda: handler(run, result))

    def _record_safely(self, task_id: str, attempt: int, action: Callable[[], Any]) -> None:
        try:
            action()
        except StaleAttemptError as exc:
            self._emit("discarded", task_id, attempt, message=str(exc))

    def _accept(self, run: Running, result: TaskResult) -> None:
        task = run.task
        try:
            repo = land_result(self.root, self.state_dir, task, result)
        except GitError as exc:
            self._infra(run, f"cannot fetch the result bundle: {exc}", result)
            return
        self.queue.finish(task.id, run.claim.attempt, result.for_queue())
        self.summary.finished.append(task.id)
        self._emit("finished", task.id, run.claim.attempt, run.slot.name, result=result)
        if self.publisher is not None and repo is not None:
            self._publish(task, result, repo)

    def _publish(self, task: Task, result: TaskResult, repo: Path) -> None:
        assert self.publisher is not None
        try:
            url = self.publisher.publish(task, result, repo)
        except GitHubError as exc:
            self.queue.publish_event(task.id, error=str(exc))
            self.summary.unpublished[task.id] = str(exc)
            self._emit("unpublished", task.id, result.attempt, message=str(exc))
            return
        self.queue.publish_event(task.id, pr_url=url)
        self._emit("published", task.id, result.attempt, message=url or "")

    def _publish_interrupted(self) -> None:
        """Publish finished tasks whose publishing a killed coordinator never started or recorded."""
        pending: dict[str, dict[str, Any]] = {}
        for event in self.queue.events():
            if event.get("type") == "finished":
                pending[event["task"]] = event.get("result") or {}
            elif event.get("type") in ("published", "unpublished", "requeued"):
                pending.pop(event.get("task", ""), None)
        states = self.queue.refresh()
        for task_id, record in pending.items():
            state = states.get(task_id)
            if state is None or state.status != TaskStatus.FINISHED or not record.get("head_commit"):
                continue
            if self.options.only and task_id not in self.options.only:
                continue
            task, result = Task.model_validate(state.task), TaskResult.model_validate(record)
            self._publish(task, result, landing_repo(self.root, task))

    def _fail(self, claim: Claim, reason: str, result: TaskResult | None = None) -> None:
        record = result.for_queue() if result else None
        final = self.queue.fail(claim.task_id, claim.attempt, reason, result=record)
        if final:
            self.summary.failed[claim.task_id] = self.queue.states[claim.task_id].reason
        self._emit("failed", claim.task_id, claim.attempt, message=reason, result=result, final=final)

    def _infra(self, run: Running, reason: str, result: TaskResult | None = None) -> None:
        state = self.queue.refresh()[run.claim.task_id]
        backoff = min(BACKOFF_CAP_S, self.config.backoff_seconds * 2**state.infra)
        final = self.queue.release(
            run.claim.task_id, run.claim.attempt, reason, infra=True, backoff_s=backoff
        )
        if final:
            self.summary.failed[run.claim.task_id] = self.queue.states[run.claim.task_id].reason
        event = "failed" if final else "requeued"
        self._emit(event, run.task.id, run.claim.attempt, message=reason, result=result, final=final)

    def _model_auth(self, run: Running, result: TaskResult) -> None:
        self.queue.release(run.task.id, run.claim.attempt, result.reason, infra=False)
        if run.model not in self.blocked_models:
            self.blocked_models[run.model] = result.reason
            reason = result.reason if result.reason.startswith(run.model) else f"{run.model}: {result.reason}"
            message = f"{reason}. Its tasks stay queued; fix the key and run again."
            self._emit("model_blocked", run.task.id, run.claim.attempt, message=message)

    def _emit(
        self,
        kind: str,
        task: str | None = None,
        attempt: int | None = None,
        worker: str | None = None,
        **fields: Any,
    ) -> None:
        self.on_event(RunEvent(kind, task, attempt, worker, **fields))


def _redacted(result: TaskResult) -> TaskResult:
    """Mask secrets of this process's environment and token patterns in a worker's result (untrusted text)."""
    from agent_runner.redact import Redactor

    data = Redactor.from_env(os.environ).obj(result.model_dump(mode="json", exclude={"bundle_b64"}))
    return TaskResult.model_validate({**data, "bundle_b64": result.bundle_b64})

"""The coordinator: the one writer of attempt events; claims, dispatches, heartbeats and records results.

All queue writes happen on the thread that calls `Scheduler.run`; executors run attempts in worker threads
and hand results back through an in-memory queue. An accepted result's commits are imported into the repo on
its worker thread; the loop moves the branch only after checking that the attempt is still live.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue as stdqueue
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from agent_runner.config.runner import COORDINATOR_ONLY, RunnerConfig
from agent_runner.coordinator.attempts import Done, Running, run_attempt, take_done
from agent_runner.coordinator.budget import Budget
from agent_runner.coordinator.events import RunEvent, RunSummary
from agent_runner.coordinator.holds import is_model_free
from agent_runner.coordinator.landing import LandingRules, source_repo
from agent_runner.coordinator.options import SchedulerOptions, model_for
from agent_runner.coordinator.pause import BudgetWatch
from agent_runner.coordinator.readiness import Footprints, Writers, is_pending, queued_by_base
from agent_runner.coordinator.recording import Recorder
from agent_runner.coordinator.sweep import sweep_checkouts
from agent_runner.coordinator.throttle import Throttle
from agent_runner.core.errors import GitError, QueueError, RunnerError, StaleAttemptError
from agent_runner.core.protocols import Executor, Publisher, Slot
from agent_runner.core.result import Outcome, WorkRequest
from agent_runner.core.task import Task, TaskStatus
from agent_runner.queue.intake import sync_tasks
from agent_runner.queue.sources import BaseCommits, source_of
from agent_runner.queue.state import TaskState
from agent_runner.queue.store import Claim, Queue

log = logging.getLogger(__name__)

TASK_OUTCOMES = (Outcome.ACCEPTED, Outcome.REJECTED)  # results that leave the dispatch rules as they were

POLL_S = 0.2
LANDING_WAIT_S = 1.0  # a landing's end wakes the loop at once; this only bounds the wait
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
        self.options = SchedulerOptions(only=frozenset(only), model=model)
        self.on_event = on_event or (lambda event: None)
        self.state_dir = config.path(self.root, "state_dir")
        self.landing_rules = LandingRules.of(config)
        self.running: dict[tuple[str, int], Running] = {}
        self._landing: list[Running] = []
        self.summary = RunSummary()
        self.recorder = Recorder(
            queue, config=config, root=self.root, publisher=publisher, summary=self.summary, emit=self._emit
        )
        self.blocked_models = self.recorder.blocked_models
        self.holds = self.recorder.holds
        self._done: stdqueue.Queue[Done] = stdqueue.Queue()
        self._stop = threading.Event()
        self._cancel = threading.Event()
        self._resync = threading.Event()
        self._reported_invalid: set[tuple[str, str]] = set()
        self.budget = Budget(config)
        self.budget_watch = BudgetWatch(
            self.budget, executor, state_dir=self.state_dir, emit=self._emit, ledger=self.recorder.pauses
        )
        self._synced_at = 0.0
        self._bases = BaseCommits(BASE_TTL_S)
        self.footprints = Footprints(self.root)
        self._secrets = {k: os.environ[k] for k in config.forward_env if os.environ.get(k)}
        self._config_json = config.model_dump(mode="json", by_alias=True, exclude=set(COORDINATOR_ONLY))
        self.throttle = Throttle(config, secrets=self._secrets, emit=self._emit)
        self.throttle.listen(executor)
        self.recorder.rate_wait = self.throttle.limits.requeue_wait

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
        try:
            with self.queue.coordinator():
                self.budget.start()
                self._begin()
                while self._step():
                    self._drain(timeout=POLL_S)
                self.recorder.maintain()
                self.budget_watch.finish(self.queue, self.queue.refresh(), self._scope())
        finally:
            self.summary.wall_s = time.time() - started
            self.summary.interrupted = self._stop.is_set()
            self.summary.blocked_models = dict(self.blocked_models)
            self.summary.budget_stop = self.budget_watch.stop
            self.summary.throttled = self.throttle.limits.summary()
            states = self.queue.states
            self.summary.held = {
                task_id: reason
                for task_id, reason in self.holds.reasons.items()
                if task_id in states and states[task_id].status == TaskStatus.QUEUED
            }
        return self.summary

    def _begin(self) -> None:
        prepare = getattr(self.executor, "prepare", None)  # optional: warm up workers while we sync
        if callable(prepare):
            prepare()
        for task_id in self.queue.release_orphans():
            self._emit("orphaned", task_id, message="left running by a stopped coordinator; runs again")
        for path in sweep_checkouts(self.config.path(self.root, "state_dir"), self.queue):
            log.info("removed the checkout %s of an attempt that no longer runs", path)
        self._sync()
        self._warm_checkouts()
        self.recorder.publish_interrupted(self.options.only)
        for task_id in sorted(self.options.only - set(self.queue.states)):
            self.summary.failed[task_id] = (
                "no such task in tasks/ or the queue; `run-agents list` shows the ids"
            )
            self._emit("unknown", task_id, message=self.summary.failed[task_id])

    def _step(self) -> bool:
        """Do one round of the loop; return whether the run goes on."""
        self._drain(timeout=0)
        if self._cancel.is_set():
            self._cancel_running()
        self._heartbeat_due()
        watch = self.options.watch
        if self._resync.is_set() or (watch and time.monotonic() - self._synced_at > WATCH_RESYNC_S):
            self._resync.clear()
            self._sync()
        self.throttle.tick(self.running)
        if not self._stop.is_set():
            self._dispatch()
            self._check_budget()
        is_idle = not self.running
        is_over = self._stop.is_set() or self.budget.hit  # a budget ends `watch` too
        return not (is_idle and (is_over or (not watch and not self._has_pending())))

    def _sync(self) -> None:
        self._synced_at = time.monotonic()
        for invalid in sync_tasks(self.root, self.config, self.queue).invalid:
            key = (invalid.id, invalid.reason)
            if key not in self._reported_invalid:
                self._reported_invalid.add(key)
                self._emit("invalid", invalid.id, message=invalid.reason)
                self.summary.invalid[invalid.id] = invalid.reason

    def _warm_checkouts(self) -> None:
        """Let an executor on this machine make the first attempts' checkouts while its workers start."""
        warm = getattr(self.executor, "warm", None)
        if not callable(warm):
            return
        counts = queued_by_base(self.root, self.queue.refresh(), self._in_scope)
        n_slots = len(self.executor.slots())
        for (repo, base), n_tasks in counts.items():
            with contextlib.suppress(GitError):
                if (commit := self._base_commit(repo, base)) is not None:
                    warm(repo, commit, min(n_tasks, n_slots + 1))

    def _has_pending(self) -> bool:
        states = self.queue.refresh()
        slots = self.executor.slots()
        return not self.budget.hit and any(
            is_pending(s, states, in_scope=self._in_scope, slots=slots) or self._leased_elsewhere(s)
            for s in states.values()
        )

    def _scope(self) -> list[str]:
        """Return the ids this run may run (its `--only`, else every task) that no setup problem holds."""
        ids = self.options.only or self.queue.states.keys()
        return [
            task_id for task_id in ids if task_id in self.queue.states and task_id not in self.holds.reasons
        ]

    def _leased_elsewhere(self, state: TaskState) -> bool:
        """A task running under another (maybe killed) coordinator's lease: wait until it ends or expires."""
        is_ours = (state.id, state.attempt) in self.running
        return state.status == TaskStatus.RUNNING and not is_ours and self._in_scope(state)

    def _in_scope(self, state: TaskState) -> bool:
        if self.options.only and state.id not in self.options.only:
            return False
        reason = self._hold_reason(state)
        if reason is not None:
            self.holds.hold(state.id, reason)
        return reason is None

    def _hold_reason(self, state: TaskState) -> str | None:
        """Return why no attempt of a task could do its work now (a setup problem), or None."""
        if self.holds.is_tried(state.id):
            return self.holds.reasons[state.id]
        if state.task is None:
            return None  # a definition that is no valid Task is claimed, and failed with the reason
        model = self._model_of(state)  # fix-lint may need none: its model is judged if it comes back for it
        if not is_model_free(state.task) and not self.recorder.is_usable(model, state.id):
            return self.blocked_models[model]
        try:
            self._base_commit(source_of(self.root, state.task.repo), state.task.base)
        except GitError as exc:
            return str(exc)
        return None

    def _model_of(self, state: TaskState) -> str:
        return model_for(state.task, self.options.model, self.config)

    # -- dispatch ---------------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        self.budget.blocked = None
        if self.budget.hit:
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
        writers = Writers(
            self.footprints.of(r.task, n_ended=r.claim.attempt - 1) for r in self.running.values()
        )
        runs = [
            ((r.claim.task_id, r.claim.attempt), r.task) for r in [*self.running.values(), *self._landing]
        ]
        spent = self.budget_watch.committed(self.summary.known_cost_usd, runs)  # ended, unrecorded: too

        def accept(state: TaskState) -> bool:
            task = state.task
            if task is None:  # an invalid definition: taken so that _start fails it with the reason
                return self._in_scope(state)
            if not self._in_scope(state) or not slot.accepts(task.machine):
                return False
            if writers.overlap(self.footprints.of(task, n_ended=state.attempt)):
                return False
            if not self.throttle.admits(task, self._model_of(state), self.running):
                return False
            return self.budget.fits(spent, task)

        return accept

    def _check_budget(self) -> None:
        self.budget_watch.check(self.summary.known_cost_usd, list(self.running))

    def _start(self, claim: Claim, slot: Slot) -> None:
        task = claim.state.task
        try:
            if task is None:  # a definition that is no valid Task: fail it, saying why
                raise QueueError(claim.state.task_problem)
            request = self._request(task, claim, slot)
        except (RunnerError, ValueError) as exc:
            reason = f"cannot start: {exc}"
            self.recorder.safely(claim.task_id, claim.attempt, lambda: self.recorder.fail(claim, reason))
            return
        now = time.monotonic()
        run = Running(claim, task, slot, request.model or "", now, now)
        self.holds.lift(task.id)
        self.running[(claim.task_id, claim.attempt)] = run
        self._emit("started", task.id, claim.attempt, slot.name, message=run.model)
        args = (self.executor, request, slot, self._done)
        kwargs = {"root": self.root, "state_dir": self.state_dir, "rules": self.landing_rules}
        thread = threading.Thread(
            target=run_attempt, args=args, kwargs=kwargs, daemon=True, name=f"task-{task.id}"
        )
        thread.start()

    def _request(self, task: Task, claim: Claim, slot: Slot) -> WorkRequest:
        repo = source_repo(self.root, task)
        base_commit = self._base_commit(repo, task.base)
        return WorkRequest(
            task=task, attempt=claim.attempt, repo=repo, base=task.base, base_commit=base_commit,
            model=model_for(task, self.options.model, self.config), config=self._config_json,
            secrets=self._secrets, worker=slot.name,
        )  # fmt: skip

    def _base_commit(self, repo: str, base: str | None) -> str | None:
        """Resolve a local repo's base once per run (re-read after BASE_TTL_S, for watch mode)."""
        return self._bases.get(repo, base)

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
            self.recorder.safely(*key, functools.partial(self.queue.release, *key, reason, infra=False))
            self._emit("cancelled", key[0], key[1], run.slot.name, message=reason)

    # -- results ----------------------------------------------------------------------------------------
    def _drain(self, *, timeout: float) -> None:
        finished = self._finished(timeout)
        while finished:
            self._landing = [run for run, _ in finished]
            # Freed slots start their next task first, so workers do not wait while results land; but an
            # auth, outage or crash result changes what may be dispatched (model blocks, backoff): record
            # it first.
            is_plain = all(
                done.result is not None and done.result.outcome in TASK_OUTCOMES for _, done in finished
            )
            try:
                if is_plain and not self._stop.is_set():
                    self._dispatch()
            finally:
                self._landing = []
            # Record a result whose commits are in; while none is, wait for one (or for another result).
            ready = next((item for item in finished if item[1].is_landed), None)
            if ready is None:
                finished += self._finished(LANDING_WAIT_S)
                continue
            finished.remove(ready)
            self.recorder.record(*ready)
            # attempts that ended while that result landed get their slots refilled before the next lands
            finished += self._finished(0)

    def _finished(self, timeout: float) -> list[tuple[Running, Done]]:
        return [
            (run, done)
            for done in take_done(self._done, timeout)
            if (run := self.running.pop(done.key, None))
        ]

    def _emit(
        self,
        kind: str,
        task: str | None = None,
        attempt: int | None = None,
        worker: str | None = None,
        **fields: Any,
    ) -> None:
        self.on_event(RunEvent(kind, task, attempt, worker, **fields))

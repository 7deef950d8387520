"""What the coordinator does with the end of an attempt: land and publish it, or fail, re-queue, block."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from agent_runner.config.runner import RunnerConfig
from agent_runner.coordinator.attempts import Done, Running
from agent_runner.coordinator.events import RunSummary
from agent_runner.coordinator.holds import Holds, is_model_free
from agent_runner.coordinator.landing import Landing, land, landing_repo
from agent_runner.coordinator.pause import PauseLedger
from agent_runner.core.errors import (
    BundleRejectedError,
    ExecutorError,
    GitError,
    GitHubError,
    StaleAttemptError,
)
from agent_runner.core.protocols import LOCAL_MACHINE, Publisher
from agent_runner.core.redact import Redactor, redact_file, runner_redactor
from agent_runner.core.result import Outcome, TaskResult
from agent_runner.core.task import Task, TaskStatus
from agent_runner.models import spec_problem
from agent_runner.models.keys import missing_key
from agent_runner.queue.store import Claim, Queue
from agent_runner.repo import bundles
from agent_runner.repo.layout import AttemptPaths
from agent_runner.worker.trajectory import TRAJECTORY_FILE, recorded_spend, trajectory_path

BACKOFF_CAP_S = 600.0
MAINTAIN_EVERY = 50  # landings in a repo between runs of git's automatic maintenance (fetches skip it)
WORKER_FILES = (TRAJECTORY_FILE, "result.json", "worker.log")  # what a local worker leaves in its run dir
log = logging.getLogger(__name__)


class Recorder:
    """Turns results into queue events (on the coordinator's thread, the one writer of attempt events)."""

    def __init__(
        self,
        queue: Queue,
        *,
        config: RunnerConfig,
        root: Path,
        publisher: Publisher | None,
        summary: RunSummary,
        emit: Callable[..., None],
    ) -> None:
        self.queue, self.config, self.root, self.publisher = queue, config, root, publisher
        self.state_dir = config.path(root, "state_dir")
        self.summary, self.emit = summary, emit
        self.blocked_models: dict[str, str] = {}
        self.holds = Holds(emit)
        self.pauses = PauseLedger()
        self._usable_models: set[str] = set()
        self._unmaintained: Counter[Path] = Counter()
        # the seconds a task whose model call failed on a rate limit waits, or None (throttle.py sets it)
        self.rate_wait: Callable[[tuple[str, int], str], float | None] = lambda key, reason: None
        self.redactor: Redactor = runner_redactor(config, os.environ)

    def record(self, run: Running, done: Done) -> None:
        """Record one attempt's end: finished (landed, published), failed, re-queued or model blocked."""
        key = (run.claim.task_id, run.claim.attempt)
        self.scrub(*key)
        if done.result is None:
            error = done.error
            reason = str(error) if isinstance(error, ExecutorError) else f"worker failed: {error!r}"
            lost = self.lost_spend(run, reason)
            self.safely(*key, lambda: self._infra(run, reason, lost))
            return
        result = self._redacted(
            done.result.model_copy(update={"machine": done.result.machine or run.slot.machine})
        )
        self.summary.add_cost(result)
        handler = {
            Outcome.ACCEPTED: lambda r, res: self._accept(r, res, done.landing),
            Outcome.REJECTED: lambda r, res: self.fail(r.claim, res.reason, res),
            Outcome.INFRA: lambda r, res: (
                self._machine_full(r, res) if res.machine_problem else self._infra(r, res.reason, res)
            ),
            Outcome.MODEL_AUTH: self._model_auth,
            Outcome.PAUSED: self._paused,
        }[result.outcome]
        self.safely(*key, lambda: handler(run, result))

    def lost_spend(self, run: Running, reason: str) -> TaskResult | None:
        """Count what an attempt that left no result spent (as its trajectory here recorded it); return it.

        A remote worker's trajectory is on its machine: what a model task's dead remote attempt spent is
        unknown, and says so (never a silent $0).
        """
        task_id, attempt = run.claim.task_id, run.claim.attempt
        path = trajectory_path(self.state_dir, task_id, attempt)
        spend = recorded_spend(path)
        unknown = not spend.model_calls and self._spend_elsewhere(run, path)
        if not spend.model_calls and not unknown:
            return None
        result = TaskResult(
            task_id=task_id, attempt=attempt, outcome=Outcome.INFRA, reason=reason, model=run.model,
            model_calls=spend.model_calls, usage=spend.usage,
            cost_usd=None if unknown else spend.cost_usd, machine=run.slot.machine, spend_unknown=unknown,
        )  # fmt: skip
        self.summary.add_cost(result)
        return result

    @staticmethod
    def _spend_elsewhere(run: Running, trajectory: Path) -> bool:
        """Whether a model task's attempt ran where its trajectory is not readable here (a remote machine)."""
        remote = run.slot.machine != LOCAL_MACHINE and not trajectory.exists()
        return remote and not is_model_free(run.task)

    def scrub(self, task_id: str, attempt: int) -> None:
        """Mask secrets in the files the attempt's worker left here (it knew only the values sent to it)."""
        run_dir = AttemptPaths.under(self.state_dir, task_id, attempt).run_dir
        for name in WORKER_FILES:
            try:
                redact_file(run_dir / name, self.redactor)
            except OSError as exc:
                log.warning("cannot mask secrets in %s: %s", run_dir / name, exc)

    def _redacted(self, result: TaskResult) -> TaskResult:
        """Mask known secrets and token patterns in a worker's result (untrusted text)."""
        return result.redacted(self.redactor)

    def safely(self, task_id: str, attempt: int, action: Callable[[], Any]) -> None:
        try:
            action()
        except StaleAttemptError as exc:
            self.emit("discarded", task_id, attempt, message=str(exc))

    def _accept(self, run: Running, result: TaskResult, landing: Future[Landing | None] | None) -> None:
        task = run.task
        try:
            landed = landing.result() if landing is not None else None
            self.queue.check_live(task.id, run.claim.attempt)  # a stale attempt's branch never moves
            if landed is not None:
                land(landed)
        except BundleRejectedError as exc:  # the agent's commits themselves: a task failure, not a retry
            self.fail(run.claim, str(exc), result)
            return
        except (GitError, OSError) as exc:
            self._infra(run, f"cannot fetch the result bundle: {exc}", result)
            return
        if landed is not None:
            self._landed(landed.repo)
        self.queue.finish(task.id, run.claim.attempt, result.for_queue())
        self.summary.finished.append(task.id)
        self.emit("finished", task.id, run.claim.attempt, run.slot.name, result=result)
        if self.publisher is not None and landed is not None:
            self._publish(task, result, landed.repo)

    def _landed(self, repo: Path) -> None:
        self._unmaintained[repo] += 1
        if self._unmaintained[repo] >= MAINTAIN_EVERY:
            self._maintain(repo)

    def maintain(self) -> None:
        """Run git's automatic maintenance in every repo results landed in since it last ran."""
        for repo in list(self._unmaintained):
            self._maintain(repo)

    def _maintain(self, repo: Path) -> None:
        del self._unmaintained[repo]
        try:
            bundles.maintain(repo)
        except GitError as exc:  # housekeeping only: the results are in
            log.warning("git maintenance in %s failed: %s", repo, exc)

    def _publish(self, task: Task, result: TaskResult, repo: Path) -> None:
        assert self.publisher is not None
        try:
            url = self.publisher.publish(task, result, repo)
        except GitHubError as exc:
            error = self.redactor.text(str(exc))
            self.queue.publish_event(task.id, error=error)
            self.summary.unpublished[task.id] = error
            self.emit("unpublished", task.id, result.attempt, message=error)
            return
        self.queue.publish_event(task.id, pr_url=url)
        self.emit("published", task.id, result.attempt, message=url or "")

    def publish_interrupted(self, only: frozenset[str] = frozenset()) -> None:
        """Publish finished tasks whose publishing a killed coordinator never started or recorded."""
        if self.publisher is None:
            return
        pending: dict[str, None] = {}  # task ids in the order they finished
        for event in self.queue.events():
            if event.get("type") == "finished":
                pending[event["task"]] = None
            elif event.get("type") in ("published", "unpublished", "requeued"):
                pending.pop(event.get("task", ""), None)
        states = self.queue.refresh()
        for task_id in pending:
            state = states.get(task_id)
            if state is None or state.status != TaskStatus.FINISHED or (only and task_id not in only):
                continue
            task, result = state.task, state.result
            if task is not None and result is not None and result.head_commit:
                self._publish(task, result, landing_repo(self.root, task))

    def fail(self, claim: Claim, reason: str, result: TaskResult | None = None) -> None:
        reason = self.redactor.text(reason)
        record = result.for_queue() if result else None
        final = self.queue.fail(claim.task_id, claim.attempt, reason, result=record)
        if final:
            self.summary.failed[claim.task_id] = self.queue.states[claim.task_id].reason
        self.emit("failed", claim.task_id, claim.attempt, message=reason, result=result, final=final)

    def _infra(self, run: Running, reason: str, result: TaskResult | None = None) -> None:
        reason = self.redactor.text(reason)
        key = (run.claim.task_id, run.claim.attempt)
        if result is not None and (wait := self.rate_wait(key, reason)) is not None:
            self._rate_limited(run, reason, wait, result)
            return
        state = self.queue.refresh()[run.claim.task_id]
        backoff = min(BACKOFF_CAP_S, self.config.backoff_seconds * 2**state.infra)
        record = result.for_queue() if result else None
        final = self.queue.release(
            run.claim.task_id, run.claim.attempt, reason, infra=True, backoff_s=backoff, result=record
        )
        if final:
            self.summary.failed[run.claim.task_id] = self.queue.states[run.claim.task_id].reason
        event = "failed" if final else "requeued"
        self.emit(event, run.task.id, run.claim.attempt, message=reason, result=result, final=final)

    def _rate_limited(self, run: Running, reason: str, wait: float, result: TaskResult) -> None:
        """Give back an attempt whose model call failed on a rate limit: no attempt spent, not counted as
        an infrastructure retry; the task waits out the provider's retry-after before it runs again."""
        reason = f"{reason}; rate limited: runs again in {wait:.0f} s, no attempt spent"
        self.queue.release(
            run.task.id, run.claim.attempt, reason, infra=False, backoff_s=wait, result=result.for_queue()
        )
        self.emit("requeued", run.task.id, run.claim.attempt, message=reason, result=result, final=False)

    def _machine_full(self, run: Running, result: TaskResult) -> None:
        """Give back an attempt its machine had no disk for: not the task's doing, so not even counted
        as an infrastructure retry (the executor pauses that machine)."""
        reason = self.redactor.text(result.reason)
        self.queue.release(run.task.id, run.claim.attempt, reason, infra=False, result=result.for_queue())
        self.emit("requeued", run.task.id, run.claim.attempt, message=reason, result=result, final=False)

    def _paused(self, run: Running, result: TaskResult) -> None:
        """Queue a paused attempt again, unspent, with what it spent; a pause nobody asked for is a failure
        (an agent without a sandbox could have written the pause file)."""
        key = (run.task.id, run.claim.attempt)
        if key not in self.pauses.asked:
            self.fail(run.claim, "the attempt stopped for a pause the coordinator did not ask for", result)
            return
        reason = f"paused at a model call, no attempt spent: {self.pauses.asked[key]}"
        self.queue.release(run.task.id, run.claim.attempt, reason, infra=False, result=result.for_queue())
        self.pauses.paused.add(run.task.id)
        self.emit("paused", run.task.id, run.claim.attempt, run.slot.name, message=reason, result=result)

    def _model_auth(self, run: Running, result: TaskResult) -> None:
        self.queue.release(
            run.task.id, run.claim.attempt, result.reason, infra=False, result=result.for_queue()
        )
        self.block_model(run.model, result.reason, run.task.id, run.claim.attempt)
        if is_model_free(run.claim.state.task):  # its ruff-only try left work for the model
            reason = f"ruff --fix left violations for the model; {self.blocked_models[run.model]}"
            self.holds.hold(run.task.id, reason, attempt=run.claim.attempt)

    def is_usable(self, model: str, task_id: str) -> bool:
        """Block a spec no attempt can call (no such model, no key here) before any attempt is spent."""
        if model in self.blocked_models:
            return False
        if model in self._usable_models:
            return True
        if problem := spec_problem(model):
            where = " (the default model: `model` under [tool.agent-runner] or AGENT_RUNNER_MODEL)"
            problem += where if model == self.config.model else ""
        if problem := problem or missing_key(model, self.config, os.environ):
            self.block_model(model, problem, task_id)
            return False
        self._usable_models.add(model)
        return True

    def block_model(self, model: str, reason: str, task_id: str, attempt: int | None = None) -> None:
        """Stop dispatching to `model` for the rest of the run, saying why once; its tasks stay queued."""
        if model in self.blocked_models:
            return
        self.blocked_models[model] = reason
        reason = reason if reason.startswith(model) else f"{model}: {reason}"
        message = f"{reason.rstrip('. ')}. Its tasks stay queued; fix that and run again."
        self.emit("model_blocked", task_id, attempt, message=message)

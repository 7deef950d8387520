"""The refresh's seams (refresher.py) made of the integration train's parts.

`TrainVerifier`: the train's step (`coordinator.train_step`) for one branch. git applies the accepted
result onto the new base here (a three-way merge with the branch's fork point as the base; nothing from the
result runs); a verify job runs the gates on a worker, in the attempt's sandbox (the gates run code the
agent wrote); its answer is re-checked like any landing before a branch moves.
`TrainRequeuer`: the train's `train_requeued` event (no attempt spent), with a note for the next attempt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent_runner.config.runner import RunnerConfig
from agent_runner.coordinator.landing import LandingRules
from agent_runner.coordinator.train import MAX_REASON_CHARS, NOTE_MARK, fenced_reason
from agent_runner.coordinator.train_step import Pick, VerifyContext, apply_and_verify
from agent_runner.core.errors import ExecutorError, QueueError
from agent_runner.core.protocols import Executor
from agent_runner.core.result import TaskResult
from agent_runner.core.task import Task
from agent_runner.core.train import StepOutcome, TrainStep
from agent_runner.github.push import git
from agent_runner.queue.state import EventType
from agent_runner.queue.store import Queue

REFRESH_NOTE = (
    "## Why this task runs again\n\n"
    "Your previous result was accepted and its pull request opened, but `{base}` has moved since and the "
    "change no longer applies to it:\n\n{reason}\n\nThis attempt starts from the new `{base}`. Make the "
    "change again on top of it."
)


class TrainVerifier:
    """Implements refresh.Verifier with the train's apply-and-verify on `executor`'s first slot."""

    def __init__(self, executor: Executor, config: RunnerConfig, rules: LandingRules) -> None:
        self.executor, self.config, self.rules = executor, config, rules

    def verify(self, repo: Path, task: Task, result: TaskResult, *, head: str, onto: str) -> TrainStep:
        """Apply the branch at `head` onto `onto` and verify it on a worker; return the step it makes."""
        fork = git(repo, "merge-base", onto, head, action="find the branch's fork point").strip()
        pick = Pick(task, result.model_copy(update={"base_commit": fork, "head_commit": head}))
        prepared, verdict = apply_and_verify(self._context(repo, task), onto, [pick])
        step = TrainStep(task_id=task.id, attempt=result.attempt, branch=task.branch_name,
                         outcome=StepOutcome.RED)  # fmt: skip
        if prepared.conflicts:
            files = ", ".join(prepared.conflicts[0].files[:20]) or "(no file named)"
            return step.model_copy(update={"outcome": StepOutcome.CONFLICT, "reason": f"conflict in {files}"})
        if verdict is None or not verdict.is_green:
            gates, reason = (verdict.gates, verdict.reason) if verdict else ([], "nothing applied")
            return step.model_copy(update={"gates": gates, "reason": reason})
        return step.model_copy(
            update={"outcome": StepOutcome.LANDED, "commit": prepared.head, "gates": verdict.gates}
        )

    def _context(self, repo: Path, task: Task) -> VerifyContext:
        slots = self.executor.slots()
        if not slots:
            raise ExecutorError("no worker can take the verify job now (no machine reachable); retry later")
        # base_name under agent/: the verify job runs the repo's setup sandboxed too
        return VerifyContext(self.executor, slots[0], repo, task.branch_name, self.config, self.rules)


class TrainRequeuer:
    """Implements refresh.Requeuer with the train's `train_requeued` event: the task is queued again, not
    counted as a spent attempt, its instructions ending with why (its task file stays as it is)."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def requeue(self, step: TrainStep, *, base: str, onto: str, reason: str) -> None:
        """Append the event (QueueError when the task is no longer the accepted one refresh read)."""
        state = self.queue.refresh().get(step.task_id)
        if state is None or state.task is None:
            raise QueueError(f"{step.task_id} is not in {self.queue.path}; nothing to queue again")
        reason = reason[:MAX_REASON_CHARS]
        event = {
            "type": EventType.TRAIN_REQUEUED, "task": step.task_id, "attempt": state.attempt,
            "train": f"refresh:{base}@{onto}", "outcome": step.outcome.value, "reason": reason,
            "def": refreshed_definition(state.task, base, reason), "file": state.file, "digest": state.digest,
            "onto": onto,
        }  # fmt: skip
        self.queue.train_step(event)


def refreshed_definition(task: Task, base: str, reason: str) -> dict[str, Any]:
    """Return the task's definition for its next attempt: the same, with a note saying why it runs again."""
    note = REFRESH_NOTE.format(base=base, reason=fenced_reason(reason))
    data = task.model_dump(mode="json", exclude_defaults=True)
    instructions = task.instructions.split(NOTE_MARK)[0] + NOTE_MARK + note
    return {**data, "id": task.id, "kind": task.kind.value, "instructions": instructions}

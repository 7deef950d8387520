"""The integration train as the queue records it: its steps, read back from `train_*` events.

`land` builds its `TrainRun` from here, and so can anything that publishes or reports a train without
running it (GitHub, the report).
"""

from __future__ import annotations

from agent_runner.core.result import GateResult
from agent_runner.core.train import StepOutcome, TrainStep
from agent_runner.queue.state import EventType
from agent_runner.queue.store import Queue


def train_steps(queue: Queue, train_id: str) -> list[TrainStep]:
    """Return the steps of train `train_id` in the order they were taken, read from the queue's events.

    After `compact` (no events left), the landed ones come from the tasks' states, without gate records.
    """
    steps = _event_steps(queue, train_id)
    seen = {step.task_id for step in steps if step.outcome is StepOutcome.LANDED}
    for state in queue.states.values():
        if state.train == train_id and state.id not in seen:
            branch = _branch_of(queue, state.id)
            landed = TrainStep(
                task_id=state.id, attempt=state.attempt, branch=branch, outcome=StepOutcome.LANDED,
                commit=state.train_commit,
            )  # fmt: skip
            steps.append(landed)
    return steps


_TAKEN_OUT = {o.value: o for o in (StepOutcome.CONFLICT, StepOutcome.RED)}


def _event_steps(queue: Queue, train_id: str) -> list[TrainStep]:
    steps = []
    for event in queue.events():
        kind = event.get("type")
        if kind not in (EventType.TRAIN_LANDED, EventType.TRAIN_REQUEUED) or event.get("train") != train_id:
            continue
        landed = kind == EventType.TRAIN_LANDED
        outcome = StepOutcome.LANDED if landed else _TAKEN_OUT.get(str(event.get("outcome")))
        if outcome is None:  # a hand-written line with an outcome no train writes
            continue
        gates = [GateResult.model_validate(g) for g in event.get("gates") or [] if isinstance(g, dict)]
        commit, reason = event.get("commit"), str(event.get("reason", ""))
        branch = _branch_of(queue, event["task"])
        step = TrainStep(
            task_id=event["task"], attempt=event["attempt"], branch=branch, outcome=outcome, commit=commit,
            reason=reason, gates=gates,
        )  # fmt: skip
        steps.append(step)
    return steps


def _branch_of(queue: Queue, task_id: str) -> str:
    task = queue.states[task_id].task
    return task.branch_name if task is not None else f"agent/{task_id}"

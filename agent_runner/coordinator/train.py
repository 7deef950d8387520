"""The integration train: accepted, unmerged results applied in priority order onto one integration branch.

For each repo, the train starts at the base branch's tip (or goes on where the last train on that tip
stopped) and takes the accepted results not yet in the base, highest priority first, `batch` at a time:
git applies them (train_step.py), a worker runs the test and lint gates on the combination, the
coordinator re-checks the answer, and the integration branch moves. A result that conflicts, or is red
only in combination, is taken out and queued again as a new attempt on the integration branch, told why;
the task did its part, so no attempt is spent. A red batch is bisected: halves are verified in turn, so a
batch of k with one bad result costs about 2 log2 k gate runs more, and k green results cost one.

Every step is a queue event (`train_landed`, `train_requeued`) appended before the branch moves: a train
killed at any point goes on from its events when run again, and never lands a result twice.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_runner.config.runner import RunnerConfig
from agent_runner.coordinator.landing import LandingRules, landing_repo
from agent_runner.coordinator.train_log import train_steps
from agent_runner.coordinator.train_step import Pick, Prepared, Verdict, VerifyContext, apply_and_verify
from agent_runner.core.errors import ExecutorError, GitError, StaleAttemptError
from agent_runner.core.protocols import Executor
from agent_runner.core.redact import Redactor, runner_redactor
from agent_runner.core.result import GateResult
from agent_runner.core.task import Task, TaskStatus
from agent_runner.core.train import StepOutcome, TrainRun, TrainStep
from agent_runner.gates.kinds import get_job_kind
from agent_runner.gates.report import render_report
from agent_runner.queue.state import EventType, TaskState
from agent_runner.queue.store import Queue
from agent_runner.repo import bundles, git

MAX_REASON_CHARS = 4000
NOTE_MARK = "\n\n<!-- agent-runner: train note -->\n"
NOTE = (
    "## Why this task runs again\n\n"
    "Your previous result passed its gates on its own, but it could not join the integration branch "
    "`{branch}`:\n\n{reason}\n\nThis attempt starts from `{branch}`, with the results landed before yours in "
    "it. Make the change again on top of them."
)
log = logging.getLogger(__name__)
OnStep = Callable[[TrainStep], None]


@dataclass
class TrainState:
    """Where one repo's train stands: its id, base and the integration head so far."""

    repo: Path
    base_name: str
    base_tip: str
    branch: str
    head: str
    default_name: str  # the repo's default branch: the base of a task that names none
    steps: list[TrainStep] = field(default_factory=list)  # of this call

    @property
    def train_id(self) -> str:
        """A train is its branch on one base commit: a moved base starts a new train."""
        return f"{self.branch}@{self.base_tip}"


def land(
    queue: Queue, executor: Executor, *, config: RunnerConfig, root: Path, on_step: OnStep | None = None
) -> list[TrainRun]:
    """Run the train of every repo holding accepted, unmerged results (and of the root's); return them."""
    with queue.coordinator():
        states = queue.refresh()
        repos = {root: None}
        for state in states.values():
            if _is_finished(state) and state.task is not None:
                repos.setdefault(landing_repo(root, state.task), None)
        return [
            Train(queue, executor, config=config, root=root, repo=repo, on_step=on_step).run()
            for repo in repos
        ]


class Train:
    """One repo's train: its state, the candidates, and the batches."""

    def __init__(
        self,
        queue: Queue,
        executor: Executor,
        *,
        config: RunnerConfig,
        root: Path,
        repo: Path,
        on_step: OnStep | None = None,
    ) -> None:
        self.queue, self.config, self.root = queue, config, root
        self.settings = config.train
        self.on_step = on_step or (lambda step: None)
        self.redactor: Redactor = runner_redactor(config, os.environ)
        self.state = self._start(repo)
        slots = executor.slots()
        if not slots:
            raise ExecutorError("no worker is available to verify the train; check `run-agents machines`")
        rules = LandingRules.of(config)
        self.ctx = VerifyContext(executor, slots[0], repo, self.settings.branch, config, rules)

    def run(self) -> TrainRun:
        """Land every candidate (or take it out); return the train with all its steps so far."""
        picks = self._candidates(self.queue.refresh())
        size = self.settings.batch
        for start in range(0, len(picks), size):
            self._land_batch(picks[start : start + size])
        return self.train_run()

    # -- where the train starts ---------------------------------------------------------------------------
    def _start(self, repo: Path) -> TrainState:
        default = _default_branch(repo)
        base_name = self.settings.base or default
        tip = git.resolve_base(repo, base_name)
        state = TrainState(repo, base_name, tip, self.settings.branch, tip, default)
        state.head = self._last_head(repo, tip, state.train_id) or tip
        bundles.move_branch(repo, state.branch, state.head)  # where its recorded steps say it is
        return state

    def _last_head(self, repo: Path, tip: str, train_id: str) -> str | None:
        """The train's latest landed commit, as the queue's state has it (None: nothing landed yet).

        Its commits are one line of history on the base tip: the latest has the most commits since the tip.
        """
        landed = [s for s in self.queue.refresh().values() if s.train == train_id and s.train_commit]
        if lost := [s.id for s in landed if not git.has_commit(repo, s.train_commit or "")]:
            raise GitError(
                f"the train on {self.settings.branch} recorded commits that are no longer in {repo} (removed "
                f"by `git gc` after a crash?) for {', '.join(lost)}; `run-agents requeue {' '.join(lost)}` "
                "runs them again, then `run-agents land`"
            )
        commits = [s.train_commit for s in landed if s.train_commit]
        return max(
            commits, key=lambda c: int(git.run_git(repo, "rev-list", "--count", f"{tip}..{c}")), default=None
        )

    # -- which results ------------------------------------------------------------------------------------
    def _candidates(self, states: dict[str, TaskState]) -> list[Pick]:
        """Accepted results not yet in the base nor in this train, highest priority first."""
        ordered = sorted(states.values(), key=lambda s: (-s.priority, s.seq))
        return [pick for state in ordered if (pick := self._pick(state)) is not None]

    def _pick(self, state: TaskState) -> Pick | None:
        task, result = state.task, state.result
        if not _is_finished(state) or state.train == self.state.train_id or task is None or result is None:
            return None
        head, parent = result.head_commit, result.base_commit
        if not get_job_kind(task.kind).commits or not head or not parent or head == parent:
            return None
        if landing_repo(self.root, task) != self.state.repo or not self._is_on_base(task):
            return None
        if task.branch_name == self.state.branch:  # a task named like the integration branch: never mixed
            log.warning("train: %s works on %s itself; it is not landed", task.id, task.branch_name)
            return None
        merged = [c for c in (head, state.train_commit) if c and self._in_base(c)]
        if merged or not git.has_commit(self.state.repo, head):
            return None
        return Pick(task, result)

    def _is_on_base(self, task: Task) -> bool:
        return (task.base or self.state.default_name) in (self.state.base_name, self.state.branch)

    def _in_base(self, commit: str) -> bool:
        try:
            git.run_git(self.state.repo, "merge-base", "--is-ancestor", commit, self.state.base_tip)
        except GitError:
            return False
        return True

    # -- batches ------------------------------------------------------------------------------------------
    def _land_batch(self, picks: list[Pick]) -> None:
        """Apply and verify `picks` on the head; land them when green, else bisect down to the red one."""
        if not picks:
            return
        prepared, verdict = apply_and_verify(self.ctx, self.state.head, picks)
        verdict = self._masked(verdict)
        for conflict in prepared.conflicts:
            self._take_out(conflict.pick, StepOutcome.CONFLICT, conflict.reason, [])
        applied = [a.pick for a in prepared.applied]
        if verdict is None:
            return
        if verdict.is_green:
            self._land(prepared, verdict)
        elif len(applied) == 1:
            self._take_out(applied[0], StepOutcome.RED, _red_reason(verdict), verdict.gates)
        else:
            middle = len(applied) // 2
            self._land_batch(applied[:middle])
            self._land_batch(applied[middle:])

    def _masked(self, verdict: Verdict | None) -> Verdict | None:
        """Mask known secrets in a worker's verdict (its gate records hold test output) before it is kept."""
        if verdict is None:
            return None
        gates = [
            GateResult.model_validate(self.redactor.obj(g.model_dump(mode="json"))) for g in verdict.gates
        ]
        return Verdict(verdict.is_green, gates, self.redactor.text(verdict.reason))

    def _land(self, prepared: Prepared, verdict: Verdict) -> None:
        """Record each applied result as landed (in order), then move the integration branch."""
        gates = [gate.model_dump(mode="json", exclude_defaults=True) for gate in verdict.gates]
        for n, applied in enumerate(prepared.applied):
            pick = applied.pick
            event = self._event(EventType.TRAIN_LANDED, pick, commit=applied.commit, onto=applied.parent)
            try:
                self.queue.train_step({**event, "gates": gates})
            except StaleAttemptError as exc:  # the task moved meanwhile: the rest go again, without it
                log.info("train: %s", exc)
                self._move(applied.parent)
                self._land_batch([a.pick for a in prepared.applied[n + 1 :]])
                return
            self.state.head = applied.commit
            self._step(pick, StepOutcome.LANDED, commit=applied.commit, gates=verdict.gates)
        self._move(self.state.head)

    def _move(self, head: str) -> None:
        self.state.head = head
        bundles.move_branch(self.state.repo, self.state.branch, head)

    def _take_out(self, pick: Pick, outcome: StepOutcome, reason: str, gates: list[GateResult]) -> None:
        """Queue the task again: a new attempt on the integration branch, told why (no attempt spent)."""
        reason = self.redactor.text(reason)[:MAX_REASON_CHARS]
        definition = requeued_definition(pick.task, self.state.branch, reason)
        event = self._event(EventType.TRAIN_REQUEUED, pick, outcome=outcome.value, reason=reason)
        known = self.queue.states[pick.task.id]  # its task file, unchanged: intake keeps the new definition
        event.update({"def": definition, "file": known.file, "digest": known.digest, "onto": self.state.head})
        try:
            self.queue.train_step(event)
        except StaleAttemptError as exc:
            log.info("train: %s", exc)
            return
        self._step(pick, outcome, reason=reason, gates=gates)

    def _event(self, kind: EventType, pick: Pick, **fields: Any) -> dict[str, Any]:
        train = self.state.train_id
        return {"type": kind, "task": pick.task.id, "attempt": pick.result.attempt, "train": train, **fields}

    def _step(self, pick: Pick, outcome: StepOutcome, **fields: Any) -> None:
        step = TrainStep(
            task_id=pick.task.id, attempt=pick.result.attempt, branch=pick.task.branch_name, outcome=outcome,
            **fields,
        )  # fmt: skip
        self.state.steps.append(step)
        self.on_step(step)

    # -- what it did ----------------------------------------------------------------------------------
    def train_run(self) -> TrainRun:
        """Return the train as its events tell it: every step since it started, across interrupted calls."""
        state = self.state
        return TrainRun(
            train_id=state.train_id, branch=state.branch, base=state.base_name, base_commit=state.base_tip,
            head=state.head, steps=train_steps(self.queue, state.train_id),
        )  # fmt: skip


def requeued_definition(task: Task, branch: str, reason: str) -> dict[str, Any]:
    """Return the task's definition for its next attempt: based on `branch`, with a note saying why."""
    note = NOTE.format(branch=branch, reason=fenced_reason(reason))
    instructions = task.instructions.split(NOTE_MARK)[0] + NOTE_MARK + note
    data = task.model_dump(mode="json", exclude_defaults=True)
    return {**data, "id": task.id, "kind": task.kind.value, "base": branch, "instructions": instructions}


def fenced_reason(text: str) -> str:
    """Return agent text (test output) as a fence nothing in it closes, `<!` defused: in the next prompt
    and the PR body it quotes, it opens no HTML comment and its mentions and closing keywords do nothing."""
    text = text.replace("<!", "<\u200d!")
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return f"{fence}text\n{text.rstrip()}\n{fence}"


def _red_reason(verdict: Verdict) -> str:
    """Say which gates the result turned red, with the first telling line, then their full report."""
    failed = [gate for gate in verdict.gates if gate.verdict not in ("pass", "skip")]
    if not failed:
        return f"it turned the gates red with the earlier results in: {verdict.reason}"
    names = ", ".join(gate.name for gate in failed)
    return (
        f"it turns {names} red with the earlier results in: {_telling(failed[0])}\n{render_report(failed)!s}"
    )


def _telling(gate: GateResult) -> str:
    """The first offending item of a failed gate, else the last line of its details (a test's failure)."""
    lines = [line.strip() for line in gate.details.splitlines() if line.strip()]
    return (gate.offending or lines[-1:] or ["(no detail)"])[0][:300]


def _is_finished(state: TaskState) -> bool:
    return state.status in (TaskStatus.FINISHED, TaskStatus.UNPUBLISHED)


def _default_branch(repo: Path) -> str:
    try:
        return git.run_git(repo, "symbolic-ref", "--short", "HEAD")
    except GitError as exc:
        raise GitError(
            f"{repo} has no current branch to start the train from; set base under [tool.agent-runner.train]"
        ) from exc

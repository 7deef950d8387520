"""The refresh's verifier: the integration train's step (`coordinator.train_step`) for one branch.

git applies the accepted result onto the new base here (a three-way merge with the branch's fork point as
the base; nothing from the result runs); a verify job runs the gates on a worker, in the attempt's sandbox
(the gates run code the agent wrote); its answer is re-checked like any landing before a branch moves.
"""

from __future__ import annotations

from pathlib import Path

from agent_runner.config.runner import RunnerConfig
from agent_runner.coordinator.landing import LandingRules
from agent_runner.coordinator.train_step import Pick, VerifyContext, apply_and_verify
from agent_runner.core.errors import ExecutorError
from agent_runner.core.protocols import Executor
from agent_runner.core.result import TaskResult
from agent_runner.core.task import Task
from agent_runner.core.train import StepOutcome, TrainStep
from agent_runner.github.push import git


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

"""Tasks held back before any claim: a setup problem makes no checkout and spends no attempt.

A queued task is held, with the reason, when no attempt of it could do its work: its model names no model or
has no key here, or its source repo has no commit to branch off. A fix-lint task is the exception to the
first: `ruff check --fix` may finish it with no model call, so it runs, and is held only if it comes back
needing the model. Held tasks stay queued; the next run looks at them again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from agent_runner.config.runner import RunnerConfig
from agent_runner.core.task import Task, TaskKind, model_spec_for
from agent_runner.models import spec_problem
from agent_runner.models.keys import missing_key

HELD = "held"  # the event kind, the live table's status and the summary's heading


def model_problem(spec: str, config: RunnerConfig, environ: Mapping[str, str]) -> str | None:
    """Return why no attempt could call `spec` from here (no such model, key unset), or None."""
    return spec_problem(spec) or missing_key(spec, config, environ)


def held_here(task: Task | None, config: RunnerConfig, environ: Mapping[str, str]) -> str | None:
    """Return why a run started here would hold this queued task over its model (for `list`, `show`)."""
    if task is None or is_model_free(task):
        return None
    return model_problem(model_spec_for(task, override=None, default=config.model), config, environ)


def is_model_free(task: Task | None) -> bool:
    """Return whether an attempt of `task` may finish without a model: fix-lint's `ruff --fix` pre-step."""
    return task is not None and task.kind == TaskKind.FIX_LINT


class Holds:
    """The tasks held in one run, each reported once per reason through `emit`."""

    def __init__(self, emit: Callable[..., None]) -> None:
        self.reasons: dict[str, str] = {}
        self._tried: set[str] = set()  # came back needing the model: held for the rest of the run
        self._emit = emit

    def hold(self, task_id: str, reason: str, *, attempt: int | None = None) -> None:
        """Hold `task_id` for `reason` (reported when new); with the `attempt` that ran without a model
        and came back needing one, for the rest of the run."""
        if attempt is not None:
            self._tried.add(task_id)
        if self.reasons.get(task_id) != reason:
            self.reasons[task_id] = reason
            self._emit(HELD, task_id, attempt, message=reason)

    def is_tried(self, task_id: str) -> bool:
        """Whether the task ran without a model and came back needing one."""
        return task_id in self._tried

    def lift(self, task_id: str) -> None:
        """Forget a hold (the task starts: its problem went away)."""
        self.reasons.pop(task_id, None)

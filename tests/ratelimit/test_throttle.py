"""The scheduler's gate: a throttled provider holds only its own tasks."""

from __future__ import annotations

from agent_runner.config.runner import RunnerConfig
from agent_runner.coordinator.throttle import Throttle
from agent_runner.core.task import Task, TaskKind
from agent_runner.models.ratelimit import RateSignal

SECRETS = {"ANTHROPIC_API_KEY": "key-a"}


def throttled() -> tuple[Throttle, list[tuple[str, str]]]:
    """A Throttle whose anthropic pool got a 429 asking for 60 s (reported by a running attempt)."""
    said: list[tuple[str, str]] = []
    throttle = Throttle(
        RunnerConfig(), secrets=SECRETS, emit=lambda kind, message: said.append((kind, message))
    )
    pool = throttle.pool("anthropic:claude-x")
    throttle.limits.running({("busy", 1): pool})
    throttle._report(("busy", 1), RateSignal(provider="anthropic", status=429, retry_after_s=60))
    return throttle, said


def test_a_model_free_task_and_other_providers_run_while_one_is_throttled() -> None:
    """fix-lint (model-free), a scripted model and an OpenAI model start; an Anthropic task waits."""
    throttle, _ = throttled()
    lint = Task(id="lint", kind=TaskKind.FIX_LINT)
    change = Task(id="change", kind=TaskKind.CHANGE)
    assert throttle.admits(lint, "anthropic:claude-x", {})
    assert throttle.admits(change, "scripted:/tmp/s.yaml", {})
    assert throttle.admits(change, "openai:gpt-x", {})
    assert not throttle.admits(change, "anthropic:claude-x", {})


def test_reports_become_events_on_the_schedulers_tick() -> None:
    """A report from an executor thread is queued; the tick emits `throttled` with the pool and reason."""
    throttle, said = throttled()
    assert said == []  # nothing emitted from the reporting thread
    throttle.tick({})
    assert len(said) == 1 and said[0][0] == "throttled"
    assert said[0][1].startswith(throttle.pool("anthropic:claude-x") or "-")
    assert "429, retry after 60 s; no new attempt for 60 s" in said[0][1]

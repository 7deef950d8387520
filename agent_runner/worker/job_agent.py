"""Assembles the agent of one attempt: model, tools, sandbox, trajectory and prompts."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent_runner.config.prompts import render as render_prompt
from agent_runner.core.protocols import Sandbox
from agent_runner.core.redact import Redactor
from agent_runner.core.task import BRANCH_PREFIX
from agent_runner.models import get_model
from agent_runner.repo import git
from agent_runner.tools import make_tools
from agent_runner.tools.shell import tool_env
from agent_runner.worker.agent import Agent, AgentConfig
from agent_runner.worker.attempt import Attempt
from agent_runner.worker.deadline import attempt_minutes
from agent_runner.worker.limits import AttemptDeadline
from agent_runner.worker.pause import pause_reason
from agent_runner.worker.sandbox import SandboxPaths, get_sandbox
from agent_runner.worker.trajectory import TrajectoryWriter


def build_agent(
    attempt: Attempt,
    *,
    sandbox: Sandbox,
    home_env: dict[str, str],
    templates: dict[str, str],
    gate_names: list[str],
    started: float | None = None,
) -> Agent:
    """Return the Agent of `attempt`: its model, tools (allowlisted env, sandbox) and trajectory writer;
    `started` (time.time()), when the attempt began, bounds its model calls by `attempt_minutes` too."""
    task, config, paths, secrets = attempt.task, attempt.config, attempt.paths, attempt.request.secrets
    model = get_model(attempt.model_spec, config=config.models, cache_key=task.id, secrets=secrets)
    env = tool_env(home_env)
    tools = make_tools(paths.checkout, env=env, sandbox=sandbox)
    trajectory = TrajectoryWriter(paths.trajectory, redact=_redactor(secrets))
    system = render("system.md.j2", templates, prompt_vars(attempt, gate_names, {}))
    agent_config = AgentConfig(limits=attempt.limits, context_tokens=config.models.context_tokens)
    minutes = attempt_minutes(attempt.limits)
    ends = None if started is None else AttemptDeadline(ends_at=started + minutes * 60, minutes=minutes)
    pause = functools.partial(pause_reason, paths.run_dir)  # the coordinator's stop channel
    return Agent(
        model, tools, config=agent_config, system=system, trajectory=trajectory, attempt_deadline=ends,
        pause_check=pause,
    )  # fmt: skip


def prompt_vars(attempt: Attempt, gate_names: list[str], extra: dict[str, Any]) -> dict[str, Any]:
    """Return the variables of the attempt's prompt templates (with `extra`, the job kind's own)."""
    task = attempt.task
    return {
        "task": task, "kind": task.kind.value, "title": task.display_title,
        "instructions": task.instructions, "paths": task.paths, "limits": attempt.limits,
        "test_command": attempt.config.test, "gates": gate_names, "gate_names": gate_names,
        "checkout": str(attempt.paths.checkout), **extra,
    }  # fmt: skip


def sandbox_for(attempt: Attempt) -> Sandbox:
    """Return the sandbox for code the agent wrote or runs: its shell and the test gates."""
    task, config = attempt.task, attempt.config
    mode = task.sandbox or config.sandbox
    network = task.network if task.network is not None else config.network
    return get_sandbox(mode, checkout=attempt.paths.checkout, network=network, paths=sandbox_paths(attempt))


def setup_sandbox(attempt: Attempt) -> Sandbox | None:
    """The sandbox of setup when its base may hold code an agent wrote (an agent branch, as in a review's
    fix round): the attempt's sandbox with network (setup installs packages). None on a trusted base."""
    task, config = attempt.task, attempt.config
    base = attempt.request.base or task.base or ""
    if not config.setup or not base.startswith(BRANCH_PREFIX):
        return None
    mode = task.sandbox or config.sandbox
    return get_sandbox(mode, checkout=attempt.paths.checkout, network=True, paths=sandbox_paths(attempt))


def sandbox_paths(attempt: Attempt) -> SandboxPaths:
    """Return the attempt's private HOME and the folders its sandbox hides: state, source repo, caches."""
    repo = attempt.request.repo
    return SandboxPaths(
        private_home=attempt.paths.home,
        state_dir=attempt.workdir,
        source_repo=Path(repo).resolve() if git.is_local(repo) else None,
        runner_home=git.home_dir(),
        borrowed_objects=git.runner_git_dir(attempt.paths.checkout) / "objects",
    )


def _redactor(secrets: dict[str, str]) -> Callable[[str], str]:
    return Redactor(secrets.values()).text


def render(name: str, templates: dict[str, str], variables: dict[str, Any]) -> str:
    """Render prompt template `name` (the project's templates, read before the agent ran, then built-ins)."""
    return render_prompt(name, templates=templates, **variables)

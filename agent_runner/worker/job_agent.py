"""Assembles the agent of one attempt: model, tools, sandbox, trajectory and prompts (the heavy parts
imported lazily; the sandbox and redaction are not optional, so a broken import of them is an error)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_runner.core.protocols import Sandbox
from agent_runner.core.redact import Redactor
from agent_runner.repo import git
from agent_runner.worker.sandbox import SandboxPaths, get_sandbox

if TYPE_CHECKING:
    from agent_runner.worker.job import Job


def build_agent(job: Job, *, gate_names: list[str]) -> Any:
    """Return an Agent for `job` with its model, tools (allowlisted env, sandbox) and trajectory writer."""
    from agent_runner.models import get_model
    from agent_runner.tools import make_tools
    from agent_runner.tools.shell import tool_env
    from agent_runner.worker.agent import Agent, AgentConfig
    from agent_runner.worker.trajectory import TrajectoryWriter

    task, config, paths = job.task, job.config, job.paths
    model = get_model(job.model_spec, config=config.models, cache_key=task.id, secrets=job.request.secrets)
    env = tool_env(job.home_env)
    tools = make_tools(paths.checkout, env=env, sandbox=job.sandbox())
    trajectory = TrajectoryWriter(paths.trajectory, redact=_redactor(job.request.secrets))
    variables = job._prompt_vars(gate_names, {})
    system = render("system.md.j2", job.templates, variables)
    agent_config = AgentConfig(limits=job.limits, context_tokens=config.models.context_tokens)
    return Agent(model, tools, config=agent_config, system=system, trajectory=trajectory)


def sandbox_for(job: Job) -> Sandbox:
    """Return the sandbox for code the agent wrote or runs: its shell and the test gates."""
    mode = job.task.sandbox or job.config.sandbox
    network = job.task.network if job.task.network is not None else job.config.network
    return get_sandbox(mode, checkout=job.paths.checkout, network=network, paths=sandbox_paths(job))


def sandbox_paths(job: Job) -> SandboxPaths:
    """Return the attempt's private HOME and the folders its sandbox hides: state, source repo, caches."""
    repo = job.request.repo
    return SandboxPaths(
        private_home=job.paths.home,
        state_dir=job.workdir,
        source_repo=Path(repo).resolve() if git.is_local(repo) else None,
        runner_home=git.home_dir(),
        borrowed_objects=git.runner_git_dir(job.paths.checkout) / "objects",
    )


def _redactor(secrets: dict[str, str]) -> Callable[[str], str]:
    return Redactor(secrets.values()).text


def render(name: str, templates: dict[str, str], variables: dict[str, Any]) -> str:
    """Render prompt template `name` (the project's templates, read before the agent ran, then built-ins)."""
    from agent_runner.config.prompts import render as render_prompt

    return render_prompt(name, templates=templates, **variables)

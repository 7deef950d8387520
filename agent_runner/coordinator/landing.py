"""Where a task's work comes from and lands: its source repo, and the result bundle brought back into it.

A result is untrusted input (it comes from a worker, another machine, an Actions artifact): before a branch
moves, `check_landing` re-checks what needs no code to run. The commit must be one commit on the base,
the base a commit of the task's base branch, the gate records those of the task's kind, all passed, and
its diff must pass the diff policy, with every secret the coordinator knows refused by value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from agent_runner.config.runner import RunnerConfig, gate_settings
from agent_runner.core.errors import BundleRejectedError, GitError
from agent_runner.core.gate_settings import GateSettings
from agent_runner.core.redact import known_secrets
from agent_runner.core.result import GateVerdict, TaskResult
from agent_runner.core.task import Task
from agent_runner.gates.diff import blocking, policy_findings
from agent_runner.gates.kinds import get_job_kind
from agent_runner.gates.workdiff import commit_diff
from agent_runner.queue.sources import source_of
from agent_runner.repo import bundles, git
from agent_runner.repo.layout import AttemptPaths


def source_repo(root: Path, task: Task) -> str:
    """Return the task's source repo: the repo holding tasks/, a path relative to it, or a URL."""
    return source_of(root, task.repo)


def landing_repo(root: Path, task: Task) -> Path:
    """Return the repo a task's branch lands in: the local source repo, or the local cache of a URL."""
    source = source_repo(root, task)
    return Path(source) if git.is_local(source) else git.ensure_cache(source)


@dataclass(frozen=True)
class LandingRules:
    """What a result's diff is held to when it lands: the runner's gate settings and the secrets it knows."""

    settings: GateSettings
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def of(cls, config: RunnerConfig) -> LandingRules:
        """Return the rules of `config`, with the secrets of this process's environment."""
        return cls(gate_settings(config), tuple(known_secrets(config, os.environ).values()))


@dataclass(frozen=True)
class Landing:
    """A result's commits, already in the repo they land in; only the branch is left to move."""

    repo: Path
    branch: str
    head: str


def import_result(
    root: Path,
    state_dir: Path,
    task: Task,
    result: TaskResult,
    *,
    rules: LandingRules,
    base: str | None = None,
) -> Landing | None:
    """Bring the result bundle's commits into the source repo (URL repos: its local cache); move no ref.

    The commits are checked (`check_landing`) against `base`, the commit the request named, if any. Any
    thread may do this; the coordinator moves the branch once it knows the attempt is still live.
    Returns None when the attempt committed nothing.
    """
    repo = landing_repo(root, task)
    bundle = Path(result.bundle_path) if result.bundle_path else None
    if result.bundle_b64:
        bundle = bundles.write_b64(
            result.bundle_b64, AttemptPaths.under(state_dir, task.id, result.attempt).bundle
        )
    if bundle is None:
        return None
    branch = task.branch_name  # the task's own: never one a result names
    landing = Landing(repo, branch, bundles.import_bundle(repo, bundle, branch))
    check_landing(landing, task, result, rules=rules, base=base)
    return landing


def check_landing(
    landing: Landing, task: Task, result: TaskResult, *, rules: LandingRules, base: str | None = None
) -> None:
    """Raise BundleRejectedError unless the imported head may land for `task` (see the module docstring)."""
    problem = (
        _gate_problem(task, result)
        or _commit_problem(landing, task, result, base)
        or _policy_problem(landing, task, str(result.base_commit), rules)
    )
    if problem:
        raise BundleRejectedError(f"the result of {task.id} cannot land: {problem}")


def _policy_problem(landing: Landing, task: Task, base: str, rules: LandingRules) -> str | None:
    """Say what the diff policy refuses in the commit (None: nothing), as the gate would have."""
    diff = commit_diff(landing.repo, base, landing.head)
    found = policy_findings(
        diff, repo=landing.repo, task=task, settings=rules.settings, secrets=rules.secrets, head=landing.head
    )
    refused = blocking(found, task, rules.settings)
    return f"the diff policy refuses it: {'; '.join(map(str, refused[:5]))}" if refused else None


def _gate_problem(task: Task, result: TaskResult) -> str | None:
    """Say what is wrong with the result's gate records for the task's kind (None: nothing)."""
    recorded = {gate.name: gate.verdict for gate in result.gates}
    missing = [name for name in get_job_kind(task.kind).gate_names if name not in recorded]
    if missing:
        return f"no record of the gate(s) {', '.join(missing)} that a {task.kind} task must pass"
    failed = [
        name for name, verdict in recorded.items() if verdict not in (GateVerdict.PASS, GateVerdict.SKIP)
    ]
    return f"gate(s) {', '.join(failed)} did not pass" if failed else None


def _commit_problem(landing: Landing, task: Task, result: TaskResult, base: str | None) -> str | None:
    """Say why the head is not one commit on a base of the task's base branch (None: it is)."""
    claimed = result.base_commit
    if base is not None and claimed != base:
        return f"it was made on {claimed or 'no base'}, not on the requested base {base}"
    parents = git.run_git(landing.repo, "rev-list", "--parents", "-n1", landing.head).split()[1:]
    if parents != [claimed]:
        return f"its commit has parent(s) {' '.join(parents) or 'none'}, not just its base {claimed}"
    if result.head_commit not in (None, landing.head):
        return f"the result names head {result.head_commit}, its bundle {landing.head}"
    return None if base is not None else _base_problem(landing.repo, task, str(claimed))


def _base_problem(repo: Path, task: Task, base: str) -> str | None:
    """Say why `base` is no commit of the task's base branch in `repo` (None: it is one)."""
    tip = git.resolve_base(repo, task.base)
    try:
        git.run_git(repo, "merge-base", "--is-ancestor", base, tip)
    except GitError:
        return f"its base {base} is not a commit of the base branch ({task.base or 'the default branch'})"
    return None


def land(landing: Landing) -> None:
    """Point the task branch (agent/<id>) at the imported commits."""
    bundles.move_branch(landing.repo, landing.branch, landing.head)

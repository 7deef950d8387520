"""GitHub Actions glue: the task matrix, the queue file on the state branch, and ingesting downloaded results.

The three jobs of `run-agents.yml`: `plan_matrix` (job plan), `run-agents exec` (job work, one per task), then
`ingest` (job publish): fetch each result's bundle, record the attempt in the queue, publish, and commit
the queue file to the state branch (never to main).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agent_runner.config.runner import RunnerConfig
from agent_runner.coordinator.landing import Landing, LandingRules, check_landing, land
from agent_runner.coordinator.planning import plan, preview_states
from agent_runner.core.errors import BundleRejectedError, GitError, RunnerError
from agent_runner.core.protocols import Publisher, Slot
from agent_runner.core.redact import Redactor, redact_file, runner_redactor
from agent_runner.core.result import Outcome, TaskResult
from agent_runner.core.task import Task, TaskStatus, load_task_dir
from agent_runner.github.push import commit_file, fetch_file
from agent_runner.queue.intake import open_queue, relative, sync_tasks
from agent_runner.queue.store import Queue
from agent_runner.repo import bundles

MAX_MATRIX = 256  # GitHub's limit of jobs per matrix


def plan_matrix(
    root: Path, config: RunnerConfig, *, only: frozenset[str] = frozenset(), limit: int = MAX_MATRIX
) -> dict[str, Any]:
    """Return `{"include": [{id, file, attempt}]}`: tasks that may start now (overlapping paths wait)."""
    states, _invalid = preview_states(root, config, open_queue(root, config))
    slots = [Slot(name=f"actions-{i}", machine="actions") for i in range(limit)]
    rows = plan(states, slots, config=config, only=only, root=root)
    files = load_task_dir(config.path(root, "tasks_dir")).files
    include = []
    for row in rows:
        if row.worker is None or row.status != TaskStatus.QUEUED or row.task not in files:
            continue
        include.append(
            {"id": row.task, "file": relative(root, files[row.task]), "attempt": states[row.task].attempt + 1}
        )
    return {"include": include}


def pull_state(root: Path, config: RunnerConfig, *, token: str | None) -> bool:
    """Replace the local queue file with the one on the state branch; return whether the branch had one."""
    text = fetch_file(
        root, remote=config.github.remote, branch=config.github.state_branch, path=config.queue, token=token
    )
    if text is None:
        return False
    path = config.path(root, "queue")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not text.startswith(path.read_text(encoding="utf-8")):
        shutil.copyfile(path, path.with_name(path.name + ".before-pull"))  # local events the branch lacks
    tmp = path.with_name(path.name + ".pulled")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return True


def push_state(root: Path, config: RunnerConfig, *, token: str | None, message: str) -> str:
    """Commit the local queue file to the state branch and push it; return the commit."""
    data = config.path(root, "queue").read_bytes()
    github = config.github
    return commit_file(
        root, remote=github.remote, branch=github.state_branch, path=config.queue, data=data, message=message,
        token=token,
    )  # fmt: skip


@dataclass(frozen=True)
class IngestRow:
    """What happened to one downloaded result."""

    task: str
    outcome: str
    status: str
    pr_url: str | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def result_files(folder: Path) -> list[Path]:
    """Return the result JSON files under `folder` (artifact downloads nest them in folders)."""
    return sorted(p for p in folder.rglob("*.json") if p.is_file())


def ingest(root: Path, config: RunnerConfig, folder: Path, *, publisher: Publisher | None) -> list[IngestRow]:
    """Record and publish every result in `folder`; a result delivered twice is not recorded twice."""
    queue = open_queue(root, config)
    sync_tasks(root, config, queue)
    rules, redactor = LandingRules.of(config), runner_redactor(config, os.environ)
    rows = []
    for path in result_files(folder):
        try:
            result = TaskResult.model_validate_json(path.read_bytes())
        except ValueError as exc:
            note = f"{path}: not a TaskResult ({exc.__class__.__name__})"
            rows.append(IngestRow(path.stem, "unreadable", "skipped", note=note))
            continue
        result = _from_artifact(result, path, redactor)
        rows.append(ingest_one(root, queue, result, path, publisher=publisher, rules=rules))
    return rows


def _from_artifact(result: TaskResult, path: Path, redactor: Redactor) -> TaskResult:
    """Return an uploaded result as the coordinator may keep it: its secrets masked, and no path it names
    (its trajectory is the file uploaded beside it, or none)."""
    trajectory = path.with_name(f"{path.stem}.trajectory.jsonl")
    is_uploaded = trajectory.is_file() and not trajectory.is_symlink()
    if is_uploaded:
        redact_file(trajectory, redactor)
    paths = {
        "trajectory_path": str(trajectory) if is_uploaded else None,
        "bundle_path": None,
        "checkout_path": None,
    }
    return result.redacted(redactor).model_copy(update=paths)


def ingest_one(
    root: Path,
    queue: Queue,
    result: TaskResult,
    path: Path,
    *,
    publisher: Publisher | None,
    rules: LandingRules,
) -> IngestRow:
    """Fetch one result's bundle, record its attempt, and publish it when accepted."""
    state = queue.refresh().get(result.task_id)
    task = state.task if state is not None else None
    if state is None or task is None:
        return IngestRow(
            result.task_id, result.outcome, "skipped", note="no such task in tasks/ or the queue"
        )
    note = ""
    if result.outcome == Outcome.ACCEPTED:
        result = _landed(root, task, result, path, rules)
    if state.status == TaskStatus.QUEUED:
        _record(queue, result)
    else:
        note = f"already {state.status}: attempt not recorded again"
    state = queue.refresh()[result.task_id]
    publishable = state.status in (TaskStatus.FINISHED, TaskStatus.UNPUBLISHED) and result.head_commit
    if publishable and publisher is not None and not state.pr_url:
        note = _publish(root, queue, task, result, publisher) or note
        state = queue.refresh()[result.task_id]
    return IngestRow(task.id, result.outcome, state.status, state.pr_url, note or state.reason)


def _landed(root: Path, task: Task, result: TaskResult, path: Path, rules: LandingRules) -> TaskResult:
    """Land an accepted result's commits; return it as it now stands (rejected, or infra, on a problem)."""
    try:
        _fetch(root, task, result, path, rules)
    except BundleRejectedError as exc:
        return result.model_copy(update={"outcome": Outcome.REJECTED, "reason": str(exc)})
    except (GitError, OSError) as exc:
        return result.model_copy(update={"outcome": Outcome.INFRA, "reason": f"bundle unusable: {exc}"})
    return result


def _fetch(root: Path, task: Task, result: TaskResult, path: Path, rules: LandingRules) -> None:
    """Land an uploaded result's bundle as the task's branch, once `check_landing` passed it."""
    with tempfile.TemporaryDirectory() as tmp:
        bundle = _bundle_of(result, path, Path(tmp))
        if bundle is None and result.head_commit in (None, result.base_commit):
            return  # the attempt changed nothing: nothing lands
        if bundle is None:
            raise GitError(
                f"no bundle next to {path}: the result names a commit but brings none; put its bundle beside "
                f"it as {path.with_suffix('.bundle').name} or run `run-agents exec` with --inline-bundle"
            )
        landing = Landing(root, task.branch_name, bundles.import_bundle(root, bundle, task.branch_name))
        check_landing(landing, task, result, rules=rules)
        land(landing)


def _bundle_of(result: TaskResult, path: Path, tmp: Path) -> Path | None:
    """Return the result's bundle: inline, else the uploaded file beside the result (nowhere else)."""
    if result.bundle_b64:
        return bundles.write_b64(result.bundle_b64, tmp / "result.bundle")
    beside = path.with_suffix(".bundle")
    return beside if beside.is_file() and not beside.is_symlink() else None


def _record(queue: Queue, result: TaskResult) -> None:
    claim = queue.claim("github-actions", lease_s=600, accept=lambda s: s.id == result.task_id)
    if claim is None:
        return
    record = result.model_copy(update={"attempt": claim.attempt}).for_queue()
    if result.outcome == Outcome.ACCEPTED:
        queue.finish(result.task_id, claim.attempt, record)
    elif result.outcome == Outcome.REJECTED:
        queue.fail(result.task_id, claim.attempt, result.reason or "rejected", result=record)
    else:
        queue.release(result.task_id, claim.attempt, result.reason or str(result.outcome), infra=True)


def _publish(root: Path, queue: Queue, task: Task, result: TaskResult, publisher: Publisher) -> str:
    try:
        url = publisher.publish(task, result, root)
    except RunnerError as exc:  # GitHubError, GitError: the branch stays local, `publish ID` retries
        queue.publish_event(task.id, error=str(exc))
        return f"unpublished: {exc}"
    queue.publish_event(task.id, pr_url=url)
    return ""


class QueueTasks:
    """The tasks known here: the queue's definitions, then the task files (for reviews and fix rounds)."""

    def __init__(self, root: Path, config: RunnerConfig) -> None:
        self.states = open_queue(root, config).refresh()
        self.found = load_task_dir(config.path(root, "tasks_dir"))

    def get(self, task_id: str) -> Task | None:
        """Return the task with this id, or None."""
        state = self.states.get(task_id)
        if state is not None and state.task is not None:
            return state.task
        return self.found.tasks.get(task_id)

    def ids(self) -> set[str]:
        """Return every id in use."""
        return set(self.states) | set(self.found.tasks) | {bad.id for bad in self.found.invalid}

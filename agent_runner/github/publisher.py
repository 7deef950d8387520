"""GitHubPublisher: push agent/<task-id> and open or update its pull request; safe to repeat."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from agent_runner.core.errors import GitHubError
from agent_runner.core.redact import Redactor
from agent_runner.core.result import TaskResult
from agent_runner.core.task import BRANCH_PREFIX, Task
from agent_runner.github.api import GitHubConfig, GitHubRepo, connect, get_token
from agent_runner.github.body import render_body
from agent_runner.github.push import check_agent_branch, push_branch, remote_url, resolve
from agent_runner.github.records import MARKER, PullInfo


class GitHubPublisher:
    """Implements protocols.Publisher for GitHub."""

    def __init__(
        self,
        config: GitHubConfig | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        """`redactor` masks secrets in PR titles and bodies (default: `environ`'s secret variables)."""
        self.config = config or GitHubConfig()
        self.environ = dict(os.environ if environ is None else environ)
        self.redactor = redactor or Redactor.from_env(self.environ)

    def publish(self, task: Task, result: TaskResult, repo: Path) -> str | None:
        """Push the task's branch and open or update its PR; return the PR URL (None with `pr: false`)."""
        branch = task.branch_name
        if result.branch not in (None, branch):
            raise GitHubError(
                f"refusing to push '{result.branch}': a result of {task.id} may only push {branch}"
            )
        check_agent_branch(branch)
        wants_pr = task.pr is not False
        token = (
            get_token(self.environ)
            if wants_pr
            else self.environ.get("GITHUB_TOKEN") or self.environ.get("GH_TOKEN")
        )
        commit = self._commit(repo, branch, result)
        push_branch(repo, remote=self.config.remote, branch=branch, commit=commit, token=token)
        if not wants_pr:
            return None
        gh = connect(self.config, remote_url=remote_url(repo, self.config.remote), environ=self.environ)
        return self.upsert_pull(gh, task, result, branch).url

    def upsert_pull(self, gh: GitHubRepo, task: Task, result: TaskResult, branch: str) -> PullInfo:
        """Update the task's existing PR (found by marker, else by branch) or open one; then label it."""
        title = self.redactor.text(task.display_title)
        body = self.redactor.text(render_body(task, result, max_chars=self.config.body_max_chars))
        existing = self.find_pull(gh, task.id, branch)
        if existing is not None:
            # A follow-up task (a review fix) keeps the earlier tasks' markers, so each still finds this PR.
            earlier = [MARKER.format(task_id=i) for i in existing.task_ids if i != task.id]
            pull = gh.edit_pull(
                existing.number, title=title, body="\n".join([body.rstrip(), *earlier]) + "\n"
            )
        else:
            # A fix task starts from its agent branch; a new PR for it still targets the default branch.
            base = task.base if task.base and not task.base.startswith(BRANCH_PREFIX) else gh.default_branch
            pull = gh.create_pull(title=title, body=body, head=branch, base=base, draft=task.pr == "draft")
        labels = [*self.config.labels, task.kind.value, *task.labels]
        missing = [label for label in dict.fromkeys(labels) if label not in pull.labels]
        if missing:
            gh.add_labels(pull.number, missing)
        return pull

    def find_pull(self, gh: GitHubRepo, task_id: str, branch: str) -> PullInfo | None:
        """Return the task's PR: by hidden marker (survives a renamed branch), else the branch's open PR."""
        label = self.config.labels[0] if self.config.labels else None
        if label is not None:
            found = gh.pull_by_marker(task_id, label=label)
            if found is not None:
                return found
        open_pulls = gh.pulls_for_branch(branch)
        return open_pulls[0] if open_pulls else None

    def _commit(self, repo: Path, branch: str, result: TaskResult) -> str:
        """Return the exact commit of the result if present, else the local branch's commit."""
        for ref in (result.head_commit, f"refs/heads/{branch}"):
            commit = resolve(repo, ref) if ref else None
            if commit:
                return commit
        raise GitHubError(
            f"{repo} has neither commit {result.head_commit or '(none)'} nor branch {branch}; "
            "the result's bundle was not fetched (run-agents ingest or run again)"
        )

"""The only home of PyGithub: pull requests, reviews and comments as typed records; errors as GitHubError.

PyGithub is imported when a connection is made, never at import. Every PyGithub or `requests` exception is
translated once, in `_api`, into GitHubError with what happened and what to do next.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from agent_runner.config.github import GitHubConfig
from agent_runner.core.errors import GitHubError
from agent_runner.core.task import BRANCH_PREFIX
from agent_runner.github.records import (
    CommentInfo,
    FileDiff,
    IssueInfo,
    PullInfo,
    PullStatus,
    ReviewInfo,
    trailing_task_ids,
)

TOKEN_VARS = ("GITHUB_TOKEN", "GH_TOKEN")
MAX_ISSUES = 1_000  # issues one listing reads at most (10 pages)
PUBLIC_API = "https://api.github.com"


def parse_remote(url: str) -> str:
    """Return 'owner/name' from an https, ssh:// or scp-style git remote URL."""
    text = url.strip()
    match = re.match(r"^(?:[a-z+]+://)?(?:[^@/]+@)?[^/:]+(?::\d+)?[/:](.+?)(?:\.git)?/?$", text)
    parts = match.group(1).split("/") if match else []
    if len(parts) < 2 or not all(parts[-2:]):
        raise GitHubError(
            f"cannot tell owner/repo from the remote URL '{url}'; set [tool.agent-runner.github] repository"
        )
    return f"{parts[-2]}/{parts[-1]}"


def get_token(environ: Mapping[str, str] | None = None) -> str:
    """Return the token from GITHUB_TOKEN or GH_TOKEN, or raise GitHubError saying how to set one."""
    env = os.environ if environ is None else environ
    for name in TOKEN_VARS:
        if env.get(name):
            return env[name]
    raise GitHubError(
        "no GitHub token: set GITHUB_TOKEN or GH_TOKEN (a token with contents and pull-requests write)"
    )


@contextmanager
def _api(action: str) -> Iterator[None]:
    """Translate PyGithub and requests exceptions into GitHubError."""
    # paid only when GitHub is called: not by a command starting up, nor by tests on the fake
    import github  # ~130-160 ms (PyGithub, requests included)
    import requests  # ~45-60 ms alone, loaded by then

    try:
        yield
    except github.BadCredentialsException as exc:
        raise GitHubError(f"{action}: the token was rejected (401); check GITHUB_TOKEN / GH_TOKEN") from exc
    except github.BadAttributeException as exc:  # a field of the wrong JSON type (a proxy, a broken server)
        raise GitHubError(
            f"{action}: GitHub answered a malformed record ({exc.actual_value!r:.60} where "
            f"{getattr(exc.expected_type, '__name__', exc.expected_type)} was expected); check api_url"
        ) from exc
    except github.GithubException as exc:
        message = (exc.data or {}).get("message", "") if isinstance(exc.data, dict) else str(exc.data)
        raise GitHubError(f"{action}: GitHub answered {exc.status}: {message}".rstrip(": ")) from exc
    except requests.RequestException as exc:
        raise GitHubError(
            f"{action}: cannot reach GitHub ({exc.__class__.__name__}); check api_url and network"
        ) from exc


def _review(raw: Any) -> ReviewInfo:
    return ReviewInfo(raw.id, raw.body or "", raw.state, raw.user.login if raw.user else "")


def _pull(raw: Any) -> PullInfo:
    return PullInfo(
        number=raw.number, url=raw.html_url, title=raw.title or "", body=raw.body or "", state=raw.state,
        draft=bool(raw.draft), merged=bool(raw.merged), head_ref=raw.head.ref, head_sha=raw.head.sha or "",
        base_ref=raw.base.ref, mergeable=raw.mergeable, mergeable_state=raw.mergeable_state or "",
        labels=tuple(label.name for label in raw.labels),
    )  # fmt: skip


class GitHubRepo:
    """One GitHub repository through PyGithub, returning typed records."""

    def __init__(self, full_name: str, *, token: str, config: GitHubConfig) -> None:
        import github  # ~130-160 ms, as in _api: paid when a repo is first connected

        self.full_name = full_name
        self.config = config
        auth = github.Auth.Token(token)
        self._gh = github.Github(
            auth=auth, base_url=(config.api_url or PUBLIC_API).rstrip("/"), timeout=int(config.timeout_s),
            retry=2,
            seconds_between_requests=config.request_interval_s,
            seconds_between_writes=config.write_interval_s,
        )  # fmt: skip
        with _api(f"open {full_name}"):
            self._repo = self._gh.get_repo(full_name)

    @property
    def default_branch(self) -> str:
        return str(self._repo.default_branch)

    def _raw_pull(self, number: int) -> Any:
        with _api(f"read PR #{number}"):
            return self._repo.get_pull(number)

    def pull(self, number: int) -> PullInfo:
        """Return one pull request."""
        return _pull(self._raw_pull(number))

    def pulls_for_branch(self, branch: str, *, state: str = "open") -> list[PullInfo]:
        """Return the PRs whose head is `branch` in this repo."""
        owner = self.full_name.split("/")[0]
        with _api("list PRs"):
            return [_pull(p) for p in self._repo.get_pulls(state=state, head=f"{owner}:{branch}")]

    def labeled_pulls(self, label: str, *, state: str = "open") -> list[PullInfo]:
        """Return the pull requests carrying `label` (newest first)."""
        with _api("list PRs"):
            issues = list(self._repo.get_issues(state=state, labels=[label]))
        numbers = sorted((i.number for i in issues if i.pull_request is not None), reverse=True)
        return [self.pull(number) for number in numbers]

    def labeled_issues(self, label: str) -> list[IssueInfo]:
        """Return the open issues (not pull requests) carrying `label`, oldest first, MAX_ISSUES at most."""
        with _api(f"list the issues labelled {label!r}"):
            found = itertools.islice(self._repo.get_issues(state="open", labels=[label]), MAX_ISSUES)
            issues = [
                IssueInfo(
                    i.number, i.html_url or "", i.title or "", i.body or "", tuple(x.name for x in i.labels)
                )
                for i in found
                if i.pull_request is None
            ]
        return sorted(issues, key=lambda issue: issue.number)

    def pull_by_marker(self, task_id: str, *, label: str) -> PullInfo | None:
        """Return the PR whose body ends with the task's hidden marker (open ones first), or None.

        Only the markers the runner appends at the end of the body count (not a copy in the agent's text),
        and the PR's head must be the agent branch of one of the tasks marked there.
        """
        with _api("list PRs"):
            issues = list(self._repo.get_issues(state="all", labels=[label]))
        candidates = [
            i.number
            for i in issues
            if i.pull_request is not None and task_id in trailing_task_ids(i.body or "")
        ]
        found = [
            pull
            for pull in map(self.pull, candidates)
            if task_id in pull.task_ids and pull.head_ref in {f"{BRANCH_PREFIX}{i}" for i in pull.task_ids}
        ]
        found.sort(key=lambda p: (p.state != "open", -p.number))
        return found[0] if found else None

    def create_pull(self, *, title: str, body: str, head: str, base: str, draft: bool) -> PullInfo:
        """Open a pull request."""
        with _api(f"open a PR for {head}"):
            return _pull(self._repo.create_pull(title=title, body=body, head=head, base=base, draft=draft))

    def edit_pull(self, number: int, *, title: str, body: str) -> PullInfo:
        """Replace a pull request's title and body."""
        raw = self._raw_pull(number)
        with _api(f"update PR #{number}"):
            raw.edit(title=title, body=body)
        return self.pull(number)

    def add_labels(self, number: int, labels: list[str]) -> None:
        """Add labels to a pull request (GitHub creates unknown ones)."""
        raw = self._raw_pull(number)
        with _api(f"label PR #{number}"):
            raw.add_to_labels(*labels)

    def files(self, number: int) -> list[FileDiff]:
        """Return the changed files of a pull request with their patches."""
        raw = self._raw_pull(number)
        with _api(f"read the files of PR #{number}"):
            return [FileDiff(f.filename, f.status, f.patch) for f in raw.get_files()]

    def reviews(self, number: int) -> list[ReviewInfo]:
        """Return the submitted reviews of a pull request."""
        raw = self._raw_pull(number)
        with _api(f"read the reviews of PR #{number}"):
            return [_review(r) for r in raw.get_reviews()]

    def review_comments(self, number: int) -> list[CommentInfo]:
        """Return the inline review comments of a pull request."""
        raw = self._raw_pull(number)
        with _api(f"read the review comments of PR #{number}"):
            return [
                CommentInfo(c.id, c.body or "", c.path, c.line, c.pull_request_review_id)
                for c in raw.get_review_comments()
            ]

    def create_review(self, number: int, *, body: str, comments: list[dict[str, Any]]) -> ReviewInfo:
        """Submit one review with inline comments (event COMMENT: a bot may not approve its own PR)."""
        raw = self._raw_pull(number)
        with _api(f"post a review on PR #{number}"):
            return _review(raw.create_review(body=body, event="COMMENT", comments=comments))

    def edit_review(self, number: int, review_id: int, *, body: str) -> None:
        """Replace the summary of an earlier review."""
        raw = self._raw_pull(number)
        with _api(f"update review {review_id}"):
            raw.get_review(review_id).edit(body)

    def add_review_comment(self, number: int, *, body: str, path: str, line: int, sha: str) -> None:
        """Add one inline comment on the right side of the diff."""
        raw = self._raw_pull(number)
        with _api(f"comment on {path}:{line}"):
            commit = self._repo.get_commit(sha)
            raw.create_review_comment(body=body, commit=commit, path=path, line=line, side="RIGHT")

    def edit_review_comment(self, number: int, comment_id: int, *, body: str | None) -> None:
        """Replace an inline comment's text, or delete it when `body` is None."""
        raw = self._raw_pull(number)
        with _api(f"edit comment {comment_id}"):
            comment = raw.get_review_comment(comment_id)
            if body is None:
                comment.delete()
            else:
                comment.edit(body)

    def status(self, number: int) -> PullStatus:
        """Return a PR with its checks summary and review state."""
        pull = self.pull(number)
        return PullStatus(pull, self._checks(pull.head_sha), *self._review_state(number))

    def _checks(self, sha: str) -> str:
        if not sha:
            return "unknown"
        with _api(f"read the checks of {sha[:12]}"):
            commit = self._repo.get_commit(sha)
            runs = list(commit.get_check_runs())
            combined = commit.get_combined_status()
        if any(r.status != "completed" for r in runs) or (
            combined.total_count and combined.state == "pending"
        ):
            return "pending"
        bad = [r for r in runs if r.conclusion not in ("success", "neutral", "skipped")]
        if bad or (combined.total_count and combined.state != "success"):
            return "failure"
        return "success" if runs or combined.total_count else "none"

    def _review_state(self, number: int) -> tuple[str, dict[str, str]]:
        latest: dict[str, str] = {}
        for review in self.reviews(number):
            if review.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED") or review.user not in latest:
                latest[review.user] = review.state
        states = set(latest.values())
        for state in ("CHANGES_REQUESTED", "APPROVED", "COMMENTED"):
            if state in states:
                return state.lower(), latest
        return "none", latest


def connect(
    config: GitHubConfig, *, remote_url: str | None, environ: Mapping[str, str] | None = None
) -> GitHubRepo:
    """Open the repository named in config, else parsed from the remote URL, else GITHUB_REPOSITORY."""
    env = os.environ if environ is None else environ
    token = get_token(env)
    name = config.repository or _name_from_remote(remote_url) or env.get("GITHUB_REPOSITORY")
    if not name:
        raise GitHubError(
            "cannot tell which GitHub repository to use; set [tool.agent-runner.github] repository"
        )
    if config.api_url is None and env.get("GITHUB_API_URL"):  # set by GitHub Actions, also on GHE
        config = config.model_copy(update={"api_url": env["GITHUB_API_URL"]})
    return GitHubRepo(name, token=token, config=config)


def _name_from_remote(url: str | None) -> str | None:
    try:
        return parse_remote(url) if url else None
    except GitHubError:
        return None

"""A fake GitHub REST API on 127.0.0.1, spoken to by the real PyGithub through `base_url`.

It serves one repository: pull requests (create, list, get, update, files, merge), plain issues (list,
get), reviews (create, list, edit, dismiss), review comments, issue comments, labels, commit statuses and
check runs. With `origin=` (a bare git repo) it checks that a PR's head branch was pushed, computes the PR's
files from the real diff and merges for real. Every request is recorded.
"""

from __future__ import annotations

import re
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from agent_runner.testing._fake_github_http import ApiError, Handler, Request

__all__ = ["ApiError", "FakeGitHub", "Request"]
NOW = "2026-01-01T00:00:00Z"


@dataclass
class _Store:
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    review_comments: list[dict[str, Any]] = field(default_factory=list)
    issue_comments: list[dict[str, Any]] = field(default_factory=list)
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    check_runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    files: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)  # plain issues; numbers shared with pulls
    next_id: int = 1000


class FakeGitHub:
    """A fake GitHub for one repository; use as a context manager and pass `base_url` to PyGithub."""

    def __init__(
        self,
        *,
        owner: str = "acme",
        repo: str = "widgets",
        default_branch: str = "main",
        origin: Path | None = None,
        login: str = "agent-runner-bot",
    ) -> None:
        self.owner, self.repo, self.default_branch = owner, repo, default_branch
        self.origin = origin
        self.login = login
        self.requests: list[Request] = []
        self.store = _Store()
        self.fail: dict[tuple[str, str], tuple[int, str]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------
    def __enter__(self) -> FakeGitHub:
        handler = type("BoundHandler", (Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        """The API base URL (GitHub Enterprise style, with /api/v3)."""
        assert self._server is not None, "use FakeGitHub as a context manager"
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v3"

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    # -- helpers for tests ------------------------------------------------------------------------------
    def calls(self, method: str, pattern: str = "") -> list[Request]:
        """Return the recorded requests with this method whose path matches `pattern` (a regex)."""
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    def set_check(
        self, sha: str, *, name: str = "ci", status: str = "completed", conclusion: str = "success"
    ) -> None:
        """Add a check run for a commit."""
        run = {
            "id": self._new_id(),
            "name": name,
            "status": status,
            "conclusion": conclusion,
            "head_sha": sha,
        }
        self.store.check_runs.setdefault(sha, []).append(run)

    def set_files(self, number: int, files: list[dict[str, Any]]) -> None:
        """Override the files (filename, status, patch) a pull request reports."""
        self.store.files[number] = files

    def add_pull(self, *, head: str, base: str = "main", title: str = "t", body: str = "") -> dict[str, Any]:
        """Create a pull request directly (as if a person opened it)."""
        return self.create_pull({"head": head, "base": base, "title": title, "body": body}, user="someone")

    def add_issue(
        self, *, title: str, body: str = "", labels: tuple[str, ...] = (), state: str = "open"
    ) -> dict[str, Any]:
        """Create a plain issue (as if a person filed it), numbered after the pulls and issues before it."""
        number = self._next_number()
        tags = [{"name": name, "id": self._new_id(), "url": self.url(f"/labels/{name}")} for name in labels]
        self.store.issues[number] = {
            "id": self._new_id(), "number": number, "state": state, "title": title, "body": body,
            "labels": tags,
            "user": self.user("someone"), "html_url": self.html(f"/issues/{number}"),
            "url": self.url(f"/issues/{number}"), "created_at": NOW, "updated_at": NOW,
        }  # fmt: skip
        return self.store.issues[number]

    def _next_number(self) -> int:
        return len(self.store.pulls) + len(self.store.issues) + 1

    def merge_pull(self, number: int, *, message: str = "") -> str:
        """Merge a pull request into its base in `origin`, as a person clicking "Merge" would; return it."""
        pull = self.pull(number)
        if self.origin is None or pull["state"] != "open":
            raise ApiError(405, "Pull Request is not mergeable")
        base, head = pull["base"]["ref"], pull["head"]["ref"]
        proc = subprocess.run(
            ["git", "-C", str(self.origin), "merge-tree", "--write-tree", f"refs/heads/{base}",
             f"refs/heads/{head}"], capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise ApiError(405, f"Pull Request is not mergeable: {proc.stdout.strip()}")
        old = self.head_sha(base)
        title = message or f"Merge pull request #{number} from {self.owner}/{head}"
        identity = ["-c", "user.name=someone", "-c", "user.email=someone@example.com"]
        commit = _git(self.origin, *identity, "commit-tree", proc.stdout.split()[0], "-p", old, "-p",
                      self.head_sha(head), "-m", title).strip()  # fmt: skip
        _git(self.origin, "update-ref", f"refs/heads/{base}", commit, old)
        pull.update(state="closed", merged=True, merge_commit_sha=commit)
        return commit

    # -- resources ------------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"{self.base_url}/repos/{self.full_name}{path}"

    def html(self, path: str) -> str:
        return f"https://github.example/{self.full_name}{path}"

    def _new_id(self) -> int:
        self.store.next_id += 1
        return self.store.next_id

    def user(self, login: str | None = None) -> dict[str, Any]:
        return {"login": login or self.login, "id": 1, "type": "Bot"}

    def repo_json(self) -> dict[str, Any]:
        return {
            "id": 1,
            "name": self.repo,
            "full_name": self.full_name,
            "owner": self.user(self.owner),
            "default_branch": self.default_branch,
            "url": f"{self.base_url}/repos/{self.full_name}",
            "html_url": self.html(""),
            "private": True,
        }

    def head_sha(self, ref: str) -> str:
        if self.origin is None:
            return "0" * 40
        out = _git(self.origin, "rev-parse", "--verify", "-q", f"refs/heads/{ref}^{{commit}}", check=False)
        return out.strip()

    def create_pull(self, data: dict[str, Any], *, user: str | None = None) -> dict[str, Any]:
        head, base = str(data.get("head", "")).split(":")[-1], str(data.get("base", ""))
        if not head or not base or not data.get("title"):
            raise ApiError(422, "Validation Failed: head, base and title are required")
        if self.origin is not None and not self.head_sha(head):
            raise ApiError(422, f"Validation Failed: head '{head}' does not exist")
        if any(p["head"]["ref"] == head and p["state"] == "open" for p in self.store.pulls.values()):
            raise ApiError(422, f"Validation Failed: A pull request already exists for {self.owner}:{head}.")
        number = self._next_number()
        pull = {
            "id": self._new_id(),
            "number": number,
            "state": "open",
            "title": data["title"],
            "body": data.get("body") or "",
            "draft": bool(data.get("draft", False)),
            "merged": False,
            "mergeable": True,
            "mergeable_state": "clean",
            "labels": [],
            "user": self.user(user),
            "head": {"ref": head, "label": f"{self.owner}:{head}", "sha": ""},
            "base": {"ref": base, "label": f"{self.owner}:{base}", "sha": ""},
            "url": self.url(f"/pulls/{number}"),
            "html_url": self.html(f"/pull/{number}"),
            "issue_url": self.url(f"/issues/{number}"),
            "created_at": NOW,
            "updated_at": NOW,
        }
        self.store.pulls[number] = pull
        return self.pull_json(number)

    def pull(self, number: int) -> dict[str, Any]:
        if number not in self.store.pulls:
            raise ApiError(404, "Not Found")
        return self.store.pulls[number]

    def pull_json(self, number: int) -> dict[str, Any]:
        pull = self.pull(number)
        pull["head"]["sha"] = self.head_sha(pull["head"]["ref"]) or pull["head"]["sha"]
        pull["base"]["sha"] = self.head_sha(pull["base"]["ref"]) or pull["base"]["sha"]
        pull["head"]["repo"] = pull["base"]["repo"] = self.repo_json()
        return dict(pull)

    def issue_json(self, number: int) -> dict[str, Any]:
        if number in self.store.issues:
            return dict(self.store.issues[number])
        pull = self.pull(number)
        keys = (
            "id",
            "number",
            "state",
            "title",
            "body",
            "labels",
            "user",
            "html_url",
            "created_at",
            "updated_at",
        )
        return {**{k: pull[k] for k in keys}, "url": pull["issue_url"], "pull_request": {"url": pull["url"]}}

    def pull_files(self, number: int) -> list[dict[str, Any]]:
        if number in self.store.files:
            return self.store.files[number]
        pull = self.pull(number)
        if self.origin is None:
            return []
        return _diff_files(self.origin, pull["base"]["ref"], pull["head"]["ref"])

    def add_review(self, number: int, data: dict[str, Any]) -> dict[str, Any]:
        pull = self.pull_json(number)
        event = data.get("event") or "PENDING"
        state = {"COMMENT": "COMMENTED", "APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED"}.get(
            event, event
        )
        review = {
            "id": self._new_id(),
            "user": self.user(),
            "body": data.get("body") or "",
            "state": state,
            "commit_id": data.get("commit_id") or pull["head"]["sha"],
            "submitted_at": NOW,
            "pull_request_url": pull["url"],
            "html_url": self.html(f"/pull/{number}#review"),
            "number": number,
        }
        review["url"] = f"{pull['url']}/reviews/{review['id']}"
        self.store.reviews.append(review)
        for comment in data.get("comments") or []:
            self.add_review_comment(
                number, {**comment, "commit_id": review["commit_id"]}, review_id=review["id"]
            )
        return review

    def add_review_comment(
        self, number: int, data: dict[str, Any], *, review_id: int | None = None
    ) -> dict[str, Any]:
        path, line = data.get("path"), data.get("line")
        if not path or not isinstance(line, int):
            raise ApiError(422, "Validation Failed: path and line are required")
        if not _line_in_diff(self.pull_files(number), path, line):
            raise ApiError(422, f"Validation Failed: line {line} of {path} is not part of the diff")
        comment_id = self._new_id()
        comment = {
            "id": comment_id,
            "pull_request_review_id": review_id or self._new_id(),
            "path": path,
            "line": line,
            "side": data.get("side", "RIGHT"),
            "body": data.get("body", ""),
            "user": self.user(),
            "commit_id": data.get("commit_id") or self.pull_json(number)["head"]["sha"],
            "url": self.url(f"/pulls/comments/{comment_id}"),
            "html_url": self.html(f"/pull/{number}#c{comment_id}"),
            "pull_request_url": self.url(f"/pulls/{number}"),
            "created_at": NOW,
            "updated_at": NOW,
            "number": number,
        }
        self.store.review_comments.append(comment)
        return comment

    def add_issue_comment(self, number: int, data: dict[str, Any]) -> dict[str, Any]:
        self.pull(number)
        comment_id = self._new_id()
        comment = {
            "id": comment_id,
            "body": data.get("body", ""),
            "user": self.user(),
            "number": number,
            "url": self.url(f"/issues/comments/{comment_id}"),
            "html_url": self.html(f"/pull/{number}#i{comment_id}"),
            "issue_url": self.url(f"/issues/{number}"),
            "created_at": NOW,
            "updated_at": NOW,
        }
        self.store.issue_comments.append(comment)
        return comment

    def find(self, items: list[dict[str, Any]], item_id: int) -> dict[str, Any]:
        for item in items:
            if item["id"] == item_id:
                return item
        raise ApiError(404, "Not Found")


def _git(repo: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise ApiError(422, proc.stderr.strip())
    return proc.stdout


def _diff_files(origin: Path, base: str, head: str) -> list[dict[str, Any]]:
    """Return GitHub-style file entries (filename, status, patch) for base...head."""
    names = _git(origin, "diff", "--name-status", f"refs/heads/{base}...refs/heads/{head}").splitlines()
    files = []
    status_names = {"A": "added", "M": "modified", "D": "removed", "R": "renamed"}
    for line in names:
        status, name = line.split("\t")[0], line.split("\t")[-1]
        patch = _git(origin, "diff", f"refs/heads/{base}...refs/heads/{head}", "--", name)
        hunk = patch.find("\n@@")
        entry = {"filename": name, "status": status_names.get(status[0], "modified"), "sha": "0" * 40}
        if hunk >= 0:
            entry["patch"] = patch[hunk + 1 :].rstrip("\n")
        files.append(entry)
    return files


def _line_in_diff(files: list[dict[str, Any]], path: str, line: int) -> bool:
    for entry in files:
        if entry["filename"] == path and "patch" in entry:
            return line in _right_lines(entry["patch"])
    return False


def _right_lines(patch: str) -> set[int]:
    lines: set[int] = set()
    number = 0
    for text in patch.splitlines():
        match = re.match(r"@@ -\d+(?:,\d+)? \+(\d+)", text)
        if match:
            number = int(match.group(1))
        elif not text.startswith(("-", "\\")):
            lines.add(number)
            number += 1
    return lines

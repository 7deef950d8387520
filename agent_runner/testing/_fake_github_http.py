"""The HTTP side of FakeGitHub: the request handler and the route table."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

Route = Callable[[Any, re.Match[str], dict[str, str], Any], Any]


@dataclass(frozen=True)
class Request:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    body: Any


class ApiError(Exception):
    """An HTTP error answer from a route."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _list_pulls(fake: Any, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    state, head = q.get("state", "open"), q.get("head", "").split(":")[-1]
    pulls = [fake.pull_json(n) for n in sorted(fake.store.pulls)]
    return [p for p in pulls if state in ("all", p["state"]) and (not head or p["head"]["ref"] == head)]


def _update_pull(fake: Any, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    pull = fake.pull(int(m["n"]))
    for key in ("title", "body", "state", "base"):
        if key in body:
            pull[key] = {"ref": body[key]} if key == "base" else body[key]
    return fake.pull_json(int(m["n"]))


def _list_issues(fake: Any, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    state, labels = q.get("state", "open"), [x for x in q.get("labels", "").split(",") if x]
    issues = [fake.issue_json(n) for n in sorted({*fake.store.pulls, *fake.store.issues})]
    names = lambda issue: {label["name"] for label in issue["labels"]}  # noqa: E731
    return [i for i in issues if state in ("all", i["state"]) and set(labels) <= names(i)]


def _add_labels(fake: Any, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    pull = fake.pull(int(m["n"]))
    wanted = body.get("labels", body) if isinstance(body, dict) else body
    for name in wanted:
        if name not in {label["name"] for label in pull["labels"]}:
            pull["labels"].append({"name": name, "id": fake._new_id(), "url": fake.url(f"/labels/{name}")})
    return pull["labels"]


def _reviews(fake: Any, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    return [r for r in fake.store.reviews if r["number"] == int(m["n"])]


def _edit_review(fake: Any, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    review = fake.find(fake.store.reviews, int(m["id"]))
    review["body"] = body.get("body", review["body"])
    return review


def _dismiss_review(fake: Any, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    review = fake.find(fake.store.reviews, int(m["id"]))
    review["state"] = "DISMISSED"
    return review


def _review_comments(fake: Any, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    return [c for c in fake.store.review_comments if c["number"] == int(m["n"])]


def _get(items: str) -> Route:
    def get(fake: Any, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
        return fake.find(getattr(fake.store, items), int(m["id"]))

    return get


def _edit_comment(items: str) -> Route:
    def edit(fake: Any, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
        comment = fake.find(getattr(fake.store, items), int(m["id"]))
        comment["body"] = body.get("body", comment["body"])
        return comment

    return edit


def _delete_comment(items: str) -> Route:
    def delete(fake: Any, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
        comment = fake.find(getattr(fake.store, items), int(m["id"]))
        getattr(fake.store, items).remove(comment)
        return None

    return delete


def _commit(fake: Any, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    return {"sha": m["sha"], "url": fake.url(f"/commits/{m['sha']}"), "commit": {"message": ""}}


def _status(fake: Any, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    statuses = fake.store.statuses.get(m["sha"], [])
    state = (
        "pending"
        if not statuses
        else ("success" if all(s["state"] == "success" for s in statuses) else "failure")
    )
    return {"state": state, "sha": m["sha"], "statuses": statuses, "total_count": len(statuses)}


def _check_runs(fake: Any, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    runs = fake.store.check_runs.get(m["sha"], [])
    return {"total_count": len(runs), "check_runs": runs}


R = "/api/v3/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
ROUTES: list[tuple[str, str, Route]] = [
    ("GET", "", lambda f, m, q, b: f.repo_json()),
    ("GET", "/pulls", _list_pulls),
    ("POST", "/pulls", lambda f, m, q, b: f.create_pull(b)),
    ("GET", "/pulls/(?P<n>\\d+)", lambda f, m, q, b: f.pull_json(int(m["n"]))),
    ("PATCH", "/pulls/(?P<n>\\d+)", _update_pull),
    ("PUT", "/pulls/(?P<n>\\d+)/merge", lambda f, m, q, b: {
        "sha": f.merge_pull(int(m["n"]), message=str(b.get("commit_title") or "")), "merged": True,
        "message": "Pull Request successfully merged"}),
    ("GET", "/pulls/(?P<n>\\d+)/files", lambda f, m, q, b: f.pull_files(int(m["n"]))),
    ("GET", "/pulls/(?P<n>\\d+)/reviews", _reviews),
    ("POST", "/pulls/(?P<n>\\d+)/reviews", lambda f, m, q, b: f.add_review(int(m["n"]), b)),
    ("GET", "/pulls/(?P<n>\\d+)/reviews/(?P<id>\\d+)", _get("reviews")),
    ("PUT", "/pulls/(?P<n>\\d+)/reviews/(?P<id>\\d+)", _edit_review),
    ("PUT", "/pulls/(?P<n>\\d+)/reviews/(?P<id>\\d+)/dismissals", _dismiss_review),
    ("GET", "/pulls/(?P<n>\\d+)/comments", _review_comments),
    ("POST", "/pulls/(?P<n>\\d+)/comments", lambda f, m, q, b: f.add_review_comment(int(m["n"]), b)),
    ("GET", "/pulls/comments/(?P<id>\\d+)", _get("review_comments")),
    ("PATCH", "/pulls/comments/(?P<id>\\d+)", _edit_comment("review_comments")),
    ("DELETE", "/pulls/comments/(?P<id>\\d+)", _delete_comment("review_comments")),
    ("GET", "/issues", _list_issues),
    ("GET", "/issues/(?P<n>\\d+)", lambda f, m, q, b: f.issue_json(int(m["n"]))),
    ("POST", "/issues/(?P<n>\\d+)/labels", _add_labels),
    ("GET", "/issues/(?P<n>\\d+)/labels", lambda f, m, q, b: f.pull(int(m["n"]))["labels"]),
    ("GET", "/issues/(?P<n>\\d+)/comments", lambda f, m, q, b: [
        c for c in f.store.issue_comments if c["number"] == int(m["n"])]),
    ("POST", "/issues/(?P<n>\\d+)/comments", lambda f, m, q, b: f.add_issue_comment(int(m["n"]), b)),
    ("PATCH", "/issues/comments/(?P<id>\\d+)", _edit_comment("issue_comments")),
    ("GET", "/commits/(?P<sha>[0-9a-f]+)", _commit),
    ("GET", "/commits/(?P<sha>[0-9a-f]+)/status", _status),
    ("GET", "/commits/(?P<sha>[0-9a-f]+)/check-runs", _check_runs),
]  # fmt: skip


class Handler(BaseHTTPRequestHandler):
    """Dispatches requests to ROUTES; `fake` is set on a subclass per server."""

    fake: Any = None
    protocol_version = "HTTP/1.1"  # keep-alive: PyGithub reuses its connection

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""

    def _dispatch(self) -> None:
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else {}
        fake = self.fake
        with fake._lock:
            fake.requests.append(Request(self.command, url.path, query, body))
            status, payload = self._route(fake, url.path, query, body)
        self._answer(status, payload)

    def _route(self, fake: Any, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if not self.headers.get("Authorization"):
            return 401, {"message": "Requires authentication"}
        failure = fake.fail.get((self.command, path))
        if failure is not None:
            return failure[0], {"message": failure[1]}
        for method, pattern, route in ROUTES:
            match = re.fullmatch(R + pattern, path)
            if method == self.command and match:
                if (match["owner"], match["repo"]) != (fake.owner, fake.repo):
                    return 404, {"message": "Not Found"}
                try:
                    result = route(fake, match, query, body)
                except ApiError as exc:
                    return exc.status, {"message": str(exc)}
                status = 201 if method == "POST" else (204 if result is None else 200)
                return status, result
        return 404, {"message": f"Not Found: {self.command} {path}"}

    def _answer(self, status: int, payload: Any) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _dispatch

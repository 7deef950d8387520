"""GitHub: publishing agent branches as pull requests, reviewing them, and the Actions workflows.

PyGithub lives only in `github.api` (imported lazily there); pushes go through `git` in `github.push`.
The names below load on first use: a worker reads the GitHub settings (github.settings) and nothing else.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agent_runner.config.github import GitHubConfig

if TYPE_CHECKING:  # type checkers see the names; the interpreter loads them in __getattr__
    from agent_runner.github.api import GitHubRepo, connect, get_token, parse_remote
    from agent_runner.github.publisher import GitHubPublisher
    from agent_runner.github.records import MARKER, CommentInfo, FileDiff, PullInfo, PullStatus, ReviewInfo

_HOMES = {
    "GitHubRepo": "api",
    "connect": "api",
    "get_token": "api",
    "parse_remote": "api",
    "GitHubPublisher": "publisher",
    "MARKER": "records",
    "CommentInfo": "records",
    "FileDiff": "records",
    "PullInfo": "records",
    "PullStatus": "records",
    "ReviewInfo": "records",
}
__all__ = [
    "MARKER",
    "CommentInfo",
    "FileDiff",
    "GitHubConfig",
    "GitHubPublisher",
    "GitHubRepo",
    "PullInfo",
    "PullStatus",
    "ReviewInfo",
    "connect",
    "get_token",
    "parse_remote",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)

"""GitHub: publishing agent branches as pull requests, reviewing them, and the Actions workflows.

PyGithub lives only in `github.api` (imported lazily there); pushes go through `git` in `github.push`.
"""

from __future__ import annotations

from agent_runner.github.api import GitHubConfig, GitHubRepo, connect, get_token, parse_remote
from agent_runner.github.publisher import GitHubPublisher
from agent_runner.github.records import MARKER, CommentInfo, FileDiff, PullInfo, PullStatus, ReviewInfo

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

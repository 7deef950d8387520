"""Secrets by value: which values the runner knows, and the places that mask them (files, show, PR bodies)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, cast

import pytest

from agent_runner.cli.task_views import find_trajectory, trajectory_text
from agent_runner.config.runner import RunnerConfig
from agent_runner.core.errors import QueueError
from agent_runner.core.redact import MASK, Redactor, SecretValues, known_secrets, redact_file, runner_redactor
from agent_runner.core.result import Outcome, TaskResult
from agent_runner.core.task import Task
from agent_runner.github.api import GitHubRepo
from agent_runner.github.publisher import GitHubPublisher
from agent_runner.github.records import PullInfo
from agent_runner.queue.state import TaskState
from agent_runner.worker.trajectory import TrajectoryWriter, render_trajectory

TOKEN = "plainvalue1234567890"
ENVIRON = {
    "GITHUB_TOKEN": TOKEN,
    "GH_TOKEN": "plain-gh-token-2",
    "ANTHROPIC_API_KEY": "plainmodelkey0987654321",
    "LOCAL_MODEL_KEY": "local-model-key-1",
    "DB_URL": "postgres://u:opensesame42@db",
    "OTHER_TOKEN": "other-token-value",
    "HOME": "/home/someone-long",
}
CONFIG = RunnerConfig(forward_env=["ANTHROPIC_API_KEY", "LOCAL_MODEL_KEY"], secret_env=["DB_URL"])


def test_known_secrets_are_github_tokens_model_keys_and_named_variables() -> None:
    """GITHUB_TOKEN, GH_TOKEN, forward_env and secret_env are known; a secret-looking name only masks."""
    known = known_secrets(CONFIG, ENVIRON)
    assert set(known) == {"GITHUB_TOKEN", "GH_TOKEN", "ANTHROPIC_API_KEY", "LOCAL_MODEL_KEY", "DB_URL"}
    masked = runner_redactor(CONFIG, ENVIRON).text(" ".join(ENVIRON.values()))
    assert masked == " ".join([MASK] * 6 + ["/home/someone-long"])


def test_a_short_value_is_logged_once_and_not_masked(caplog: pytest.LogCaptureFixture) -> None:
    """A value under 8 characters would mask ordinary text: it is left alone, and the log says so once."""
    config = RunnerConfig(secret_env=["SHORT_SECRET_FOR_LOG_TEST"])
    environ = {"SHORT_SECRET_FOR_LOG_TEST": "abc12"}
    with caplog.at_level(logging.WARNING, logger="agent_runner.core.redact"):
        assert known_secrets(config, environ) == environ
        assert runner_redactor(config, environ).text("abc12 stays") == "abc12 stays"
    said = [r.getMessage() for r in caplog.records if "SHORT_SECRET_FOR_LOG_TEST" in r.getMessage()]
    assert len(said) == 1 and "shorter than 8 characters" in said[0]


def test_values_are_masked_where_json_escaped_them(tmp_path: Path) -> None:
    """A value with a quote, a backslash or non-ASCII letters is masked in JSON text; the JSON stays valid."""
    value = 'pa"ss\\wörd-1234'
    redactor = Redactor([value])
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"a": value}) + "\n" + json.dumps({"b": value}, ensure_ascii=False) + "\n")
    assert redact_file(path, redactor)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [{"a": MASK}, {"b": MASK}]


def test_a_clean_file_is_not_rewritten(tmp_path: Path) -> None:
    """redact_file leaves a file without secrets as it was (same inode: nothing rewritten)."""
    path = tmp_path / "worker.log"
    path.write_text("nothing to see\n")
    inode = path.stat().st_ino
    assert not redact_file(path, Redactor([TOKEN]))
    assert path.stat().st_ino == inode and path.read_text() == "nothing to see\n"


def test_secret_values_show_only_a_count() -> None:
    """Gate settings carry SecretValues: iterable, but repr, str and JSON (cache keys) show no value."""
    values = SecretValues([TOKEN, ""])
    assert list(values) == [TOKEN]
    shown = [repr(values), str(values), json.dumps({"secrets": values}, default=str)]
    assert not any(TOKEN in text for text in shown), shown


def test_render_trajectory_masks_this_environments_secrets_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trajectory its worker could not mask (a value it never got) is masked when rendered."""
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    path = tmp_path / "trajectory.jsonl"
    TrajectoryWriter(path).write("user", text=f"the token is {TOKEN}")
    assert TOKEN in path.read_text()
    assert TOKEN not in render_trajectory(path) and MASK in render_trajectory(path)


def test_show_masks_the_configs_secrets_and_reads_only_trajectories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trajectory_text masks secret_env values; a result naming another file (a key) is not read."""
    monkeypatch.setenv("DB_URL", ENVIRON["DB_URL"])
    config = RunnerConfig(secret_env=["DB_URL"])
    path = tmp_path / ".agent-runner" / "runs" / "t1" / "1" / "trajectory.jsonl"
    TrajectoryWriter(path).write("user", text=f"connect to {ENVIRON['DB_URL']}")
    state = TaskState(id="t1", attempt=1)
    assert ENVIRON["DB_URL"] not in trajectory_text(tmp_path, config, state, [])
    key = tmp_path / "id_rsa"
    key.write_text("PRIVATE KEY\n")
    path.unlink()
    with pytest.raises(QueueError, match="no trajectory"):
        find_trajectory(tmp_path, config, state, [{"result": {"trajectory_path": str(key)}}])


class RecordingRepo:
    """The few GitHubRepo calls upsert_pull makes for a new PR, keeping what it was asked to create."""

    default_branch = "main"

    def __init__(self) -> None:
        self.created: dict[str, Any] = {}

    def pull_by_marker(self, task_id: str, *, label: str) -> None:
        return None

    def pulls_for_branch(self, branch: str) -> list[PullInfo]:
        return []

    def create_pull(self, **fields: Any) -> PullInfo:
        self.created = fields
        return PullInfo(1, "u", fields["title"], fields["body"], "open", False, False, "h", "s", "main")

    def add_labels(self, number: int, labels: list[str]) -> None:
        return None


def test_pr_title_and_body_are_masked_with_the_publishers_redactor() -> None:
    """A PR body and title quoting a plain secret value carry [REDACTED] instead."""
    task = Task.model_validate({"id": "t1", "kind": "change", "title": f"use {TOKEN}"})
    result = TaskResult(task_id="t1", attempt=1, outcome=Outcome.ACCEPTED, summary=f"stored {TOKEN}")
    gh = RecordingRepo()
    publisher = GitHubPublisher(environ={}, redactor=runner_redactor(CONFIG, ENVIRON))
    publisher.upsert_pull(cast(GitHubRepo, gh), task, result, "agent/t1")
    assert TOKEN not in gh.created["title"] + gh.created["body"] and MASK in gh.created["body"]

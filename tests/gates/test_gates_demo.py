"""`run-agents demo` end to end: a throwaway repo, one task of each kind, 2 local workers, no key."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agent_runner.cli import get_app
from agent_runner.config.runner import load_config
from agent_runner.queue.store import Queue


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """The demo repo and the output of `run-agents demo` (run once for this module's tests)."""
    folder = tmp_path_factory.mktemp("demo") / "shop"
    return folder, CliRunner().invoke(get_app(), ["demo", str(folder)], env={"COLUMNS": "200"})


def test_demo_runs_every_kind_without_a_key(demo: tuple[Path, Any]) -> None:
    """With no key the demo replays recorded sessions (labelled), finishes every task and lists 4 branches."""
    folder, result = demo
    assert result.exit_code == 0, result.output
    out = result.output
    assert "RECORDED" in out and "[recorded]" in out
    assert "lint-cart      no model needed" in out
    assert "lint-targets 8->0 ok" in out and "killed ok" in out
    for task in ("lint-cart", "lint-legacy", "test-pricing", "format-price", "review-legacy"):
        assert f"│ {task}" in out and "finished" in out
    assert "│ lint-cart     │ finished │ none needed │ 0           │ 0 " in out
    assert (
        "│ format-price  │ finished │ recorded    │ 4           │ 2 " in out
    )  # the gate report went back once
    assert "Branches made (4)" in out
    branches = subprocess.run(
        ["git", "branch", "--list", "agent/*"], cwd=folder, capture_output=True, text=True
    )
    assert sorted(branches.stdout.split()) == [
        "agent/format-price",
        "agent/lint-cart",
        "agent/lint-legacy",
        "agent/test-pricing",
    ]
    legacy = subprocess.run(
        ["git", "show", "agent/lint-legacy:shop/legacy.py"], cwd=folder, capture_output=True, text=True
    )
    assert "counts=None" in legacy.stdout and "for line in lines" in legacy.stdout


def test_demo_review_keeps_its_answer_as_fields(demo: tuple[Path, Any]) -> None:
    """The review task's result holds its verdict and findings, not only the summary text."""
    folder, _ = demo
    review = Queue(folder / "tasks" / "queue.jsonl").refresh()["review-legacy"].result
    assert review is not None and review.verdict == "request_changes"
    assert [(f.line, f.severity) for f in review.findings] == [(4, "major"), (13, "minor")]


def test_demo_report_shows_recorded_spend(demo: tuple[Path, Any]) -> None:
    """The recorded sessions carry usage and cost: the report charts them, labelled recorded, and ruff-only
    work shows no model."""
    from agent_runner.report.html import generate_report

    folder, _ = demo
    states = Queue(folder / "tasks" / "queue.jsonl").refresh()
    legacy = states["lint-legacy"].result
    assert legacy is not None and legacy.usage.cache_read_tokens > 0
    assert legacy.cost_usd is not None and 0 < legacy.cost_usd < 0.05
    text = generate_report(folder, load_config(folder, environ={})).read_text(encoding="utf-8")
    assert text.count('class="pygal-chart"') == 3
    assert "recorded:lint-legacy.yaml" in text and "recorded sessions: their cost was recorded" in text
    assert (
        "<td>none: ruff only</td>" in text
        and "/agent_runner/demo/" not in text.split('<section id="trajectories">')[0]
    )
    assert "review: <b>request_changes</b> (2 findings)" in text


def test_demo_leaves_git_status_clean(demo: tuple[Path, Any]) -> None:
    """The queue's lock files are ignored like the queue: after the run, `git status` shows nothing."""
    folder, _ = demo
    status = subprocess.run(["git", "status", "--porcelain"], cwd=folder, capture_output=True, text=True)
    assert status.stdout == ""


def test_demo_refuses_a_folder_with_files(tmp_path: Path) -> None:
    """The demo only writes into a new or empty folder."""
    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(get_app(), ["demo", str(tmp_path)])
    assert result.exit_code != 0
    assert (tmp_path / "keep.txt").read_text() == "mine"

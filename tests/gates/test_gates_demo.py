"""`run-agents demo` end to end: a throwaway repo, one task of each kind, 2 local workers, no key."""

from __future__ import annotations

import subprocess
from pathlib import Path

from typer.testing import CliRunner

from agent_runner.cli import get_app
from agent_runner.queue import Queue


def test_demo_runs_every_kind_without_a_key(tmp_path: Path) -> None:
    """With no key the demo replays recorded sessions (labelled), finishes every task and lists 4 branches."""
    folder = tmp_path / "shop"
    result = CliRunner().invoke(get_app(), ["demo", str(folder)], env={"COLUMNS": "200"})
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
    review = Queue(folder / "tasks" / "queue.jsonl").refresh()["review-legacy"].result or {}
    assert review["verdict"] == "request_changes"  # the answer is kept as fields, not only as the summary
    assert [(f["line"], f["severity"]) for f in review["findings"]] == [(4, "major"), (13, "minor")]


def test_demo_refuses_a_folder_with_files(tmp_path: Path) -> None:
    """The demo only writes into a new or empty folder."""
    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(get_app(), ["demo", str(tmp_path)])
    assert result.exit_code != 0
    assert (tmp_path / "keep.txt").read_text() == "mine"

"""Reviewing PRs: chunked diffs, inline comments at the right lines, one review updated, fix rounds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from github_helpers import agent_commit, make_result, make_task
from typer.testing import CliRunner

from agent_runner.cli import get_app
from agent_runner.config.github import GitHubConfig
from agent_runner.core.messages import Message, ModelTurn, Role, ToolCall
from agent_runner.core.task import Task, load_task_file
from agent_runner.github.api import GitHubRepo, connect
from agent_runner.github.publisher import GitHubPublisher
from agent_runner.github.records import FileDiff
from agent_runner.models.scripted import ScriptedModel
from agent_runner.review.post import REVIEW_MARKER, review_prs
from agent_runner.review.reviewer import parse_turn, split_diff
from agent_runner.testing.fake_github import FakeGitHub

APP = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n\n\n"
APP += "def mul(a, b):\n    return a * b\n"


class DictTasks:
    """Task lookup for reviews: the PR's task plus ids found in the tasks folder."""

    def __init__(self, tasks_dir: Path, *tasks: Task) -> None:
        self.tasks = {t.id: t for t in tasks}
        self.tasks_dir = tasks_dir

    def get(self, task_id: str) -> Task | None:
        return self.tasks.get(task_id)

    def ids(self) -> set[str]:
        return set(self.tasks) | {p.stem for p in self.tasks_dir.glob("*.md")}


def finish(verdict: str, findings: list[dict[str, Any]]) -> dict[str, Any]:
    """A scripted turn calling `finish` with the review JSON."""
    summary = json.dumps({"verdict": verdict, "findings": findings})
    return {"tool_calls": [{"name": "finish", "arguments": {"summary": summary}}]}


@pytest.fixture
def pr(source: Path, fake: FakeGitHub, gh_config: GitHubConfig, token_env: dict[str, str]) -> GitHubRepo:
    """An agent PR (#1) whose diff adds sub() and mul() to app.py (new lines 4-10)."""
    head = agent_commit(source, "agent/fix-app", {"app.py": APP})
    GitHubPublisher(gh_config, environ=token_env).publish(make_task(), make_result(head), source)
    return connect(gh_config, remote_url=None, environ=token_env)


def run_review(gh: GitHubRepo, tmp_path: Path, turns: list[dict[str, Any]], **options: Any) -> Any:
    """Review PR #1 with a scripted model; return (outcomes, model)."""
    model = ScriptedModel(turns, spec="scripted:test")
    config = GitHubConfig(review_rounds=2)
    tasks = DictTasks(tmp_path / "tasks", make_task())
    outcomes = review_prs(
        gh,
        ["1"],
        model=model,
        tasks=tasks,
        config=config,
        root=tmp_path,
        tasks_dir=tmp_path / "tasks",
        **options,
    )
    return outcomes, model


def test_findings_become_inline_comments_at_their_lines(
    pr: GitHubRepo, fake: FakeGitHub, tmp_path: Path
) -> None:
    """Findings on diff lines are inline comments; a finding off the diff lands in the summary, not lost."""
    findings = [
        {"file": "app.py", "line": 6, "severity": "blocking", "explanation": "sub is reversed"},
        {"file": "app.py", "line": 40, "severity": "minor", "explanation": "off the diff"},
    ]
    (outcome,), model = run_review(pr, tmp_path, [finish("request_changes", findings)], post=True)
    (create,) = fake.calls("POST", r"/pulls/1/reviews$")
    assert create.body["event"] == "COMMENT"
    assert [(c["path"], c["line"], c["side"]) for c in create.body["comments"]] == [("app.py", 6, "RIGHT")]
    assert "sub is reversed" in create.body["comments"][0]["body"]
    assert "off the diff" in create.body["body"] and REVIEW_MARKER in create.body["body"]
    assert outcome.report.verdict == "request_changes" and model.n_calls == 1
    assert "Fix lint in app.py" in model.requests[0].messages[0].text  # the PR title reaches the prompt
    assert "+def mul(a, b):" in model.requests[0].messages[0].text


def test_second_review_updates_instead_of_duplicating(
    pr: GitHubRepo, fake: FakeGitHub, tmp_path: Path
) -> None:
    """A second run edits the earlier review and its comments: still one review, stale comments gone."""
    first = [
        {"file": "app.py", "line": 6, "severity": "major", "explanation": "first take"},
        {"file": "app.py", "line": 10, "severity": "nit", "explanation": "goes away"},
    ]
    run_review(pr, tmp_path, [finish("comment", first)], post=True)
    second = [
        {"file": "app.py", "line": 6, "severity": "major", "explanation": "second take"},
        {"file": "app.py", "line": 9, "severity": "minor", "explanation": "new one"},
    ]
    (outcome,), _ = run_review(pr, tmp_path, [finish("comment", second)], post=True)
    assert len(fake.calls("POST", r"/pulls/1/reviews$")) == 1 and len(fake.store.reviews) == 1
    assert outcome.posted.updated and outcome.posted.n_deleted == 1
    comments = {(c["line"], c["body"].split("\n")[0]) for c in fake.store.review_comments}
    assert comments == {(6, "**major**: second take"), (9, "**minor**: new one")}


def test_fix_writes_follow_up_task_on_same_branch_until_round_bound(pr: GitHubRepo, tmp_path: Path) -> None:
    """Blocking findings become fix tasks on agent/fix-app; the third round is refused by the bound of 2."""
    blocking = [
        finish(
            "request_changes", [{"file": "app.py", "line": 6, "severity": "blocking", "explanation": "bug"}]
        )
    ]
    files = []
    for _ in range(3):
        (outcome,), _ = run_review(pr, tmp_path, blocking, fix=True)
        files.append(outcome.fix_file)
    assert files[0].endswith("fix-app-fix1.md") and files[1].endswith("fix-app-fix2.md") and files[2] is None
    task = load_task_file(Path(files[0]))
    assert task.branch == "agent/fix-app" and task.paths == ["app.py"] and "bug" in task.instructions
    assert "round bound reached" in outcome.fix.reason


def test_no_blocking_findings_write_no_fix_task(pr: GitHubRepo, tmp_path: Path) -> None:
    """Minor findings never create a fix task."""
    turns = [finish("comment", [{"file": "app.py", "line": 6, "severity": "minor", "explanation": "meh"}])]
    (outcome,), _ = run_review(pr, tmp_path, turns, fix=True)
    assert outcome.fix_file is None and not (tmp_path / "tasks").exists()


def test_large_diff_is_split_and_skipped_files_are_named() -> None:
    """Patches pack into chunks under the budget; a binary file and an oversized hunk are named as skipped."""
    small = "@@ -1,1 +1,2 @@\n a\n+b\n"
    huge = "@@ -1,1 +1,2 @@\n a\n+" + "x" * 5000 + "\n"
    files = [FileDiff(f"f{i}.py", "modified", small) for i in range(40)]
    files += [
        FileDiff("logo.png", "added", None),
        FileDiff("big.py", "modified", small + huge.replace("-1,1", "-9,1")),
    ]
    chunks, reviewed, skipped = split_diff(files, 2000)
    assert len(chunks) > 1 and all(len(c) <= 2000 for c in chunks)
    assert sum(c.count("diff --git") for c in chunks) == 41  # 40 files + the fitting hunk of big.py
    assert {s.file for s in skipped} == {"logo.png", "big.py"} and "big.py" in reviewed


def test_every_chunk_is_reviewed_and_verdicts_merge(pr: GitHubRepo, fake: FakeGitHub, tmp_path: Path) -> None:
    """Each chunk is one model call; one chunk asking for changes makes the verdict request_changes."""
    fake.set_files(
        1, [FileDiff(f"f{i}.py", "modified", "@@ -1 +1,2 @@\n a\n+" + "y" * 900).__dict__ for i in range(6)]
    )
    model = ScriptedModel([finish("approve", []), finish("request_changes", []), finish("approve", [])])
    tasks = DictTasks(tmp_path)
    config = GitHubConfig(review_chunk_chars=2000)
    (outcome,) = review_prs(
        pr, ["1"], model=model, tasks=tasks, config=config, root=tmp_path, tasks_dir=tmp_path
    )
    assert model.n_calls == outcome.report.n_chunks == 3 and outcome.report.verdict == "request_changes"


@pytest.mark.parametrize(
    ("text", "verdict", "n_findings"),
    [
        ('Here it is: {"verdict": "approve", "findings": []}', "approve", 0),
        (
            '```json\n{"verdict": "request_changes", "findings": [{"file": "a", "explanation": "x"}]}\n```',
            "request_changes",
            1,
        ),
        ("I could not decide.", "comment", 0),
        (
            '{"verdict": "maybe", "findings": [{"file": "a"}, {"file": "b", "explanation": "ok"}]}',
            "comment",
            1,
        ),
    ],
)
def test_parse_turn_tolerates_text_and_bad_findings(text: str, verdict: str, n_findings: int) -> None:
    """JSON in plain text is accepted; unknown verdicts and malformed findings degrade, never crash."""
    turn = ModelTurn(message=Message(role=Role.ASSISTANT, text=text))
    got_verdict, findings, _ = parse_turn(turn)
    assert (got_verdict, len(findings)) == (verdict, n_findings)


def test_report_findings_tool_arguments_are_accepted() -> None:
    """A structured `report_findings` call with the fields as arguments works like `finish`."""
    args = {
        "verdict": "comment",
        "findings": [{"file": "a.py", "line": 3, "severity": "nit", "explanation": "x"}],
    }
    turn = ModelTurn(
        message=Message(
            role=Role.ASSISTANT, tool_calls=[ToolCall(id="1", name="report_findings", arguments=args)]
        )
    )
    verdict, findings, _ = parse_turn(turn)
    assert verdict == "comment" and findings[0].line == 3


def test_review_command_posts_once_and_prints_json(
    pr: GitHubRepo, source: Path, fake: FakeGitHub, gh_config: GitHubConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run-agents review 1 --post --json` uses `review_model`, posts one review and reports it."""
    script = source.parent / "review.json"
    findings = [{"file": "app.py", "line": 9, "severity": "major", "explanation": "mul lacks a test"}]
    script.write_text(json.dumps({"turns": [finish("comment", findings)]}))
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    monkeypatch.setenv("AGENT_RUNNER_GITHUB", gh_config.model_dump_json())
    monkeypatch.setenv(
        "AGENT_RUNNER_REVIEW_MODEL", f"scripted:{script}"
    )  # review_model, not the author's model
    args = ["--root", str(source), "review", "1", "--post", "--json"]
    result = CliRunner().invoke(get_app(), args)
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.output)
    assert (
        report["verdict"] == "comment"
        and report["findings"][0]["line"] == 9
        and report["task_id"] == "fix-app"
    )
    assert report["posted"]["n_inline"] == 1 and len(fake.store.reviews) == 1
    assert pr.status(1).review_state == "commented"

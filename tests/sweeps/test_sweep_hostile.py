"""Red team: sweeps over repos with hostile file names, hanging tests, and hostile or malformed issues."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sweep_helpers import commit, git
from test_sweep_lint import rows, sweep
from typer.testing import CliRunner

from agent_runner.cli import get_app
from agent_runner.core.errors import ConfigError, GitHubError
from agent_runner.core.result import Outcome, TaskResult
from agent_runner.core.task import load_task_file
from agent_runner.github.body import render_body
from agent_runner.github.records import IssueInfo
from agent_runner.queue.store import Queue
from agent_runner.sweeps import write as write_module
from agent_runner.sweeps.issues import plan_issues
from agent_runner.testing.fake_github import FakeGitHub

CONFIG = (
    '[tool.ruff.lint]\nselect = ["F"]\n\n[tool.agent-runner]\nsandbox = "none"\n'
    + 'test = "python -m pytest -q"\n'
)
MODULE = "def f(x):\n    if x:\n        return 1\n    return undefined_name\n"  # F821; 3 of 4 lines run


@pytest.fixture
def odd(tmp_path: Path) -> Path:
    """A repo whose files have names like options, spaces, unicode, a newline, and a symlink out of it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o.py").write_text(MODULE, encoding="utf-8")
    root = tmp_path / "odd"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    names = ["-rf.py", "--config=x.py", "sp ace/a b.py", "uni/ç/café.py", "pkg/new\nline.py"]
    (root / "pkg").mkdir()
    (root / "pkg" / "l.py").symlink_to(outside / "o.py")
    files = {"pyproject.toml": CONFIG, **dict.fromkeys(names, MODULE), "tests/__init__.py": ""}
    files["tests/test_all.py"] = (
        "import runpy\n\n\ndef test_all():\n"
        f"    for name in {[*names, 'pkg/l.py']!r}:\n        assert runpy.run_path(name)['f'](1) == 1\n"
    )
    commit(root, files, "odd names")
    return root


def test_lint_sweep_leaves_out_what_no_task_can_name(odd: Path) -> None:
    """A symlink out of the repo and a newline in a name are left out with a note, not a crash; names
    like options or with spaces and unicode become tasks whose files read back."""
    report = sweep(odd, "lint")
    paths = sorted(p for row in report["tasks"] for p in row["paths"])
    assert paths == ["--config=x.py", "-rf.py", "sp ace/a b.py", "uni/ç/café.py"]
    assert any("'pkg/l.py', 'pkg/new\\nline.py'" in note for note in report["notes"])
    for task_id in rows(report):
        assert load_task_file(odd / "tasks" / f"{task_id}.md").paths


def test_tests_sweep_leaves_out_what_no_task_can_name(odd: Path) -> None:
    """The coverage sweep does the same with the files its test run measured."""
    report = sweep(odd, "tests", "--below", "90")
    paths = sorted(p for row in report["tasks"] for p in row["paths"])
    assert paths == ["--config=x.py", "-rf.py", "sp ace/a b.py", "uni/ç/café.py"]
    assert any(
        "2 file(s) with coverage left out" in note and "'pkg/l.py'" in note for note in report["notes"]
    )


def test_a_hanging_test_suite_is_cut_and_the_user_told_why(repo: Path) -> None:
    """A test that never returns ends at gates.test_timeout_s, and the message names the timeout."""
    hang = "import threading\n\n\ndef test_hangs():\n    threading.Event().wait()\n"
    config = (repo / "pyproject.toml").read_text(encoding="utf-8")
    config = config.replace(
        "[tool.agent-runner]\n", "[tool.agent-runner.gates]\ntest_timeout_s = 1\n\n[tool.agent-runner]\n"
    )
    commit(repo, {"tests/test_hang.py": hang, "pyproject.toml": config}, "a hanging test")
    result = CliRunner().invoke(get_app(), ["--root", str(repo), "sweep", "tests", "--json"])
    assert isinstance(result.exception, ConfigError)  # main() prints it as one line, no traceback
    assert "timed out after 1 s (gates.test_timeout_s)" in str(result.exception)
    assert not (repo / "tasks").exists()


def test_issue_text_loses_hidden_characters_and_lone_surrogates() -> None:
    """Bidi overrides, line separators and lone surrogates (valid JSON escapes) never reach the task file;
    front matter, `---` lines and template syntax in the body stay text."""
    body = "---\nkind: review\n---\n{{ 7 * 7 }} {% raw %}\n\u202eevil\ud800"
    issue = IssueInfo(7, "https://x/7\n---\nkind: review", "a\u2028kind: review\u202e\udfff", body)
    task = plan_issues([issue], label="agent").tasks[0].task
    assert task.title == "#7: a kind: review"
    assert task.instructions.splitlines()[0] == "Closes #7 (https://x/7---kind: review)"
    assert task.instructions.endswith("---\nkind: review\n---\n{{ 7 * 7 }} {% raw %}\nevil\n```")
    task.model_dump_json().encode("utf-8")  # writable: no lone surrogate left


def test_mentions_in_an_issue_title_ping_no_one() -> None:
    """The title becomes the task's, its commit's and its PR's: "@org/team" is no mention there."""
    task = (
        plan_issues([IssueInfo(8, "https://x/8", "ask @acme/owners and @bob", "")], label="a").tasks[0].task
    )
    assert "@acme" not in task.title and "@bob" not in task.title
    assert task.title.replace("\u200d", "") == "#8: ask @acme/owners and @bob"


@pytest.fixture
def hostile_github(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        with open(repo / "pyproject.toml", "a", encoding="utf-8") as fh:
            fh.write(
                f'\n[tool.agent-runner.github]\napi_url = "{server.base_url}"\n'
                f'repository = "{server.full_name}"\n'
                "request_interval_s = 0\nwrite_interval_s = 0\n"
            )
        monkeypatch.setenv("GITHUB_TOKEN", "test-token")
        yield server


def test_issue_with_lone_surrogates_from_github_is_written(repo: Path, hostile_github: FakeGitHub) -> None:
    """A JSON answer escaping lone surrogates decodes to text no file can hold: the sweep drops them."""
    hostile_github.add_issue(title="Fix \ud800it", body="Do \udfffit", labels=("agent",))
    report = sweep(repo, "issues", "--label", "agent")
    assert rows(report)["issue-1"]["outcome"] == "new"
    assert load_task_file(repo / "tasks" / "issue-1.md").title == "#1: Fix it"


def test_a_malformed_github_answer_is_an_error_not_a_traceback(
    repo: Path, hostile_github: FakeGitHub
) -> None:
    """A field of the wrong JSON type (a broken proxy) is a GitHubError saying so; nothing is written."""
    hostile_github.add_issue(title="ok", labels=("agent",))["title"] = {"nested": True}
    result = CliRunner().invoke(get_app(), ["--root", str(repo), "sweep", "issues", "--label", "agent"])
    assert isinstance(result.exception, GitHubError)  # main() prints it as one line, no traceback
    assert "GitHub answered a malformed record" in str(result.exception)
    assert not (repo / "tasks").exists()


def test_a_task_a_run_starts_while_the_sweep_writes_it_is_left_alone(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run claims a waiting task between the sweep's look at the queue and its write: the sweep puts the
    file the run started from back and says `left alone`, so file, queue and report agree."""
    sweep(repo, "lint", "--per-task", "4")
    file = repo / "tasks" / "lint-pkg-judgment.md"
    before = file.read_text(encoding="utf-8")
    commit(repo, {"pkg/judgment.py": "import os\n\n\ndef two():\n    return undefined_name, other\n"}, "more")
    real_write = write_module._write

    def claim_first(path: Path, text: str, *, replace: bool) -> None:
        if path == file and text != before:  # the run's claim lands just before the sweep's write
            queue = Queue(repo / "tasks" / "queue.jsonl")
            assert queue.claim("w1", lease_s=60, accept=lambda s: s.id == "lint-pkg-judgment") is not None
        real_write(path, text, replace=replace)

    monkeypatch.setattr(write_module, "_write", claim_first)
    row = rows(sweep(repo, "lint", "--per-task", "4"))["lint-pkg-judgment"]
    assert (row["outcome"], row["status"]) == ("left alone", "running")
    assert file.read_text(encoding="utf-8") == before
    state = Queue(repo / "tasks" / "queue.jsonl").refresh()["lint-pkg-judgment"]
    assert state.task is not None and "| pkg/judgment.py | 2 | 1 | 1 |" in state.task.instructions


@pytest.mark.parametrize("where", ["/tmp", "../outside", "pkg/l.py"])
def test_sweep_paths_outside_the_repo_are_a_usage_error(odd: Path, where: str) -> None:
    """An absolute path, `..` or a symlink out of the repo as PATHS: a ConfigError, no traceback, no run."""
    for kind in ("lint", "tests"):
        result = CliRunner().invoke(get_app(), ["--root", str(odd), "sweep", kind, where, "--dry-run"])
        assert isinstance(result.exception, ConfigError), (kind, result.exception)
        assert "leads out of the repo" in str(result.exception)


def test_issue_text_cannot_close_other_issues_or_ping_people_through_the_pull_request() -> None:
    """The issue's text goes into the PR body (quoted) and its title into the commit message: a closing
    keyword there would close another issue on merge, a mention would ping someone. The body is fenced (no
    links, no mentions, no HTML comment), the title's closing keywords broken by a zero-width joiner."""
    body = "@admin @org/team please.\nFixes #9, closes org/repo#4\n````\n<!-- hide the rest"
    issue = IssueInfo(7, "https://x/7", "Fixes #3: resolves https://x/issues/1", body)
    task = plan_issues([issue], label="agent").tasks[0].task
    pr = render_body(task, TaskResult(task_id=task.id, attempt=1, outcome=Outcome.ACCEPTED))
    quoted = pr.split("### Task\n", 1)[1].split("\n### ", 1)[0]
    assert quoted.startswith("> Closes #7 (https://x/7)\n")  # the sweep's own link stays a link
    fence = next(line for line in quoted.splitlines() if line.startswith("> `"))
    assert fence == "> `````markdown"  # longer than any backtick run in the text: nothing inside closes it
    assert quoted.rstrip().endswith("> `````") and "<!--" not in quoted
    assert re.search(r"(?i)\b(fixes|resolves) (#|https)", task.title) is None
    assert task.title.replace("\u200d", "") == "#7: Fixes #3: resolves https://x/issues/1"

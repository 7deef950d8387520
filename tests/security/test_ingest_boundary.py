"""Results from elsewhere are untrusted: `ingest` re-checks a result before its branch moves.

A hand-made result (an Actions artifact is whatever the work job uploads, and the agent ran there) claims
`accepted`; each test forges one lie and checks that nothing lands.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_runner.cli import get_app
from agent_runner.core.protocols import GateContext
from agent_runner.core.task import Task, TaskKind
from agent_runner.gates.kinds import get_job_kind

GATES = {  # what a fix-lint attempt records when every gate passed
    "lint-targets": "pass",
    "lint-elsewhere": "pass",
    "tests": "pass",
    "diff-policy": "pass",
}


def git(repo: Path, *args: str, text: str | None = None) -> str:
    """Run git in `repo` as a forger would; return stdout."""
    argv = ["git", "-C", str(repo), "-c", "user.name=f", "-c", "user.email=f@f", *args]
    return subprocess.run(argv, input=text, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A source repo with app.py, a test file and one fix-lint task."""
    root = tmp_path / "repo"
    (root / "tasks").mkdir(parents=True)
    (root / "app.py").write_text("import os\n\n\ndef f():\n    return 1\n")
    (root / "test_app.py").write_text("from app import f\n\n\ndef test_f():\n    assert f() == 1\n")
    (root / "tasks" / "fix-app.md").write_text("---\nkind: fix-lint\npaths: [app.py]\n---\nFix app.py.\n")
    (root / "pyproject.toml").write_text('[tool.agent-runner]\nsandbox = "none"\ntest = "true"\n')
    (root / ".gitignore").write_text(".agent-runner/\n")
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "init")
    return root


def _forge(repo: Path, tmp_path: Path, commits: list[dict[str, str | None]], *, base: str = "main") -> Path:
    """Clone `repo`, make `commits` (path -> text, None deletes) on agent/fix-app from `base`, bundle them."""
    forger = tmp_path / "forger"
    if not forger.exists():
        subprocess.run(["git", "clone", "-q", str(repo), str(forger)], check=True)
    git(forger, "checkout", "-q", "-B", "agent/fix-app", base)
    for files in commits:
        for name, content in files.items():
            path = forger / name
            if content is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)
        git(forger, "add", "-A")
        git(forger, "commit", "-q", "-m", "work")
    results = tmp_path / "results"
    results.mkdir(exist_ok=True)
    git(forger, "bundle", "create", "-q", str(results / "fix-app.bundle"), "agent/fix-app", "^main")
    return forger


def _result(repo: Path, tmp_path: Path, forger: Path, **fields: object) -> dict[str, object]:
    """Write a hand-made accepted result beside the bundle; ingest it; return the ingest row."""
    record = {
        "task_id": "fix-app", "attempt": 1, "outcome": "accepted", "branch": "agent/fix-app",
        "base_commit": git(repo, "rev-parse", "main"),
        "head_commit": git(forger, "rev-parse", "agent/fix-app"),
        "gates": [{"name": name, "verdict": verdict} for name, verdict in GATES.items()], **fields,
    }  # fmt: skip
    (tmp_path / "results" / "fix-app.json").write_text(json.dumps(record))
    out = CliRunner().invoke(get_app(), ["--root", str(repo), "ingest", str(tmp_path / "results"), "--json"])
    assert out.exit_code == 0, out.output
    (row,) = json.loads(out.stdout)
    return row


def _assert_nothing_landed(repo: Path, row: dict[str, object], reason: str) -> None:
    assert row["outcome"] == "rejected" and reason in str(row["note"]), row
    assert git(repo, "branch", "--list", "agent/*") == ""


def test_result_without_gate_records_does_not_land(repo: Path, tmp_path: Path) -> None:
    """Attack 4: `accepted` with `gates: []` and a bundle that deletes the tests and adds a workflow."""
    forger = _forge(repo, tmp_path, [{"test_app.py": None, ".github/workflows/x.yml": "on: push\n"}])
    row = _result(repo, tmp_path, forger, gates=[])
    _assert_nothing_landed(
        repo, row, "no record of the gate(s) lint-targets, lint-elsewhere, tests, diff-policy"
    )


def test_result_with_a_failed_gate_does_not_land(repo: Path, tmp_path: Path) -> None:
    """A result that says `accepted` while one of its own gate records failed."""
    forger = _forge(repo, tmp_path, [{"app.py": "def f():\n    return 1\n"}])
    gates = [{"name": name, "verdict": "fail" if name == "tests" else "pass"} for name in GATES]
    _assert_nothing_landed(repo, _result(repo, tmp_path, forger, gates=gates), "gate(s) tests did not pass")


def test_result_with_hidden_history_does_not_land(repo: Path, tmp_path: Path) -> None:
    """Two commits (the first deletes the tests, the second restores them): only one commit may land."""
    test_file = (repo / "test_app.py").read_text()
    forger = _forge(repo, tmp_path, [{"test_app.py": None}, {"test_app.py": test_file, "app.py": "x = 1\n"}])
    _assert_nothing_landed(repo, _result(repo, tmp_path, forger), "not just its base")


def test_result_on_a_forged_base_does_not_land(repo: Path, tmp_path: Path) -> None:
    """The result claims a base the bundle brings itself (a commit of no branch of the repo)."""
    forger = _forge(repo, tmp_path, [{".github/workflows/x.yml": "on: push\n"}, {"app.py": "x = 1\n"}])
    fake_base = git(forger, "rev-parse", "agent/fix-app^")
    row = _result(repo, tmp_path, forger, base_commit=fake_base)
    _assert_nothing_landed(repo, row, "is not a commit of the base branch")


def test_an_honest_looking_result_lands_once(repo: Path, tmp_path: Path) -> None:
    """The control: one commit on main with every gate record passed lands as agent/fix-app."""
    forger = _forge(repo, tmp_path, [{"app.py": "def f():\n    return 1\n"}])
    row = _result(repo, tmp_path, forger)
    assert row["outcome"] == "accepted" and row["status"] in ("finished", "unpublished"), row
    assert git(repo, "rev-parse", "agent/fix-app") == git(forger, "rev-parse", "agent/fix-app")


@pytest.mark.parametrize("kind", ["fix-lint", "write-tests", "change", "review"])
def test_each_kind_names_the_gates_it_builds(kind: str, tmp_path: Path) -> None:
    """A landing checks the records by `gate_names`: they must be exactly the gates the kind runs."""
    task = Task(id="t", kind=TaskKind(kind), paths=["app.py"])
    job_kind = get_job_kind(kind)
    built = job_kind.build_gates(GateContext(tmp_path, task, "0" * 40, "true"))
    assert [gate.name for gate in built] == list(job_kind.gate_names)

"""The cheap gates: lint only on touched Python files, one `git diff` per staging, one staging per round."""

from __future__ import annotations

from pathlib import Path

import pytest
from run_helpers import git

from agent_runner.core.protocols import GateContext
from agent_runner.core.result import GateVerdict
from agent_runner.core.task import Task
from agent_runner.gates import ruff
from agent_runner.gates.ruff import TouchedLintGate
from agent_runner.gates.workdiff import show_files, snapshot, tree_id, work_diff

RUFF_CONFIG = '[tool.ruff]\nextend-exclude = ["generated"]\n[tool.ruff.lint]\nselect = ["F"]\n'


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repo with ruff config, a clean module, a module with one unused import, and an excluded folder."""
    root = tmp_path / "repo"
    (root / "generated").mkdir(parents=True)
    (root / "pyproject.toml").write_text(RUFF_CONFIG)
    (root / "clean.py").write_text("def f():\n    return 1\n")
    (root / "dirty.py").write_text("import os\n\n\ndef g():\n    return 2\n")
    (root / "generated" / "gen.py").write_text("X = 1\n")
    (root / "notes.txt").write_text("notes\n")
    git(tmp_path, "init", "-q", "-b", "main", "--separate-git-dir", str(tmp_path / "repo.git"), "repo")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return root


def _check(repo: Path) -> tuple[GateVerdict, str, list[str]]:
    ctx = GateContext(repo, Task(id="t", kind="change"), git(repo, "rev-parse", "HEAD"), "true")
    gate = TouchedLintGate()
    result = gate.check(ctx, gate.baseline(ctx))
    return result.verdict, result.details, result.offending


def test_no_python_file_touched_runs_no_ruff(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A diff without Python files passes without starting ruff at all."""
    monkeypatch.setattr(ruff, "ruff_argv", lambda: pytest.fail("ruff was started"))
    (repo / "notes.txt").write_text("more notes\n")
    verdict, details, _ = _check(repo)
    assert verdict == GateVerdict.PASS and "ruff not run" in details


@pytest.mark.parametrize(
    ("path", "content", "verdict"),
    [
        ("clean.py", "import sys\n\n\ndef f():\n    return 1\n", GateVerdict.FAIL),  # worse than its base
        ("dirty.py", "import os\n\n\ndef g():\n    return 3\n", GateVerdict.PASS),  # as bad as before
        ("dirty.py", "def g():\n    return 2\n", GateVerdict.PASS),  # better
        ("new.py", "import json\n", GateVerdict.FAIL),  # a new file starts from zero
        ("generated/gen.py", "import json\n", GateVerdict.PASS),  # excluded by the repo's config
    ],
)
def test_touched_file_is_compared_with_its_base_version(
    repo: Path, path: str, content: str, verdict: GateVerdict
) -> None:
    """Each touched file is linted now and at the base commit (through stdin), with the repo's config."""
    (repo / path).write_text(content)
    got, details, offending = _check(repo)
    assert got == verdict, details
    if verdict == GateVerdict.FAIL:
        assert offending and offending[0].startswith(f"{path}:") and "F401" in offending[0]


def test_one_diff_reads_status_binary_and_lines(repo: Path) -> None:
    """work_diff's single `git diff` gives statuses, binary flags and line numbers, odd names included."""
    (repo / "dirty.py").write_text("import os\n\n\ndef g():\n    return 5\n")
    (repo / "notes.txt").unlink()
    (repo / "blob.bin").write_bytes(b"\x00\x01\x02binary")
    (repo / "with space.py").write_text("A = 1\n")
    diff = work_diff(repo, git(repo, "rev-parse", "HEAD"))
    assert {p: c.status for p, c in diff.files.items()} == {
        "blob.bin": "A", "dirty.py": "M", "notes.txt": "D", "with space.py": "A",
    }  # fmt: skip
    assert diff.files["blob.bin"].is_binary and not diff.files["dirty.py"].is_binary
    assert [(x.number, x.text) for x in diff.files["dirty.py"].added] == [(5, "    return 5")]
    assert [(x.number, x.text) for x in diff.files["dirty.py"].removed] == [(5, "    return 2")]
    assert [x.text for x in diff.files["notes.txt"].removed] == ["notes"]
    assert work_diff(repo, git(repo, "rev-parse", "HEAD")).files.keys() == diff.files.keys()


def test_show_files_reads_many_blobs_at_once(repo: Path) -> None:
    """One cat-file run returns each file's base text, None for missing paths and folders."""
    base = git(repo, "rev-parse", "HEAD")
    found = show_files(repo, base, ["clean.py", "missing.py", "generated", "dirty.py"])
    assert found == {
        "clean.py": "def f():\n    return 1\n", "missing.py": None, "generated": None,
        "dirty.py": "import os\n\n\ndef g():\n    return 2\n",
    }  # fmt: skip


def test_snapshot_stages_once_for_a_whole_round(repo: Path) -> None:
    """Inside a snapshot the gates see one staged tree and share one diff; outside, staging sees changes."""
    base = git(repo, "rev-parse", "HEAD")
    (repo / "clean.py").write_text("def f():\n    return 2\n")
    with snapshot(repo) as tree:
        (repo / "late.txt").write_text("written by the tests\n")
        assert tree_id(repo) == tree
        assert work_diff(repo, base) is work_diff(repo, base)
        assert work_diff(repo, base).paths() == ["clean.py"]
    assert tree_id(repo) != tree
    assert work_diff(repo, base).paths() == ["clean.py", "late.txt"]

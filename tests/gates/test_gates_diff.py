"""The diff policy on real git diffs: each anti-gaming rule fires on its edit and names the offending line."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from agent_runner.core.result import GateVerdict
from agent_runner.gates.diff import DiffPolicyGate, allow_key
from agent_runner.gates.workdiff import work_diff


def _append(path: str, text: str) -> Callable[[Path], None]:
    def edit(repo: Path) -> None:
        target = repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((target.read_text() if target.exists() else "") + text)

    return edit


def _delete(path: str) -> Callable[[Path], None]:
    return lambda repo: (repo / path).unlink()


def _write_bytes(path: str, data: bytes) -> Callable[[Path], None]:
    return lambda repo: (repo / path).write_bytes(data)


CASES = {
    "noqa": (_append("calc/core.py", "\nX = 1  # noqa: E501\n"), "[noqa] calc/core.py:15"),
    "type-ignore": (
        _append("calc/core.py", "\nY: int = 'a'  # type: ignore\n"),
        "[type-ignore] calc/core.py",
    ),
    "pragma": (
        _append("calc/core.py", "\nif X:  # pragma: no cover\n    pass\n"),
        "[pragma-no-cover] calc/core.py",
    ),
    "skip": (
        _append(
            "tests/test_calc_core.py",
            "\n\nimport pytest\n\n\n@pytest.mark.skip\ndef test_x():\n    assert 0\n",
        ),
        "[skip] tests/test_calc_core.py",
    ),
    "xfail": (
        _append("tests/test_calc_core.py", "\npytestmark = pytest.mark.xfail\n"),
        "[skip] tests/test_calc_core.py",
    ),
    "ruff.toml": (_append("ruff.toml", "line-length = 200\n"), "[lint-config] ruff.toml"),
    "pytest ini": (
        _append("pyproject.toml", '\n[tool.coverage.run]\nomit = ["calc/stats.py"]\n'),
        "[test-config] pyproject.toml [tool.coverage]",
    ),
    "setup.cfg flake8": (
        _append("setup.cfg", "[flake8]\nmax-line-length = 200\n"),
        "[lint-config] setup.cfg [flake8]",
    ),
    "tox pytest": (
        _append("tox.ini", "[pytest]\naddopts = -k 'not slow'\n"),
        "[test-config] tox.ini [pytest]",
    ),
    "conftest addopts": (
        _append("tests/conftest.py", "collect_ignore = ['test_calc_core.py']\n"),
        "[test-config] tests/conftest.py:1",
    ),
    "workflow": (_append(".github/workflows/ci.yml", "on: push\n"), "[ci] .github/workflows/ci.yml"),
    "deleted test file": (_delete("tests/test_calc_core.py"), "[delete-tests] tests/test_calc_core.py"),
    "binary": (_write_bytes("calc/blob.bin", b"\x00\x01\x02" * 10), "[binary] calc/blob.bin"),
    "large file": (_append("calc/big.txt", "x" * 2000 + "\n"), "[large-files] calc/big.txt"),
    "github token": (
        _append("calc/core.py", f"\nTOKEN = 'ghp_{'a1' * 18}'\n"),
        "[secrets] calc/core.py:15: ghp_a1a",
    ),
    "anthropic key": (_append("calc/keys.txt", f"sk-ant-api03-{'Zz9' * 10}\n"), "[secrets] calc/keys.txt:1"),
    "openai key": (_append("calc/keys.txt", f"OPENAI=sk-proj-{'Ab1' * 10}\n"), "[secrets] calc/keys.txt:1"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_policy_rejects(case: str, calc_repo: Path, make_ctx) -> None:
    """Each gaming edit is rejected and the report names the rule and the offending place."""
    edit, expected = CASES[case]
    ctx = make_ctx(calc_repo, kind="change")
    ctx = replace(ctx, settings=ctx.settings.model_copy(update={"max_file_bytes": 1000}))
    edit(calc_repo)
    result = DiffPolicyGate().check(ctx, None)
    assert result.verdict == GateVerdict.FAIL
    assert any(line.startswith(expected) for line in result.offending), result.offending
    assert not any("a1a1a1a1a1" in line or "Zz9Zz9Zz9" in line for line in result.offending)


def test_policy_accepts_a_plain_code_change(calc_repo: Path, make_ctx) -> None:
    """An ordinary edit with a new test passes the policy."""
    _append("calc/core.py", "\n\ndef sub(a, b):\n    return a - b\n")(calc_repo)
    _append("tests/test_calc_core.py", "\n\ndef test_sub():\n    assert add(1, -1) == 0\n")(calc_repo)
    result = DiffPolicyGate().check(make_ctx(calc_repo, kind="change"), None)
    assert result.verdict == GateVerdict.PASS, result.offending


def test_moved_test_is_not_a_deletion(calc_repo: Path, make_ctx) -> None:
    """Moving a test file to a new name keeps its test functions, so nothing counts as deleted."""
    source = calc_repo / "tests/test_calc_core.py"
    (calc_repo / "tests/test_core_moved.py").write_text(source.read_text())
    source.unlink()
    result = DiffPolicyGate().check(make_ctx(calc_repo, kind="change"), None)
    assert [line for line in result.offending if "test function removed" in line] == []


def test_work_diff_lists_line_numbers(calc_repo: Path) -> None:
    """The staged diff records added lines with their new line numbers and removed lines with old ones."""
    core = calc_repo / "calc/core.py"
    core.write_text(core.read_text().replace("return a + b", "return b + a"))
    base = subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=calc_repo, text=True).strip()
    change = work_diff(calc_repo, base).files["calc/core.py"]
    assert change.status == "M"
    assert [(x.number, x.text) for x in change.added] == [(6, "    return b + a")]
    assert [(x.number, x.text) for x in change.removed] == [(6, "    return a + b")]


def test_allow_keys_normalize() -> None:
    """Allow entries are matched loosely: 'type: ignore' and '# noqa' name the same rules as their keys."""
    assert [allow_key(a) for a in ("type: ignore", "# noqa", "pragma: no cover")] == [
        "type-ignore",
        "noqa",
        "pragma-no-cover",
    ]


def test_words_ending_in_sk_are_not_keys(calc_repo: Path, make_ctx) -> None:
    """Identifiers such as task-<long id> or disk-<serial> do not trip the secret check."""
    _append("calc/ids.txt", f"task-{'abcdefghij' * 3}\ndisk-{'0123456789' * 3}\n")(calc_repo)
    result = DiffPolicyGate().check(make_ctx(calc_repo, kind="change"), None)
    assert result.verdict == GateVerdict.PASS, result.offending

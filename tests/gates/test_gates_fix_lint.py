"""fix-lint and change gates with real ruff and pytest on the calc fixture project."""

from __future__ import annotations

import subprocess
from pathlib import Path

from agent_runner.config.runner import RunnerConfig
from agent_runner.core.result import GateVerdict

FIXED_GEOMETRY = '''"""Geometry helpers: these violations need judgment (no safe automatic fix)."""


def scale(points, factor, seen=None):
    """Scale each (x, y) point by factor, remembering the factors seen."""
    seen = [] if seen is None else seen
    seen.append(factor)
    return [(x * factor, y * factor) for x, y in points]


def longest(lines):
    """Return the length of the longest line."""
    best = 0
    for line in lines:
        if len(line) > best:
            best = len(line)
    return best
'''


def _verdicts(results: dict) -> dict[str, str]:
    return {name: r.verdict.value for name, r in results.items()}


def test_proper_lint_fix_is_accepted(calc_repo: Path, make_ctx, gate_run) -> None:
    """A real fix of the non-auto-fixable violations passes every fix-lint gate."""
    run = gate_run(make_ctx(calc_repo, kind="fix-lint", paths=["calc/geometry.py"]))
    assert run.prestep.needs_agent
    assert {v["rule"] for v in run.prestep.prompt_vars["violations"]} == {"B006", "E741"}
    (calc_repo / "calc/geometry.py").write_text(FIXED_GEOMETRY)
    results = run.check()
    assert set(_verdicts(results).values()) == {"pass"}
    assert results["lint-targets"].before == {"violations": 2}
    assert results["lint-targets"].after == {"violations": 0}


def test_only_auto_fixable_needs_no_agent(calc_repo: Path, make_ctx, gate_run) -> None:
    """The prestep's ruff --fix clears auto-fixable violations and reports that no agent is needed."""
    run = gate_run(make_ctx(calc_repo, kind="fix-lint", paths=["calc/fmt.py"]))
    assert not run.prestep.needs_agent
    assert run.prestep.prompt_vars["n_fixed"] >= 4
    results = run.check()
    assert set(_verdicts(results).values()) == {"pass"}
    assert "import sys" not in (calc_repo / "calc/fmt.py").read_text()


def test_added_noqa_is_rejected(calc_repo: Path, make_ctx, gate_run) -> None:
    """Silencing violations with # noqa passes lint but fails the diff policy, with the lines shown."""
    run = gate_run(
        make_ctx(calc_repo, kind="fix-lint", paths=["calc/geometry.py"]), "lint-targets", "diff-policy"
    )
    path = calc_repo / "calc/geometry.py"
    text = (
        path.read_text()
        .replace("seen=[]):", "seen=[]):  # noqa: B006")
        .replace("for l in", "for l in  # noqa")
    )
    path.write_text(text.replace("for l in  # noqa lines:", "for l in lines:  # noqa: E741"))
    results = run.check()
    assert results["lint-targets"].verdict == GateVerdict.PASS
    policy = results["diff-policy"]
    assert policy.verdict == GateVerdict.FAIL
    assert any("[noqa] calc/geometry.py:4" in line and "B006" in line for line in policy.offending)


def test_noqa_allowed_only_when_config_permits(calc_repo: Path, make_ctx, gate_run) -> None:
    """A task's allow: [noqa] waives the check only if the runner config's allow lists noqa too."""
    for config_allow, expected in (([], GateVerdict.FAIL), (["noqa"], GateVerdict.PASS)):
        ctx = make_ctx(
            calc_repo,
            kind="fix-lint",
            paths=["legacy/old.py"],
            allow=["noqa"],
            config=RunnerConfig(allow=config_allow),
        )
        run = gate_run(ctx, "diff-policy")
        path = calc_repo / "legacy/old.py"
        path.write_text(path.read_text().replace("l = text.strip()", "l = text.strip()  # noqa: E741"))
        results = run.check()
        assert results["diff-policy"].verdict == expected, results["diff-policy"].details
        if expected == GateVerdict.FAIL:
            assert "runner config's `allow` does not" in results["diff-policy"].details
        subprocess.run(["git", "checkout", "-q", "--", "."], cwd=calc_repo, check=True)
        subprocess.run(["git", "reset", "-q"], cwd=calc_repo, check=True)


def test_weakened_ruff_config_is_rejected(calc_repo: Path, make_ctx, gate_run) -> None:
    """Ignoring the rules in [tool.ruff] makes the lint gate green but the diff policy rejects it."""
    run = gate_run(
        make_ctx(calc_repo, kind="fix-lint", paths=["calc/geometry.py"]), "lint-targets", "diff-policy"
    )
    pyproject = calc_repo / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"UP"]', '"UP"]\nignore = ["B006", "E741"]'))
    results = run.check()
    assert results["lint-targets"].verdict == GateVerdict.PASS
    assert results["diff-policy"].verdict == GateVerdict.FAIL
    assert any(
        "[lint-config] pyproject.toml [tool.ruff]" in line for line in results["diff-policy"].offending
    )


def test_new_violation_elsewhere_is_rejected(calc_repo: Path, make_ctx, gate_run) -> None:
    """Fixing the targets while adding a violation in another file fails lint-elsewhere."""
    ctx = make_ctx(calc_repo, kind="fix-lint", paths=["calc/geometry.py"])
    run = gate_run(ctx, "lint-targets", "lint-elsewhere")
    (calc_repo / "calc/geometry.py").write_text(FIXED_GEOMETRY)
    core = calc_repo / "calc/core.py"
    core.write_text("import os\n" + core.read_text())
    results = run.check()
    assert results["lint-targets"].verdict == GateVerdict.PASS
    assert results["lint-elsewhere"].verdict == GateVerdict.FAIL
    assert "calc/core.py:1:8: F401 `os` imported but unused" in results["lint-elsewhere"].offending
    assert results["lint-elsewhere"].after["new"] == 2  # F401 and the unsorted import block


def test_change_that_breaks_a_passing_test_is_rejected(calc_repo: Path, make_ctx, gate_run) -> None:
    """A change kind whose edit makes a baseline-passing test fail is rejected, naming the test."""
    run = gate_run(make_ctx(calc_repo, kind="change", instructions="return 0 on division by zero"))
    core = calc_repo / "calc/core.py"
    core.write_text(core.read_text().replace("return None", "return 0"))
    results = run.check()
    assert results["non-empty-diff"].verdict == GateVerdict.PASS
    assert results["tests"].verdict == GateVerdict.FAIL
    assert results["tests"].offending == ["tests.test_calc_core::test_divide_by_zero (passed at baseline)"]
    assert results["tests"].before == {"passed": 3, "failed": 0}


def test_empty_change_is_rejected(calc_repo: Path, make_ctx, gate_run) -> None:
    """A change job that changes nothing fails the non-empty-diff gate."""
    run = gate_run(make_ctx(calc_repo, kind="change", instructions="anything"))
    results = run.check()
    assert results["non-empty-diff"].verdict == GateVerdict.FAIL
    assert results["tests"].verdict == GateVerdict.PASS


def test_allow_partial_accepts_strictly_fewer(calc_repo: Path, make_ctx, gate_run) -> None:
    """With allow_partial, fixing one of two violations passes lint-targets; without it, it fails."""
    for allow_partial, expected in ((True, GateVerdict.PASS), (False, GateVerdict.FAIL)):
        ctx = make_ctx(calc_repo, kind="fix-lint", paths=["calc/geometry.py"], allow_partial=allow_partial)
        run = gate_run(ctx, "lint-targets")
        path = calc_repo / "calc/geometry.py"
        original = path.read_text()
        path.write_text(
            FIXED_GEOMETRY.replace("for line in lines", "for l in lines").replace("len(line)", "len(l)")
        )
        result = run.check()["lint-targets"]
        assert result.verdict == expected
        assert (result.before, result.after) == ({"violations": 2}, {"violations": 1})
        path.write_text(original)


def test_format_flag_runs_ruff_format(calc_repo: Path, make_ctx, gate_run, commit) -> None:
    """With format: true the prestep also runs ruff format on the targets."""
    path = calc_repo / "calc/core.py"
    path.write_text(path.read_text() + "\n\ndef mul(a,b):\n    return a*b\n")
    commit(calc_repo, "unformatted")
    run = gate_run(make_ctx(calc_repo, kind="fix-lint", paths=["calc/core.py"], format=True), "lint-targets")
    assert "def mul(a, b):\n    return a * b\n" in path.read_text()
    assert not run.prestep.needs_agent

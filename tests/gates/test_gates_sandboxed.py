"""Under bubblewrap our outcome and coverage plugins still report; the mutation check runs tests confined."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from agent_runner.core.result import GateVerdict
from agent_runner.gates.mutants import MutationGate
from agent_runner.gates.outcomes import IdSource
from agent_runner.gates.pytest import run_tests
from agent_runner.worker.sandbox import get_sandbox, probe_bwrap

BWRAP = shutil.which("bwrap")
pytestmark = pytest.mark.skipif(
    BWRAP is None or probe_bwrap(BWRAP) is not None, reason="bubblewrap is not installed or cannot run here"
)
ESCAPING_TESTS = """from calc.stats import mean


def test_mean():
    open({outside!r}, "w").write("escaped")
    assert mean([1, 2, 3]) == 2
"""


def test_coverage_is_measured_inside_the_sandbox(calc_repo: Path, make_ctx) -> None:
    """Under bubblewrap the plugin and its reports live in the checkout's .git and still come back."""
    ctx = make_ctx(calc_repo, kind="write-tests", paths=["calc/core.py"])
    (calc_repo / ".git").unlink()  # as in an attempt: `.git` is the agent's folder (give_agent_git)
    (calc_repo / ".git").mkdir()
    ctx = replace(ctx, sandbox=get_sandbox("bwrap", checkout=calc_repo, network=False))
    report = run_tests(ctx, coverage_of=["calc/core.py"])
    assert report.coverage is not None and report.coverage["calc/core.py"].covered > 0
    assert report.passed and report.ids_from is IdSource.PLUGIN  # the outcome plugin loads there too


@pytest.mark.parametrize("is_sandboxed", [True, False])
def test_mutation_check_runs_new_tests_in_the_sandbox(calc_repo: Path, make_ctx, is_sandboxed: bool) -> None:
    """The agent's new tests cannot write outside the checkout during the mutation check (control: none)."""
    outside = Path("/var/tmp") / f"agent-runner-escape-{uuid.uuid4().hex}"
    ctx = make_ctx(calc_repo, kind="write-tests", paths=["calc/stats.py"])
    if is_sandboxed:
        ctx = replace(ctx, sandbox=get_sandbox("bwrap", checkout=calc_repo, network=False))
    (calc_repo / "tests/test_stats.py").write_text(ESCAPING_TESTS.format(outside=str(outside)))
    try:
        result = MutationGate().check(ctx, None)
        assert outside.exists() is not is_sandboxed
    finally:
        outside.unlink(missing_ok=True)
    assert (result.verdict == GateVerdict.FAIL) is is_sandboxed, result.details
    assert not list((calc_repo / ".git").glob("mutants-*"))  # the scratch copies are gone

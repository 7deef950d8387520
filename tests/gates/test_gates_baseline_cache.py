"""The per-machine baseline cache: a second task on the same base reuses the first one's measured baseline."""

from __future__ import annotations

import shutil
from pathlib import Path

from agent_runner.config.runner import RunnerConfig
from agent_runner.core.gate_settings import GatesConfig
from agent_runner.core.protocols import GateContext
from agent_runner.gates.pytest import SuiteRunner, TestReport, TestsGate
from agent_runner.repo.git import runner_git_dir


def suite_report(ctx: GateContext) -> TestReport:
    """Return the baseline a fresh write-tests suite runner measures (or reuses) for `ctx`."""
    return SuiteRunner(with_coverage=True).report(ctx)


def cached_config(cache: Path) -> RunnerConfig:
    """Return a config with the baseline cache on, in `cache`."""
    return RunnerConfig(gates=GatesConfig(baseline_cache=True, baseline_cache_dir=str(cache)))


def test_second_checkout_of_the_same_base_reuses_the_baseline(
    calc_repo: Path, make_ctx, tmp_path: Path
) -> None:
    """The same tree, command and targets in another checkout read the cached baseline, coverage included."""
    other = shutil.copytree(calc_repo, tmp_path / "other")
    shutil.copytree(runner_git_dir(calc_repo), runner_git_dir(other))  # a checkout's git dir is beside it
    (other / ".git").write_text(f"gitdir: {runner_git_dir(other)}\n")
    config = cached_config(tmp_path / "cache")
    first = suite_report(make_ctx(calc_repo, config=config, kind="write-tests", paths=["calc/core.py"]))
    ctx = make_ctx(other, config=config, kind="write-tests", paths=["calc/core.py"])
    second = suite_report(ctx)
    assert not first.is_cached and second.is_cached
    assert (second.passed, second.failed, second.coverage) == (first.passed, first.failed, first.coverage)
    result = TestsGate(SuiteRunner()).check(ctx, second)
    assert "baseline reused from this machine's cache" in result.details


def test_other_targets_or_a_changed_tree_miss_the_cache(calc_repo: Path, make_ctx, tmp_path: Path) -> None:
    """Other targets, or a checkout whose staged tree differs, measure their own baseline."""
    config = cached_config(tmp_path / "cache")
    suite_report(make_ctx(calc_repo, config=config, kind="write-tests", paths=["calc/core.py"]))
    other_targets = suite_report(make_ctx(calc_repo, config=config, kind="write-tests", paths=["calc"]))
    (calc_repo / "setup_output.txt").write_text("made by a setup command\n")
    changed = suite_report(make_ctx(calc_repo, config=config, kind="write-tests", paths=["calc/core.py"]))
    assert not other_targets.is_cached and not changed.is_cached
    assert len(list((tmp_path / "cache").glob("*.json"))) == 3


def test_cache_is_off_by_default(calc_repo: Path, make_ctx, tmp_path: Path, monkeypatch) -> None:
    """Without baseline_cache every task measures its own baseline and nothing is written."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for _ in range(2):
        assert not SuiteRunner().report(make_ctx(calc_repo, kind="change")).is_cached
    assert not (tmp_path / "home").exists()

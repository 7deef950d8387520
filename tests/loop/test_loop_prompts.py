"""Prompt templates: built-ins render with the job's variables, a project's prompts/ overrides by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runner.config import prompts
from agent_runner.core.errors import ConfigError
from agent_runner.core.result import GateResult, GateVerdict
from agent_runner.core.task import Task, TaskKind

KIND_TEMPLATES = ["fix-lint.md.j2", "write-tests.md.j2", "change.md.j2", "review.md.j2"]


def test_builtins_are_all_there() -> None:
    """The six templates of the contract ship with the package."""
    assert set(prompts.builtin_names()) == {"system.md.j2", "reflection.md.j2", *KIND_TEMPLATES}


@pytest.mark.parametrize("name", KIND_TEMPLATES)
@pytest.mark.parametrize("minimal", [True, False])
def test_kind_templates_render_with_only_the_task(name: str, minimal: bool) -> None:
    """Each kind template needs only `task`; the job's extra variables are optional."""
    kind = TaskKind(name.removesuffix(".md.j2"))
    task = Task(id="t-1", kind=kind, instructions="Do the special thing.", paths=["src/pkg"])
    extra = {} if minimal else {"test_command": "pytest -q", "violations": "E501 x", "coverage_before": 40.0}
    text = prompts.render(name, task=task, **extra)
    assert "t-1" in text and "Do the special thing." in text and "finish" in text
    if not minimal and kind == TaskKind.FIX_LINT:
        assert "E501 x" in text and "pytest -q" in text


def test_system_prompt_names_tools_and_rules() -> None:
    """The system prompt tells the agent its tools and that the runner's gates decide."""
    text = prompts.render("system", test_command="pytest -q", gate_names=["ruff", "tests"])
    for word in ("`bash`", "`edit`", "`finish`", "noqa", "gates", "ruff, tests", "pytest -q"):
        assert word in text


def test_reflection_shows_report() -> None:
    """The reflection message carries the gate report and the round."""
    gates = [GateResult(name="ruff", verdict=GateVerdict.FAIL)]
    text = prompts.render("reflection.md.j2", report="- ruff: fail (3 left)", gates=gates, round=1, rounds=2)
    assert "- ruff: fail (3 left)" in text and "round 1 of 2" in text


def test_project_prompts_override_builtins(tmp_path: Path) -> None:
    """A project's prompts/<name> wins over the built-in; other names still come from the built-ins."""
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "system.md.j2").write_text("Custom for {{ who }}.")
    assert prompts.render("system.md.j2", project_dir=tmp_path, who="us") == "Custom for us."
    assert "`bash`" in prompts.render("system.md.j2", project_dir=tmp_path / "elsewhere")


def test_missing_variable_is_a_config_error(tmp_path: Path) -> None:
    """StrictUndefined: a variable the template needs but was not given is named in the error."""
    with pytest.raises(ConfigError, match="task"):
        prompts.render("change.md.j2")


def test_unknown_template_lists_builtins() -> None:
    """An unknown template name says where it looked and what exists."""
    with pytest.raises(ConfigError, match=r"no prompt template 'nope.md.j2'.*system.md.j2"):
        prompts.render("nope")


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    """A broken project template is reported with its line."""
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "change.md.j2").write_text("ok\n{% if %}\n")
    with pytest.raises(ConfigError, match="line 2"):
        prompts.render("change.md.j2", project_dir=tmp_path)


def test_copy_builtins_keeps_existing_files(tmp_path: Path) -> None:
    """copy_builtins writes every template but leaves a customised one alone."""
    dest = tmp_path / "prompts"
    dest.mkdir()
    (dest / "system.md.j2").write_text("mine")
    written = prompts.copy_builtins(dest)
    assert sorted(p.name for p in written) == sorted(set(prompts.builtin_names()) - {"system.md.j2"})
    assert (dest / "system.md.j2").read_text() == "mine"


def test_builtin_templates_are_files() -> None:
    """builtin_templates lists existing files, one per built-in name (used by `run-agents init`)."""
    files = prompts.builtin_templates()
    assert [f.name for f in files] == prompts.builtin_names() and all(f.is_file() for f in files)

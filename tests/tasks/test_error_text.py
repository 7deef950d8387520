"""Error and help text a person reads: file lines, our validators' words, what to type next."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_runner.cli import get_app
from agent_runner.config.runner import config_from_dict
from agent_runner.core.errors import ConfigError, TaskFileError
from agent_runner.core.task import load_task_file
from agent_runner.models import spec_problem


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("a.md", '---\nkind: change\ntitle: "open\npriority: [1\n---\nbody\n', "at line 4, column 13"),
        ("b.md", "---\nkind: change\ntitle: x\n  bad: indent\n---\nbody\n", "at line 4, column 6"),
        ("c.md", "---\nkind: change\na: &x 1\nb: *x\n---\nbody\n", "at line 3, column 4: anchors"),
        ("d.yaml", "kind: change\ntitle: [x\n", "that starts at line 2"),
    ],
)
def test_yaml_errors_name_the_line_of_the_file(tmp_path: Path, name: str, text: str, needle: str) -> None:
    """A YAML error's line counts from the top of the file, front matter's '---' included."""
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(TaskFileError, match="invalid YAML") as caught:
        load_task_file(path)
    assert needle in str(caught.value)


@pytest.mark.parametrize(
    ("front", "words"),
    [
        ("id: Bad Id", "field 'id': 'Bad Id' is not a valid id"),
        ("branch: main", "field 'branch': 'main' is not allowed; task branches must start with 'agent/'"),
        ("paths: [../up]", "field 'paths': '../up' goes up with '..'"),
    ],
)
def test_task_field_errors_carry_no_pydantic_prefix(tmp_path: Path, front: str, words: str) -> None:
    """A validator's message is the error text, without pydantic's "Value error, " in front."""
    path = tmp_path / "t.md"
    path.write_text(f"---\nkind: change\n{front}\n---\nx\n")
    with pytest.raises(TaskFileError) as caught:
        load_task_file(path)
    assert words in str(caught.value) and "Value error" not in str(caught.value)


def test_config_errors_carry_no_pydantic_prefix() -> None:
    """A machine name the validator refuses reads as the validator wrote it."""
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"machines": [{"name": "a b", "host": "h"}]})
    assert "'machines.0.name': 'a b' is not a valid machine name" in str(caught.value)
    assert "Value error" not in str(caught.value)


@pytest.mark.parametrize(
    ("spec", "example"), [("claude-sonnet-5-5", "anthropic:claude-sonnet-5-5"), ("gpt-5", "openai:gpt-5")]
)
def test_a_spec_without_provider_says_provider_name(spec: str, example: str) -> None:
    """A bare model name is answered with the form to use and an example."""
    assert spec_problem(spec) == f"model spec '{spec}' names no provider; use provider:name, e.g. {example}"


def test_run_model_without_provider_is_a_usage_error(tmp_path: Path) -> None:
    """`run --model claude-x` stops at once (exit 2) and says to use provider:name."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    result = CliRunner().invoke(get_app(), ["--root", str(tmp_path), "run", "--model", "claude-x"])
    assert result.exit_code == 2 and "use provider:name, e.g. anthropic:claude-x" in result.output


def commands() -> list[list[str]]:
    """Every command and sub-command of the app, as argv prefixes."""
    app = get_app()
    found = [[c.name or c.callback.__name__] for c in app.registered_commands if c.callback]  # type: ignore[union-attr]
    for group in app.registered_groups:
        found.append([str(group.name)])
        found += [[str(group.name), str(c.name)] for c in group.typer_instance.registered_commands if c.name]
    return found


def test_help_shows_no_bool_placeholders() -> None:
    """No command's --help labels a flag `<bool>` (a flag takes no value)."""
    assert len(commands()) > 15
    for argv in [[], *commands()]:
        result = CliRunner().invoke(get_app(), [*argv, "--help"])
        assert result.exit_code == 0, (argv, result.output)
        assert "<bool>" not in result.output, argv
        assert "--help" in result.output


def test_prs_without_a_token_does_not_promise_that_run_publishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a token, `prs` says no PR will open and how to open one; with one, that run opens them."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    for name in ("GITHUB_TOKEN", "GH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(get_app(), ["--root", str(tmp_path), "prs"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "none will open without a GitHub token" in result.output and "GITHUB_TOKEN" in result.output
    assert "run publishes" not in result.output
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    result = CliRunner().invoke(get_app(), ["--root", str(tmp_path), "prs"], env={"COLUMNS": "300"})
    assert "`run-agents run` opens one for each finished task" in result.output

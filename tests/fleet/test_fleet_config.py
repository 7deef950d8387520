"""Fleet configuration and what leaves the coordinator: machines in pyproject, forwarded keys, ssh options."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runner.config.machines import MachineConfig, SshConfig
from agent_runner.config.runner import load_config
from agent_runner.core.errors import ConfigError
from agent_runner.executors.source import forwarded_secrets
from agent_runner.executors.ssh_transport import SshClient, attempt_script, remote_path

PYPROJECT = """\
[tool.agent-runner]
executor = "ssh"
[tool.agent-runner.ssh]
config_file = "~/.ssh/fleet_config"
[[tool.agent-runner.machines]]
name = "laptop-a"
ssh = "me@laptop-a.local"
workers = 1
tags = ["big-ram"]
[[tool.agent-runner.machines]]
name = "laptop-b"
ssh = "me@10.0.0.12"
workers = 2
"""


def test_machines_table_loads_from_pyproject(tmp_path: Path) -> None:
    """`[[tool.agent-runner.machines]]` entries become typed machine configs with defaults."""
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    config = load_config(tmp_path)
    assert [(m.name, m.workers, m.tags) for m in config.machines] == [
        ("laptop-a", 1, ["big-ram"]),
        ("laptop-b", 2, []),
    ]
    assert config.machines[0].command == "run-agents" and config.ssh.config_file == "~/.ssh/fleet_config"


def test_bad_machine_field_is_named(tmp_path: Path) -> None:
    """A typo in a machine entry is reported with the field's location."""
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.replace("workers = 2", "wrokers = 2"))
    with pytest.raises(ConfigError, match=r"machines\.1\.wrokers"):
        load_config(tmp_path)


def test_github_token_is_never_forwarded() -> None:
    """Only the allowed model keys reach a remote worker; a GitHub token never does, even if allowed."""
    secrets = {"ANTHROPIC_API_KEY": "a", "OPENAI_API_KEY": "o", "GITHUB_TOKEN": "g", "GH_TOKEN": "h"}
    allowed = ["ANTHROPIC_API_KEY", "GITHUB_TOKEN", "GH_TOKEN"]
    assert forwarded_secrets(secrets, allowed) == {"ANTHROPIC_API_KEY": "a"}


def test_ssh_never_prompts_and_shares_one_connection(tmp_path: Path) -> None:
    """Every ssh call runs in batch mode (no password prompt) through the machine's control socket."""
    machine = MachineConfig(name="m", ssh="alias-from-ssh-config", env={"A": "b c"})
    argv = SshClient(machine, settings=SshConfig(config_file="/x/cfg"), control_dir=tmp_path).command_argv(
        "true"
    )
    assert "BatchMode=yes" in argv and f"ControlPath={tmp_path / 'm.sock'}" in argv
    assert argv[argv.index("-F") + 1] == "/x/cfg" and argv[-3] == "alias-from-ssh-config"
    script = attempt_script(machine, "t1", 2)
    assert "'A=b c' run-agents exec - --inline-bundle" in script and "attempts/t1.2.pid" in script


@pytest.mark.parametrize(
    ("path", "shell"),
    [("~", '"$HOME"'), ("~/a b", "\"$HOME\"/'a b'"), ("/srv/x", "/srv/x"), ("/srv/$x", "'/srv/$x'")],
)
def test_remote_paths_expand_home_there_and_quote_the_rest(path: str, shell: str) -> None:
    """A workdir under ~ expands on the machine; anything else is quoted literally."""
    assert remote_path(path) == shell

"""Config layers: defaults < pyproject.toml < AGENT_RUNNER_* < flags; an invalid value names its layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runner.config.runner import load_config
from agent_runner.core.errors import ConfigError


def test_later_layers_win_and_an_error_names_the_layer_to_fix(tmp_path: Path) -> None:
    """workers from pyproject, then the environment, then a flag; each bad value is blamed on its source."""
    (tmp_path / "pyproject.toml").write_text("[tool.agent-runner]\nworkers = 3\nlease_seconds = 90\n")
    assert load_config(tmp_path, environ={}).workers == 3
    assert load_config(tmp_path, environ={"AGENT_RUNNER_WORKERS": "5"}).workers == 5
    assert load_config(tmp_path, environ={"AGENT_RUNNER_WORKERS": "5"}, overrides={"workers": 7}).workers == 7
    with pytest.raises(ConfigError, match=r"^--workers: 'workers': Input should be greater"):
        load_config(tmp_path, environ={}, overrides={"workers": 0})
    with pytest.raises(ConfigError, match=r"^AGENT_RUNNER_WORKERS: 'workers'"):
        load_config(tmp_path, environ={"AGENT_RUNNER_WORKERS": "0"})
    (tmp_path / "pyproject.toml").write_text("[tool.agent-runner]\nlease_seconds = -1\n")
    with pytest.raises(ConfigError, match=r"pyproject\.toml \[tool\.agent-runner\]: 'lease_seconds'"):
        load_config(tmp_path, environ={}, overrides={"workers": None})

"""Shared fixtures: an isolated home for the runner, opt-in live tests."""

from __future__ import annotations

import pytest

collect_ignore = ["fixtures"]  # small real projects copied into tmp repos by tests, not tests themselves


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-live", action="store_true", help="run tests that need real API keys or the internet"
    )
    parser.addoption(
        "--run-real-server",
        action="store_true",
        help="run tests against a real llama-cpp-python server (see tests/real_server/conftest.py)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    opt_ins = {
        "live": ("--run-live", "live test: pass --run-live (needs real keys or the internet)"),
        "real_server": ("--run-real-server", "real-server test: pass --run-real-server (see its conftest)"),
    }
    for marker, (option, reason) in opt_ins.items():
        if config.getoption(option):
            continue
        for item in items:
            if marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the runner's home at a temp dir and drop real keys so no test spends money."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("AGENT_RUNNER_HOME", str(home))
    secrets = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GITHUB_TOKEN", "GH_TOKEN")
    for key in (*secrets, "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    for key in list(__import__("os").environ):
        if key.startswith("AGENT_RUNNER_") and key != "AGENT_RUNNER_HOME":
            monkeypatch.delenv(key, raising=False)

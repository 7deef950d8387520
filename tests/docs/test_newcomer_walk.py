"""The first minutes of a new user, as one script, against what a user installs.

In CI `run-agents` is the wheel installed without extras in a venv of its own, with the newest dependency
versions the ranges allow (.ci/run sets AGENT_RUNNER_USER_BIN); elsewhere it is the development install.
No model key is set anywhere: the walk must finish what needs no model and hold the rest, spending nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

USER_BIN = os.environ.get("AGENT_RUNNER_USER_BIN")
RUN_AGENTS = Path(USER_BIN) if USER_BIN else Path(sys.executable).with_name("run-agents")
KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GITHUB_TOKEN", "GH_TOKEN")
LINT = "import os\nimport sys\n\n\ndef name():\n    return sys.argv[0]\n"  # an unused import: ruff --fix


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEYS and not k.startswith("AGENT_RUNNER_")}
    return {**env, "HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200", "GIT_AUTHOR_NAME": "new",
            "GIT_AUTHOR_EMAIL": "new@example.com", "GIT_COMMITTER_NAME": "new",
            "GIT_COMMITTER_EMAIL": "new@example.com"}  # fmt: skip


def _cli(cwd: Path, home: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(RUN_AGENTS), *args], cwd=cwd, env=_env(home), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == code, f"run-agents {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def _new_repo(path: Path) -> Path:
    (path / "src").mkdir(parents=True)
    (path / "src" / "names.py").write_text(LINT)
    utils = "import os.path\n\n\ndef join(a, b):\n    return os.path.join(a, b)\n"
    (path / "src" / "utils.py").write_text(utils)
    _git(path, "init", "-q", "-b", "main")
    _git(path, "add", "-A")
    _git(path, "-c", "user.name=new", "-c", "user.email=new@example.com", "commit", "-qm", "start")
    return path


def test_a_newcomer_walk_on_the_installed_tool(tmp_path: Path) -> None:
    """Usage errors, a refusal outside a repo, then keyless: lint fixed, the model task held and not spent."""
    home, outside = tmp_path / "home", tmp_path / "not-a-repo"
    home.mkdir()
    outside.mkdir()
    for args in (("list", "--bogus"), ("add",), ("run", "--workers", "abc"), ("no-such-command",)):
        assert "Usage:" in _cli(outside, home, *args, code=2).stderr
    refused = _cli(outside, home, "add", "fix-lint", "--path", "src/", "--id", "lint", code=1)
    assert "git" in refused.stderr.lower() and list(outside.iterdir()) == [], "nothing is made outside a repo"
    _cli(outside, home, "run", code=1)
    assert list(outside.iterdir()) == [], "run outside a repo makes nothing"

    repo = _new_repo(tmp_path / "project")
    _cli(repo, home, "init")
    _cli(repo, home, "add", "fix-lint", "--path", "src/names.py", "--id", "lint-names")
    _cli(repo, home, "add", "change", "-m", "Use pathlib in utils.py", "--id", "pathlib-utils")
    plan = _cli(repo, home, "run", "--dry-run").stdout
    assert "ANTHROPIC_API_KEY" in plan or "OPENAI_API_KEY" in plan, plan

    ran = _cli(repo, home, "run", code=1)  # 1: a task was held (docs/commands.md, exit codes)
    assert "needs an API key in ANTHROPIC_API_KEY" in ran.stdout, ran.stdout
    rows = {row["id"]: row for row in json.loads(_cli(repo, home, "list", "--json").stdout)}
    lint, held = rows["lint-names"], rows["pathlib-utils"]
    assert lint["status"] == "finished", lint
    spent = (lint["attempts"], held["attempts"], held["max_attempts"])  # spent, against max
    assert spent == (1, 0, 3), (lint, held)
    assert held["status"] == "queued" and "held here" in held["reason"], held
    assert "ANTHROPIC_API_KEY" in held["reason"], held
    assert "ANTHROPIC_API_KEY" in _cli(repo, home, "show", "pathlib-utils").stdout
    checkouts = repo / ".agent-runner" / "checkouts"
    made = sorted(p.name for p in checkouts.iterdir()) if checkouts.is_dir() else []
    assert not [name for name in made if name.startswith("pathlib-utils")], made
    assert "import os\n" not in _git(repo, "show", "agent/lint-names:src/names.py")

    shown = _cli(repo, home, "show", "lint-names").stdout
    assert "ruff" in shown and "passed" in shown.lower(), shown

"""Helpers of the sweep tests: the repo's files and git (a module of its own: `conftest` names clash)."""

from __future__ import annotations

import subprocess
from pathlib import Path

PYPROJECT = """\
[tool.ruff.lint]
select = ["F", "I"]

[tool.agent-runner]
sandbox = "none"
test = "python -m pytest -q"
lease_seconds = 5
heartbeat_seconds = 0.5
backoff_seconds = 0
"""
BIG = "def big():\n" + "".join(f"    print(missing_{i})\n" for i in range(6)) + "    return 0\n"
FILES = {
    "pyproject.toml": PYPROJECT,
    "pkg/__init__.py": "",
    "pkg/fixable.py": "import os\nimport sys\n\n\ndef one():\n    return 1\n",  # F401 x2: ruff --fix
    "pkg/judgment.py": "import os\n\n\ndef two():\n    return undefined_name\n",  # F401 fixable, F821 not
    "pkg/sub/__init__.py": "",
    "pkg/sub/a.py": "def three():\n    return missing_a\n",
    "pkg/sub/b.py": "def four():\n    return missing_b\n",
    "pkg/big.py": BIG,  # 6 x F821: split in two parts with --per-task 4 (3 lines each... by line)
    "cov/__init__.py": "",
    "cov/full.py": "def double(x):\n    return 2 * x\n",
    "cov/low.py": (
        "def sign(x):\n    if x > 0:\n        return 1\n    if x < 0:\n        return -1\n    return 0\n\n\n"
        "def unused(x):\n    y = x + 1\n    z = y * 2\n    return z - 3\n"
    ),
    "tests/__init__.py": "",
    "tests/test_cov.py": (
        "from cov.full import double\nfrom cov.low import sign\n\n\n"
        "def test_double():\n    assert double(2) == 4\n\n\ndef test_sign():\n    assert sign(5) == 1\n"
    ),
}


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` as a test author and return its output."""
    author = ["-c", "user.name=t", "-c", "user.email=t@t"]
    proc = subprocess.run(["git", *author, *args], cwd=repo, check=True, capture_output=True, text=True)
    return proc.stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str) -> None:
    """Write `files` into `repo` and commit them."""
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)

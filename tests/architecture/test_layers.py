"""The architecture rules, checked on the source: imports point downward, libraries stay home."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "agent_runner"
CORE = {"errors", "task", "refnames", "task_io", "messages", "result", "protocols", "queue_state", "redact"}
FLOW = {
    "agent", "context", "job", "job_agent", "scheduler", "scheduling", "review", "review_post", "worker",
    "forkserver", "forksocket", "forkchild", "actions", "demo", "report", "report_html", "report_pages",
    "recording", "attempts", "planning",
}  # fmt: skip
RANK = {"core": 0, "adapt": 1, "flow": 2, "cli": 3}
LIBRARY_HOMES = {
    "git": ("git.py",),
    "github": ("github/",),
    "anthropic": ("models/anthropic.py",),
    "openai": ("models/openai.py",),
    "ray": ("executors/ray.py",),
}
CORE_THIRD_PARTY = {"pydantic", "yaml"}


def layer(module: str) -> str:
    """Return the layer of an agent_runner module name."""
    part = module.split(".")[1] if "." in module else ""
    if part == "cli":
        return "cli"
    if part in CORE or part == "":
        return "core"
    return "flow" if part in FLOW else "adapt"


def imports(path: Path) -> list[str]:
    """Return the absolute module names a file imports (at any depth, lazily or not)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names if node.module == "agent_runner"]
    return names


def modules() -> list[tuple[str, Path]]:
    """Return (module name, path) for every source file of the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found.append((".".join(p for p in parts if p != "__init__"), path))
    return found


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_imports_point_downward(module: str, path: Path) -> None:
    """No module imports from a layer above its own (cli -> flow -> adapt -> core)."""
    mine = layer(module)
    upward = [n for n in imports(path) if n.startswith("agent_runner.") and RANK[layer(n)] > RANK[mine]]
    assert upward == [], f"{module} ({mine}) imports upward: {upward}"


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_libraries_live_in_their_adapter(module: str, path: Path) -> None:
    """GitPython (should it return), PyGithub, each model SDK and ray are imported only in their home."""
    rel = path.relative_to(PACKAGE).as_posix()
    for name in imports(path):
        top = name.split(".")[0]
        if top in LIBRARY_HOMES and not rel.startswith(LIBRARY_HOMES[top]):
            pytest.fail(f"{rel} imports {name}; only {LIBRARY_HOMES[top]} may")


@pytest.mark.parametrize(("module", "path"), [m for m in modules() if layer(m[0]) == "core"])
def test_core_uses_only_stdlib_pydantic_and_yaml(module: str, path: Path) -> None:
    """Core modules depend on nothing but the standard library, pydantic and yaml."""
    import sys

    for name in imports(path):
        top = name.split(".")[0]
        if top in ("agent_runner", "__future__") or top in sys.stdlib_module_names:
            continue
        assert top in CORE_THIRD_PARTY, f"{module} imports {name}"


# Started for every run and inherited by every attempt: what it imports is paid at the start of each run.
NOT_IN_WORKERS = (
    "yaml", "rich", "typer", "watchfiles", "anthropic", "openai", "github", "ray",
    "agent_runner.cli", "agent_runner.scheduler", "agent_runner.github.api", "agent_runner.github.publisher",
)  # fmt: skip


def test_the_fork_server_imports_only_what_attempts_need() -> None:
    """The worker parent's preload leaves out the CLI, the coordinator, GitHub, YAML and the model SDKs."""
    code = "import sys; from agent_runner import forkserver; forkserver.preload(); print(*sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(out.split())
    assert "agent_runner.job" in loaded and "agent_runner.github.settings" in loaded
    assert [name for name in NOT_IN_WORKERS if name in loaded] == []

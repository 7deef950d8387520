"""The architecture rules, checked on the source: folders are layers, imports point down, no cycles.

Each folder of `agent_runner/` is one part of the architecture (docs/architecture.md). A module may import
from its own folder or from a folder lower in FOLDERS; never from one beside or above it. Imports are counted
wherever they are written (module level, inside a function, under TYPE_CHECKING), so no cycle can hide.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "agent_runner"
FOLDERS = (  # lowest first
    "core", "workflows", "config", "testing", "models", "tools", "repo", "queue", "gates", "worker",
    "coordinator", "executors", "github", "sweeps", "review", "report", "demo", "cli",
)  # fmt: skip
RANK = {name: rank for rank, name in enumerate(FOLDERS)}
ROOT_MODULES = {"agent_runner"}  # the package itself; everything else lives in a folder
LIBRARY_HOMES = {
    "git": ("repo/git.py",),  # GitPython, should it return
    "github": ("github/",),
    "anthropic": ("models/anthropic.py",),
    "openai": ("models/openai.py",),
    "ray": ("executors/ray.py",),
    "typer": ("cli/",),
    "rich": ("cli/",),
}
CORE_THIRD_PARTY = {"pydantic", "yaml"}
FIGURE = re.compile(r"\d+(\.\d+)?\s*(ms|s)\b")  # a measured start-up cost: "40 ms", "0.3 s"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__")


def modules() -> list[tuple[str, Path]]:
    """Return (module name, path) for every source file of the package."""
    return [(module_name(path), path) for path in sorted(PACKAGE.rglob("*.py"))]


MODULES = modules()
NAMES = {name for name, _ in MODULES}


def imports(path: Path) -> list[str]:
    """Return the absolute names a file imports (at any depth, lazily or not; `from a import b` gives a.b)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def internal(path: Path) -> set[str]:
    """Return the package's modules a file imports (a name imported from a module counts as that module)."""
    return {name for name in imports(path) if name in NAMES}


def folder(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_module_lives_in_a_known_folder() -> None:
    """No module at the package root; every folder has its place in the order."""
    stray = [m for m, _ in MODULES if m not in ROOT_MODULES and folder(m) not in RANK]
    assert stray == [], f"modules outside the known folders (add the folder to FOLDERS): {stray}"
    root = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert root == [], f"modules at the package root: {root}"


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_imports_point_down_by_folder(module: str, path: Path) -> None:
    """A module imports from its own folder or from a lower one, never from beside or above."""
    mine = folder(module)
    if mine not in RANK:
        return
    bad = [n for n in internal(path) if folder(n) not in ("", mine) and RANK.get(folder(n), 99) >= RANK[mine]]
    assert bad == [], f"{module} ({mine}) imports from a folder at or above its own: {bad}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []
    for root in graph:
        if root not in index:
            _strongconnect(root, graph, index, low, stack, found)
    return found


def _strongconnect(
    root: str, graph: dict[str, set[str]], index: dict[str, int], low: dict[str, int], stack: list[str],
    found: list[list[str]],
) -> None:  # fmt: skip
    work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
    index[root] = low[root] = len(index)
    stack.append(root)
    while work:
        node, edges = work[-1]
        nxt = next((w for w in edges if w not in index or w in stack), None)
        if nxt is None:
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = stack[stack.index(node) :]
                del stack[stack.index(node) :]
                if len(comp) > 1:
                    found.append(sorted(comp))
        elif nxt in index:
            low[node] = min(low[node], index[nxt])
        else:
            index[nxt] = low[nxt] = len(index)
            stack.append(nxt)
            work.append((nxt, iter(sorted(graph[nxt]))))


def test_no_import_cycles() -> None:
    """No module reaches itself through imports, counting lazy and TYPE_CHECKING ones."""
    graph = {name: internal(path) - {name} for name, path in MODULES}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _function_imports(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(fn):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    yield node.lineno, ast.unparse(node)


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_a_function_level_import_says_what_it_saves(module: str, path: Path) -> None:
    """An import inside a function is there for a measured start-up cost, written beside it ("~40 ms")."""
    lines = path.read_text(encoding="utf-8").splitlines()
    unexplained = [
        f"{path.name}:{line}: {text}"
        for line, text in _function_imports(path)
        if not any(FIGURE.search(lines[i]) for i in range(max(0, line - 3), line) if "#" in lines[i])
    ]
    assert unexplained == [], "function-level imports without a start-up figure:\n" + "\n".join(unexplained)


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_libraries_live_in_their_adapter(module: str, path: Path) -> None:
    """PyGithub, each model SDK, ray and the CLI libraries are imported only in their home."""
    rel = path.relative_to(PACKAGE).as_posix()
    for name in imports(path):
        top = name.split(".")[0]
        if top in LIBRARY_HOMES and not rel.startswith(LIBRARY_HOMES[top]):
            pytest.fail(f"{rel} imports {name}; only {LIBRARY_HOMES[top]} may")


@pytest.mark.parametrize(("module", "path"), [m for m in MODULES if folder(m[0]) == "core"])
def test_core_uses_only_stdlib_pydantic_and_yaml(module: str, path: Path) -> None:
    """Core modules depend on nothing but the standard library, pydantic and yaml."""
    for name in imports(path):
        top = name.split(".")[0]
        if top in ("agent_runner", "__future__") or top in sys.stdlib_module_names:
            continue
        assert top in CORE_THIRD_PARTY, f"{module} imports {name}"


# Started for every run and inherited by every attempt: what it imports is paid at the start of each run.
NOT_IN_WORKERS = (
    "yaml", "rich", "typer", "watchfiles", "anthropic", "openai", "github", "ray",
    "agent_runner.cli", "agent_runner.coordinator.scheduler", "agent_runner.github.api",
    "agent_runner.github.publisher",
)  # fmt: skip


def test_the_fork_server_imports_only_what_attempts_need() -> None:
    """The worker parent's preload leaves out the CLI, the coordinator, GitHub, YAML and the model SDKs."""
    code = "import sys; from agent_runner.executors.fork import server; server.preload(); print(*sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(out.split())
    assert "agent_runner.worker.job" in loaded and "agent_runner.config.github" in loaded
    assert [name for name in NOT_IN_WORKERS if name in loaded] == []

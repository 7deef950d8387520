"""Coverage of the target modules for the coverage gate (write-tests, covgate.py): measured, read, compared.

Our own small pytest plugin (covplugin.py) drives coverage.py where the tests run; see plugin_setup.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from agent_runner.core.protocols import GateContext
from agent_runner.gates.files import GateFileError, read_gate_bytes, read_gate_text
from agent_runner.gates.ruff import in_paths
from agent_runner.gates.testfiles import is_test_file, is_test_module
from agent_runner.gates.workdiff import git

PLUGIN = "agent_runner_gatecov"
SETTINGS_ENV = "AGENT_RUNNER_GATECOV"  # the same name as in covplugin.py (which the runner never imports)
LINKED_DIRS = (".venv", "venv", ".tox", ".nox", "node_modules")  # environments, never targets


@dataclass(frozen=True)
class FileCoverage:
    """Statement coverage of one file."""

    statements: int
    covered: int
    executed: frozenset[int]
    missing: tuple[int, ...]


def measured_files(checkout: Path, targets: list[str]) -> list[str]:
    """Return the non-test Python files in the targets, relative to the checkout (no hidden dirs, venvs)."""
    found: list[str] = []
    for target in targets:
        root = checkout / target
        paths = [root] if root.is_file() else sorted(root.rglob("*.py")) if root.is_dir() else []
        for path in paths:
            rel = path.relative_to(checkout).as_posix()
            is_hidden = any(part.startswith(".") or part in LINKED_DIRS for part in rel.split("/"))
            if path.suffix == ".py" and not is_test_file(rel) and not is_hidden and rel not in found:
                found.append(rel)
    return found


def plugin_setup(scratch: Path, root: Path, files: list[str], *, only: list[str] | None) -> dict[str, str]:
    """Write the coverage plugin and its settings into `scratch`; return the environment that loads them."""
    (scratch / f"{PLUGIN}.py").write_text(
        Path(__file__).with_name("covplugin.py").read_text(encoding="utf-8"), encoding="utf-8"
    )
    settings = {"root": str(root), "files": files, "report": str(scratch / "gatecov.json"), "only": only}
    (scratch / "gatecov-settings.json").write_text(json.dumps(settings), encoding="utf-8")
    path = os.pathsep.join([str(scratch), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {"PYTHONPATH": path, SETTINGS_ENV: str(scratch / "gatecov-settings.json")}


def read_coverage(
    scratch: Path, *, root: Path, base: dict[str, FileCoverage] | None = None
) -> tuple[dict[str, FileCoverage] | None, str]:
    """Join the plugin's reports (one per process) into per-file coverage; (None, why) when there is none.

    With `base` (an after-run that traced only new tests), the raw lines those tests ran join the baseline;
    `root` is the checkout the plugin measured (the host's value, never read back from the scratch folder).
    A report the agent's code replaced by a link, a FIFO or a huge file is (None, why), never read.
    """
    statements: dict[str, set[int]] = {}
    executed: dict[str, set[int]] = {}
    raw: dict[str, set[int]] = {}
    reports = sorted(scratch.glob("gatecov.*.json"))
    for path in reports:
        try:
            data = json.loads(read_gate_text(path))
        except GateFileError as exc:
            return None, f"unreadable coverage report: {exc}"
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(data, dict):
            continue
        if data.get("error"):
            return None, str(data["error"])
        for name, info in (data.get("files") or {}).items():
            if not isinstance(info, dict):
                continue
            raw.setdefault(name, set()).update(info.get("lines") or ())
            lines = set(info.get("statements") or ())
            statements.setdefault(name, set()).update(lines)
            executed.setdefault(name, set()).update(lines - set(info.get("missing") or ()))
    if not reports:
        return None, "the coverage plugin wrote no report (did pytest start?)"
    if base is None:
        return {name: file_coverage(statements[name], executed[name]) for name in statements}, ""
    ran = {name: statements_run(root, name, lines) for name, lines in raw.items() if name in base}
    return joined(base, ran), ""


def import_coverage_meanwhile() -> None:
    """Import coverage.py on a background thread, so statements_run finds it loaded after the tests ran.

    The ~70 ms import then overlaps the test run (a subprocess) instead of following it.
    """
    if "coverage" not in sys.modules:
        threading.Thread(target=_import_coverage, name="import-coverage", daemon=True).start()


def _import_coverage() -> None:
    with contextlib.suppress(ImportError):  # statements_run reports it when it imports
        importlib.import_module("coverage")


def statements_run(root: Path, name: str, lines: set[int]) -> set[int]:
    """Return the statements coverage.py counts as run, given the raw line events of one file.

    The source is read like a gate report (a regular file, size-capped) and analysed from a private copy,
    so a link to a FIFO or a huge file the agent's code left at `name` is never opened by coverage.py.
    """
    import coverage  # only after-runs that traced new tests need it (~70 ms: see import_coverage_meanwhile)

    real, top = Path(os.path.realpath(Path(root, name))), Path(os.path.realpath(root))
    if not real.is_relative_to(top):
        return set()
    try:
        source = read_gate_bytes(real)
    except OSError:
        return set()
    with tempfile.TemporaryDirectory(prefix="gatecov-") as tmp:
        path = os.path.join(tmp, Path(name).name or "source.py")
        with open(path, "wb") as fh:
            fh.write(source)
        cov = coverage.Coverage(data_file=None, config_file=False)
        cov.get_data().add_lines({path: sorted(lines)})
        try:
            _, statements, _, missing, _ = cov.analysis2(path)
        except coverage.CoverageException:
            return set()
    return set(statements) - set(missing)


def file_coverage(statements: set[int], executed: set[int]) -> FileCoverage:
    """Return the coverage record of a file from its statement lines and the executed ones."""
    hit = executed & statements
    return FileCoverage(len(statements), len(hit), frozenset(hit), tuple(sorted(statements - hit)))


def joined(base: dict[str, FileCoverage], ran: dict[str, set[int]]) -> dict[str, FileCoverage]:
    """Return the baseline with more statements run (the files are unchanged: same statements)."""
    files = dict(base)
    for name, lines in ran.items():
        if old := files.get(name):
            files[name] = file_coverage(set(old.executed) | set(old.missing), set(old.executed) | lines)
    return files


def changed_test_modules(checkout: Path, base_tree: str, tree: str) -> list[str] | None:
    """Return the test modules added or changed since the baseline tree; None when anything else changed.

    Why tracing only these is enough: when every difference from the baseline is a test module, the targets,
    conftests, test data and every other test are byte-identical, so each unchanged test executes the
    target lines it executed at baseline. The after-run's executed lines are then the baseline's, plus
    what the new modules' collection and tests execute (traced now), and joined() takes that union.
    A line counts as newly covered only if the new tests ran it in this run. (A new test could only
    change what an old test runs by leaking state into it; the union then still credits the old test's
    baseline lines, so the figure can never exceed baseline + the new tests' own lines.)
    """
    out = git(checkout, "diff", "--no-renames", "--name-status", "-z", base_tree, tree, check=False)
    parts = out.split("\0")
    changes = list(zip(parts[0::2], parts[1::2], strict=False))
    if not changes or any(s[:1] not in ("A", "M") or not is_test_module(p) for s, p in changes if s):
        return None
    return sorted(p for s, p in changes if s)


def target_files(files: dict[str, FileCoverage], targets: list[str]) -> dict[str, FileCoverage]:
    """Return the measured non-test files inside the targets."""
    return {f: c for f, c in files.items() if in_paths(f, targets) and not is_test_file(f)}


def percent(files: dict[str, FileCoverage]) -> float:
    """Return statement coverage in percent over `files` (100 when there are no statements)."""
    statements = sum(c.statements for c in files.values())
    return 100.0 * sum(c.covered for c in files.values()) / statements if statements else 100.0


def summary_rows(files: dict[str, FileCoverage]) -> list[dict[str, object]]:
    """Return per-file coverage rows for prompts: file, percent, missing lines."""
    return [
        {"file": f, "percent": round(percent({f: c}), 1), "missing_lines": list(c.missing)}
        for f, c in sorted(files.items())
    ]


def min_gain(ctx: GateContext) -> float:
    """Return the required gain: the task's, but never below the config floor unless overrides are allowed."""
    floor = ctx.settings.min_coverage_gain
    task_gain = ctx.task.min_coverage_gain
    if task_gain < floor and not ctx.settings.allow_gate_override:
        return floor
    return task_gain

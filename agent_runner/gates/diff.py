"""The diff policy: anti-gaming checks on the agent's diff against the base commit.

Each finding names an `allow` key; a task may list the key in `allow:` and it is waived only when the runner
config's `allow` lists it too. Git runs through subprocess (see workdiff.py).
"""

from __future__ import annotations

import configparser
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from agent_runner.gates.testfiles import defined_tests, find_test_functions, is_test_file, is_test_module
from agent_runner.gates.workdiff import WorkDiff, show_file, work_diff
from agent_runner.protocols import GateContext
from agent_runner.result import GateResult, GateVerdict

DEFAULT_MAX_FILE_BYTES = 1_000_000
MARKERS = {
    "noqa": re.compile(r"#\s*noqa\b", re.I),
    "type-ignore": re.compile(r"#\s*type:\s*ignore\b"),
    "pragma-no-cover": re.compile(r"#\s*pragma:\s*no\s*(cover|branch)\b", re.I),
    "skip": re.compile(
        r"(mark\.(skip|skipif|xfail)\b|pytest\.(skip|xfail|importorskip)\(|unittest\.skip|@skip\w*\b)"
    ),
}
SECRETS = re.compile(  # not preceded by a word character: "task-..." or "disk-..." are no keys
    r"(?<![A-Za-z0-9_])(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}|sk-ant-[A-Za-z0-9_-]{20,}"
    r"|sk-proj-[A-Za-z0-9_-]{20,}|sk-[A-Za-z0-9]{20,})"
)
CI_PATHS = (
    ".github/workflows/",
    ".gitlab-ci.yml",
    ".ci/",
    ".circleci/",
    "azure-pipelines.yml",
    "Jenkinsfile",
)
CONFIG_FILES = {
    "ruff.toml": "lint-config",
    ".ruff.toml": "lint-config",
    ".flake8": "lint-config",
    ".pre-commit-config.yaml": "lint-config",
    "mypy.ini": "lint-config",
    "pytest.ini": "test-config",
    ".coveragerc": "test-config",
}
PYPROJECT_TABLES = {
    "ruff": "lint-config",
    "mypy": "lint-config",
    "pytest": "test-config",
    "coverage": "test-config",
}
INI_SECTIONS = {
    "flake8": "lint-config",
    "pycodestyle": "lint-config",
    "mypy": "lint-config",
    "isort": "lint-config",
}
INI_TEST_SECTIONS = ("tool:pytest", "pytest", "coverage:")
CONFTEST_WORDS = re.compile(r"addopts|collect_ignore|pytest_collection_modifyitems|pytest_ignore_collect")


@dataclass(frozen=True)
class Offence:
    """One policy finding: the allow key that would waive it, where it is, and the offending text."""

    rule: str
    where: str
    text: str = ""

    def __str__(self) -> str:
        return f"[{self.rule}] {self.where}" + (f": {self.text.strip()[:160]}" if self.text.strip() else "")


def allow_key(name: str) -> str:
    """Normalize an allow entry: 'type: ignore' -> 'type-ignore', '# noqa' -> 'noqa'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def allowed(ctx: GateContext) -> set[str]:
    """Return the waivers in force: those the task asks for AND the runner config permits."""
    permitted = {allow_key(a) for a in ctx.settings.get("allow", [])}
    return {allow_key(a) for a in ctx.task.allow} & permitted


def check_markers(ctx: GateContext, diff: WorkDiff) -> list[Offence]:
    """Added noqa / type: ignore / pragma: no cover comments, and skip/xfail markers in Python files."""
    found = []
    for change in diff.files.values():
        if not change.path.endswith((".py", ".pyi", ".cfg", ".toml", ".ini")):
            continue
        for line in change.added:
            found += [
                Offence(r, f"{change.path}:{line.number}", line.text)
                for r, p in MARKERS.items()
                if p.search(line.text)
            ]
    return found


def check_secrets(ctx: GateContext, diff: WorkDiff) -> list[Offence]:
    """Added lines holding something shaped like a GitHub, Anthropic or OpenAI key (shown redacted)."""
    found = []
    for change in diff.files.values():
        for line in change.added:
            for match in SECRETS.finditer(line.text):
                found.append(
                    Offence("secrets", f"{change.path}:{line.number}", match.group(0)[:7] + "... (redacted)")
                )
    return found


def check_config(ctx: GateContext, diff: WorkDiff) -> list[Offence]:
    """Edits to lint or test config: ruff/pytest/coverage files, pyproject tables, ini sections, conftest."""
    found = []
    for path in diff.paths():
        name = PurePosixPath(path).name
        if name in CONFIG_FILES:
            found.append(Offence(CONFIG_FILES[name], path, "configuration file changed"))
        elif name == "pyproject.toml":
            found += _table_changes(ctx, diff, path, _pyproject_tables)
        elif name in ("setup.cfg", "tox.ini"):
            found += _table_changes(ctx, diff, path, _ini_sections)
        elif name == "conftest.py":
            change = diff.files[path]
            lines = [*change.added, *change.removed]
            found += [
                Offence("test-config", f"{path}:{x.number}", x.text)
                for x in lines
                if CONFTEST_WORDS.search(x.text)
            ]
    return found


def check_ci(ctx: GateContext, diff: WorkDiff) -> list[Offence]:
    """Edits to CI workflow files."""
    return [Offence("ci", p, "CI configuration changed") for p in diff.paths() if p.startswith(CI_PATHS)]


def check_deleted_tests(ctx: GateContext, diff: WorkDiff) -> list[Offence]:
    """Deleted test files, and test functions of the base that no changed test file defines now."""
    found = [Offence("delete-tests", p, "test file deleted") for p in diff.paths("D") if is_test_module(p)]
    before: set[str] = set()
    after: set[str] = set()
    for path in diff.paths():
        if is_test_module(path):
            before |= defined_tests(show_file(ctx.checkout, diff.base, path) or "")
            after |= defined_tests(_read(ctx, path))
    found += [Offence("delete-tests", name, "test function removed") for name in sorted(before - after)]
    return found


def check_files(ctx: GateContext, diff: WorkDiff) -> list[Offence]:
    """Binary files and files over the size limit."""
    limit = int(ctx.settings.get("max_file_bytes", DEFAULT_MAX_FILE_BYTES))
    found = [
        Offence("binary", c.path, "binary file")
        for c in diff.files.values()
        if c.is_binary and c.status != "D"
    ]
    for path in diff.paths("A", "M"):
        size = (ctx.checkout / path).stat().st_size if (ctx.checkout / path).is_file() else 0
        if size > limit:
            found.append(Offence("large-files", path, f"{size} bytes (limit {limit})"))
    return found


def check_tests_only(ctx: GateContext, diff: WorkDiff) -> list[Offence]:
    """write-tests: every changed path is a test file."""
    return [Offence("non-test-files", p, "not a test file") for p in diff.paths() if not is_test_file(p)]


def check_weakened(ctx: GateContext, diff: WorkDiff) -> list[Offence]:
    """write-tests: no existing test function asserts less than it did."""
    found = []
    for path in diff.paths("M"):
        if not is_test_module(path):
            continue
        before = {
            f.node: f.n_asserts for f in find_test_functions(show_file(ctx.checkout, diff.base, path) or "")
        }
        for func in find_test_functions(_read(ctx, path)):
            if func.n_asserts < before.get(func.node, 0):
                where = f"{path}:{func.start} {func.node}"
                found.append(
                    Offence("weaken-tests", where, f"{before[func.node]} -> {func.n_asserts} assertions")
                )
    return found


COMMON_CHECKS: tuple[Callable[[GateContext, WorkDiff], list[Offence]], ...] = (
    check_markers,
    check_config,
    check_ci,
    check_deleted_tests,
    check_files,
    check_secrets,
)


@dataclass
class DiffPolicyGate:
    """Rejects gaming in the diff (see the module docstring), with the offending lines."""

    tests_only: bool = False
    name: str = "diff-policy"

    def baseline(self, ctx: GateContext) -> None:
        return None

    def check(self, ctx: GateContext, baseline: object) -> GateResult:
        diff = work_diff(ctx.checkout, ctx.base_commit)
        checks = (*COMMON_CHECKS, check_tests_only, check_weakened) if self.tests_only else COMMON_CHECKS
        offences = [o for check in checks for o in check(ctx, diff)]
        waived = allowed(ctx)
        blocking = [o for o in offences if o.rule not in waived]
        asked = {allow_key(a) for a in ctx.task.allow} - waived
        details = f"{len(diff.files)} file(s) changed; {len(blocking)} policy violation(s)"
        if offences and len(blocking) < len(offences):
            details += f"; waived by allow: {', '.join(sorted({o.rule for o in offences} & waived))}"
        if asked & {o.rule for o in blocking}:
            details += (
                f"; the task allows {', '.join(sorted(asked))} but the runner config's `allow` does not"
            )
        return GateResult(
            name=self.name,
            verdict=GateVerdict.FAIL if blocking else GateVerdict.PASS,
            command=f"git diff --cached {diff.base[:12]}",
            after={"files": len(diff.files), "violations": len(blocking)},
            details=details,
            offending=[str(o) for o in blocking[:60]],
        )


@dataclass
class NonEmptyDiffGate:
    """change: the agent changed something."""

    name: str = "non-empty-diff"

    def baseline(self, ctx: GateContext) -> None:
        return None

    def check(self, ctx: GateContext, baseline: object) -> GateResult:
        diff = work_diff(ctx.checkout, ctx.base_commit)
        verdict = GateVerdict.FAIL if diff.is_empty else GateVerdict.PASS
        return GateResult(
            name=self.name,
            verdict=verdict,
            after={"files": len(diff.files)},
            details="the diff is empty" if diff.is_empty else f"{len(diff.files)} file(s) changed",
        )


def _read(ctx: GateContext, path: str) -> str:
    full = ctx.checkout / path
    return full.read_text(encoding="utf-8", errors="replace") if full.is_file() else ""


def _table_changes(
    ctx: GateContext, diff: WorkDiff, path: str, tables: Callable[[str], dict[str, Any] | None]
) -> list[Offence]:
    old, new = tables(show_file(ctx.checkout, diff.base, path) or ""), tables(_read(ctx, path))
    if old is None or new is None:
        return [Offence("lint-config", path, "configuration file does not parse")]
    keys = sorted(set(old) | set(new))
    return [
        Offence(_rule_for(k), f"{path} [{k}]", "section changed") for k in keys if old.get(k) != new.get(k)
    ]


def _rule_for(section: str) -> str:
    for prefix, rule in (*PYPROJECT_TABLES.items(), *INI_SECTIONS.items()):
        if section.startswith((prefix, f"tool.{prefix}")):
            return rule
    return "test-config"


def _pyproject_tables(text: str) -> dict[str, Any] | None:
    try:
        tool = tomllib.loads(text).get("tool", {}) if text.strip() else {}
    except tomllib.TOMLDecodeError:
        return None
    return {f"tool.{k}": v for k, v in tool.items() if k in PYPROJECT_TABLES}


def _ini_sections(text: str) -> dict[str, Any] | None:
    parser = configparser.RawConfigParser()
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    wanted = [
        s
        for s in parser.sections()
        if s in INI_SECTIONS or s.startswith(INI_TEST_SECTIONS) or s.startswith("mypy")
    ]
    return {s: dict(parser.items(s)) for s in wanted}

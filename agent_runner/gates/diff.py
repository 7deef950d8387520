"""The diff policy: anti-gaming and safety checks on the agent's diff against the base commit.

Each finding names an `allow` key; a task may list the key in `allow:` and it is waived only when the runner
config's `allow` lists it too. NOT_WAIVABLE keys are never waived: `secret-values` (a value the runner knows
as a secret is never legitimate in a commit, unlike a key-shaped test fixture), `external-symlinks` (a link
out of the repo or into .git: whoever checks the branch out, the runner's next checkout included, reads or
writes host files through it), `gitlinks` (a nested repository or submodule: content the diff does not
show, fetched from elsewhere by whoever updates it) and `runner-config` (the task files, the project's prompt
templates and `[tool.agent-runner]`: what the runner reads as its own instructions and configuration, where a
run started from the agent's branch, as a push-triggered workflow is, would take setup commands or a sandbox
switch the agent wrote).

`policy_findings` runs every check on a WorkDiff from what it is given: the gate on the agent's checkout
(new files from its work tree, git as workdiff.py runs it there), the coordinator on two commits of the
trusted source repo (`workdiff.commit_diff`; git as `git.run_git` runs it), no checkout needed.
"""

from __future__ import annotations

import configparser
import os
import re
import tomllib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from agent_runner.core.errors import GitError
from agent_runner.core.gate_settings import GateSettings
from agent_runner.core.protocols import GateContext
from agent_runner.core.redact import Redactor
from agent_runner.core.result import GateResult, GateVerdict
from agent_runner.core.task import Task, TaskKind
from agent_runner.gates.testfiles import defined_tests, find_test_functions, is_test_file, is_test_module
from agent_runner.gates.workdiff import FileChange, WorkDiff, show_file, staged_tree, work_diff
from agent_runner.gates.workdiff import git as workdiff_git
from agent_runner.repo.git import run_git

SYMLINK, GITLINK = "120000", "160000"
MAX_LINK_HOPS = 40  # as the kernel's limit on nested symlinks: a longer chain (or a loop) counts as leaving
SECRET_VALUES, EXTERNAL_SYMLINKS, GITLINKS = "secret-values", "external-symlinks", "gitlinks"
RUNNER_CONFIG = "runner-config"
NOT_WAIVABLE = frozenset({SECRET_VALUES, EXTERNAL_SYMLINKS, GITLINKS, RUNNER_CONFIG})
PROMPTS_DIR = "prompts"  # prompts.PROJECT_PROMPTS; named here so that gates do not import the prompt loader
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
    ".github/workflows/", ".gitlab-ci.yml", ".ci/", ".circleci/", "azure-pipelines.yml", "Jenkinsfile",
)  # fmt: skip
LINT, TEST = "lint-config", "test-config"
CONFIG_FILES = {
    "ruff.toml": LINT, ".ruff.toml": LINT, ".flake8": LINT, ".pre-commit-config.yaml": LINT, "mypy.ini": LINT,
    "pytest.ini": TEST, ".coveragerc": TEST,
}  # fmt: skip
PYPROJECT_TABLES = {"ruff": LINT, "mypy": LINT, "pytest": TEST, "coverage": TEST}
INI_SECTIONS = {"flake8": LINT, "pycodestyle": LINT, "mypy": LINT, "isort": LINT}
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


@dataclass(frozen=True)
class PolicyInput:
    """What the checks look at. Without `head`, `repo` is an agent's checkout: the new files are its work
    tree, git runs with the runner's git dir. With `head`, `repo` is a trusted repo holding both commits."""

    diff: WorkDiff
    repo: Path
    task: Task
    settings: GateSettings
    secrets: tuple[str, ...] = field(default=(), repr=False)
    head: str | None = None

    def old(self, path: str) -> str:
        """Return a file's text at the base ('' where it did not exist)."""
        return self._blob(self.diff.base, path) or ""

    def new(self, path: str) -> str:
        """Return a file's new text ('' where it is gone); a symlink's text is its target, never followed."""
        return self._blob(self._new_rev(), path) or ""

    def size(self, path: str) -> int:
        """Return a new file's size in bytes (0 where it is gone)."""
        spec = f"{self._new_rev()}:{path}"
        if self.head is not None:
            out = self._git("cat-file", "-s", spec)
        else:  # through the runner's git dir of the checkout, as _blob
            out = workdiff_git(self.repo, "cat-file", "-s", spec, check=False).strip()
        return int(out) if out.isdigit() else 0

    def _new_rev(self) -> str:
        """Return the revision holding the new files: `head`, else what git stages for the checkout.

        That is the tree of the current round of gates (workdiff.snapshot) or the index (`:path`), never
        the work tree on disk, which can differ from the blob git commits (a working-tree-encoding in
        .gitattributes, a clean filter): the checks read what would be committed.
        """
        if self.head is not None:
            return self.head
        return staged_tree(self.repo) or ""

    def link(self, path: str) -> str | None:
        """Return the target of a symlink in the new tree, None where `path` is no symlink."""
        if path in self.diff.files:
            return _target(self.diff.files[path])
        if self.head is None:
            full = self.repo / path
            return os.readlink(full) if full.is_symlink() else None
        is_link = self._git("ls-tree", "-z", self.head, "--", path).startswith(f"{SYMLINK} ")
        return self._blob(self.head, path) if is_link else None

    def _blob(self, commit: str, path: str) -> str | None:
        if self.head is None:
            return show_file(self.repo, commit, path)  # through the runner's git dir of the checkout
        try:
            return run_git(self.repo, "cat-file", "blob", f"{commit}:{path}")
        except GitError:  # no such file there (or a folder, a gitlink)
            return None

    def _git(self, *args: str) -> str:
        try:
            return run_git(self.repo, *args)
        except GitError:
            return ""


Check = Callable[[PolicyInput], list[Offence]]


def allow_key(name: str) -> str:
    """Normalize an allow entry: 'type: ignore' -> 'type-ignore', '# noqa' -> 'noqa'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def waivers(task: Task, settings: GateSettings) -> set[str]:
    """Return the rules waived: those the task asks for AND the runner config permits, never NOT_WAIVABLE."""
    permitted = {allow_key(a) for a in settings.allow}
    return ({allow_key(a) for a in task.allow} & permitted) - NOT_WAIVABLE


def allowed(ctx: GateContext) -> set[str]:
    """Return the waivers in force for a gate's task and settings."""
    return waivers(ctx.task, ctx.settings)


def blocking(findings: Iterable[Offence], task: Task, settings: GateSettings) -> list[Offence]:
    """Return the findings that reject the diff: those no waiver covers."""
    waived = waivers(task, settings)
    return [o for o in findings if o.rule not in waived]


def check_markers(p: PolicyInput) -> list[Offence]:
    """Added noqa / type: ignore / pragma: no cover comments, and skip/xfail markers in Python files."""
    found = []
    for change in p.diff.files.values():
        if not change.path.endswith((".py", ".pyi", ".cfg", ".toml", ".ini")):
            continue
        for line in change.added:
            found += [
                Offence(r, f"{change.path}:{line.number}", line.text)
                for r, pattern in MARKERS.items()
                if pattern.search(line.text)
            ]
    return found


def check_secrets(p: PolicyInput) -> list[Offence]:
    """Added lines, and new files git calls binary (a NUL hides their lines from the diff), holding
    something shaped like a GitHub, Anthropic or OpenAI key (shown redacted)."""
    found = [
        Offence("secrets", f"{change.path}:{line.number}", match.group(0)[:7] + "... (redacted)")
        for change in p.diff.files.values()
        for line in change.added
        for match in SECRETS.finditer(line.text)
    ]
    for change in p.diff.files.values():
        if change.is_binary and change.status != "D" and (match := SECRETS.search(p.new(change.path))):
            found.append(Offence("secrets", change.path, match.group(0)[:7] + "... (redacted, binary file)"))
    return found


def check_secret_values(p: PolicyInput) -> list[Offence]:
    """Changed paths, added lines and new binary files holding a value the runner knows as a secret."""
    values = Redactor(p.secrets).values  # those long enough to look for
    if not values:
        return []
    paths = [path for path in p.diff.paths() if _holds(path, values)]
    found = [Offence(SECRET_VALUES, path, "a secret value in the path") for path in paths]
    for change in p.diff.files.values():
        if change.is_binary and change.status != "D" and _holds(p.new(change.path), values):
            found.append(Offence(SECRET_VALUES, change.path, "a secret value in a binary file"))
        found += [
            Offence(SECRET_VALUES, f"{change.path}:{line.number}", "a secret value (redacted)")
            for line in change.added
            if _holds(line.text, values)
        ]
    return found


def check_links(p: PolicyInput) -> list[Offence]:
    """Symlinks leading out of the repo or into .git; gitlinks (nested repositories, submodules)."""
    found = []
    for change in p.diff.files.values():
        if change.status == "D":
            continue
        if change.mode == GITLINK:
            found.append(Offence(GITLINKS, change.path, "a nested repository or submodule"))
        elif change.path == ".gitmodules":
            found.append(Offence(GITLINKS, change.path, "submodule configuration changed"))
        elif change.mode == SYMLINK and _leaves_repo(change.path, p.link):
            found.append(Offence(EXTERNAL_SYMLINKS, change.path, f"symlink to {_target(change)}"))
    return found


def check_config(p: PolicyInput) -> list[Offence]:
    """Edits to lint or test config: ruff/pytest/coverage files, pyproject tables, ini sections, conftest."""
    found = []
    for path in p.diff.paths():
        name = PurePosixPath(path).name
        if name in CONFIG_FILES:
            found.append(Offence(CONFIG_FILES[name], path, "configuration file changed"))
        elif name == "pyproject.toml":
            found += _table_changes(p, path, _pyproject_tables)
        elif name in ("setup.cfg", "tox.ini"):
            found += _table_changes(p, path, _ini_sections)
        elif name == "conftest.py":
            change = p.diff.files[path]
            found += [
                Offence(TEST, f"{path}:{x.number}", x.text)
                for x in [*change.added, *change.removed]
                if CONFTEST_WORDS.search(x.text)
            ]
    return found


def check_runner(p: PolicyInput) -> list[Offence]:
    """Edits to the runner's own input: task files, prompt templates, `[tool.agent-runner]`."""
    folders = tuple(f"{d.strip('/')}/" for d in (p.settings.tasks_dir or "tasks", PROMPTS_DIR))
    found = [
        Offence(RUNNER_CONFIG, path, "runner input changed")
        for path in p.diff.paths()
        if path.startswith(folders)
    ]
    for path in (x for x in p.diff.paths() if PurePosixPath(x).name == "pyproject.toml"):
        old, new = _runner_table(p.old(path)), _runner_table(p.new(path))
        if old != new:
            found.append(
                Offence(RUNNER_CONFIG, f"{path} [tool.agent-runner]", "runner configuration changed")
            )
    return found


def check_ci(p: PolicyInput) -> list[Offence]:
    """Edits to CI workflow files."""
    return [
        Offence("ci", path, "CI configuration changed")
        for path in p.diff.paths()
        if path.startswith(CI_PATHS)
    ]


def check_deleted_tests(p: PolicyInput) -> list[Offence]:
    """Deleted test files, and test functions of the base that no changed test file defines now."""
    found = [
        Offence("delete-tests", path, "test file deleted")
        for path in p.diff.paths("D")
        if is_test_module(path)
    ]
    before: set[str] = set()
    after: set[str] = set()
    for path in filter(is_test_module, p.diff.paths()):
        before |= defined_tests(p.old(path))
        after |= defined_tests(p.new(path))
    return found + [Offence("delete-tests", name, "test function removed") for name in sorted(before - after)]


def check_files(p: PolicyInput) -> list[Offence]:
    """Binary files and files over the size limit."""
    limit = p.settings.max_file_bytes
    changes = [c for c in p.diff.files.values() if c.status != "D"]
    found = [Offence("binary", c.path, "binary file") for c in changes if c.is_binary]
    sizes = {c.path: p.size(c.path) for c in changes if c.mode not in (SYMLINK, GITLINK)}
    return found + [
        Offence("large-files", path, f"{size} bytes (limit {limit})")
        for path, size in sizes.items()
        if size > limit
    ]


def check_tests_only(p: PolicyInput) -> list[Offence]:
    """write-tests: every changed path is a test file."""
    return [
        Offence("non-test-files", path, "not a test file")
        for path in p.diff.paths()
        if not is_test_file(path)
    ]


def check_weakened(p: PolicyInput) -> list[Offence]:
    """write-tests: no existing test function asserts less than it did."""
    found = []
    for path in filter(is_test_module, p.diff.paths("M")):
        before = {f.node: f.n_asserts for f in find_test_functions(p.old(path))}
        for func in find_test_functions(p.new(path)):
            if func.n_asserts < before.get(func.node, 0):
                where = f"{path}:{func.start} {func.node}"
                found.append(
                    Offence("weaken-tests", where, f"{before[func.node]} -> {func.n_asserts} assertions")
                )
    return found


COMMON_CHECKS: tuple[Check, ...] = (
    check_markers, check_config, check_ci, check_deleted_tests, check_files, check_secrets,
    check_secret_values, check_links, check_runner,
)  # fmt: skip
TESTS_ONLY_CHECKS: tuple[Check, ...] = (check_tests_only, check_weakened)


def policy_findings(
    diff: WorkDiff,
    *,
    repo: Path,
    task: Task,
    settings: GateSettings,
    secrets: Iterable[str] = (),
    head: str | None = None,
    tests_only: bool | None = None,
) -> list[Offence]:
    """Return every finding of the diff policy, waived ones too (`blocking` keeps those that reject).

    `repo` has the diff's base; the new files are read at commit `head` there, or (None) from its working
    tree. `tests_only` (default: a write-tests task) adds the write-tests rules. No finding shows a secret.
    """
    if tests_only is None:
        tests_only = task.kind == TaskKind.WRITE_TESTS
    given = PolicyInput(diff, Path(repo), task, settings, tuple(secrets), head)
    checks = (*COMMON_CHECKS, *TESTS_ONLY_CHECKS) if tests_only else COMMON_CHECKS
    mask = Redactor(given.secrets)
    return [Offence(o.rule, mask(o.where), mask(o.text)) for check in checks for o in check(given)]


@dataclass
class DiffPolicyGate:
    """Rejects gaming in the diff (see the module docstring), with the offending lines."""

    tests_only: bool = False
    name: str = "diff-policy"

    def baseline(self, ctx: GateContext) -> None:
        return None

    def check(self, ctx: GateContext, baseline: object) -> GateResult:
        diff = work_diff(ctx.checkout, ctx.base_commit)
        found = policy_findings(
            diff, repo=ctx.checkout, task=ctx.task, settings=ctx.settings,
            secrets=ctx.secrets, tests_only=self.tests_only,
        )  # fmt: skip
        failing = blocking(found, ctx.task, ctx.settings)
        return GateResult(
            name=self.name,
            verdict=GateVerdict.FAIL if failing else GateVerdict.PASS,
            command=f"git diff --cached {diff.base[:12]}",
            after={"files": len(diff.files), "violations": len(failing)},
            details=_details(ctx, diff, found, failing),
            offending=[str(o) for o in failing[:60]],
        )


def _details(ctx: GateContext, diff: WorkDiff, found: list[Offence], failing: list[Offence]) -> str:
    waived, rules = allowed(ctx), {o.rule for o in failing}
    asked = {allow_key(a) for a in ctx.task.allow} - waived
    details = f"{len(diff.files)} file(s) changed; {len(failing)} policy violation(s)"
    if len(failing) < len(found):
        details += f"; waived by allow: {', '.join(sorted({o.rule for o in found} & waived))}"
    if (asked - NOT_WAIVABLE) & rules:
        details += (
            f"; the task allows {', '.join(sorted(asked - NOT_WAIVABLE))}"
            " but the runner config's `allow` does not"
        )
    if asked & NOT_WAIVABLE & rules:
        details += f"; {', '.join(sorted(asked & NOT_WAIVABLE))}: never waived"
    return details


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


def _holds(text: str, values: Iterable[str]) -> bool:
    return any(value in text for value in values)


def _target(change: FileChange) -> str | None:
    """Return a changed symlink's target: its blob, the patch's added line(s); None for anything else."""
    if change.mode != SYMLINK or change.status == "D":
        return None
    return "\n".join(line.text for line in change.added)


def _leaves_repo(path: str, link: Callable[[str], str | None]) -> bool:
    """Whether the symlink at `path` resolves outside the repo or into .git, following links inside it."""
    here, todo, hops = list(PurePosixPath(path).parent.parts), deque([PurePosixPath(path).name]), 0
    while todo:
        part = todo.popleft()
        if part == "..":
            if not here:
                return True
            here.pop()
        elif part not in ("", "."):
            target = link("/".join([*here, part]))
            if target is None:
                here.append(part)
                continue
            hops += 1
            if hops > MAX_LINK_HOPS or target.startswith("/"):
                return True
            todo.extendleft(reversed(target.split("/")))
    return bool(here) and here[0].lower() == ".git"


def _table_changes(
    p: PolicyInput, path: str, tables: Callable[[str], dict[str, Any] | None]
) -> list[Offence]:
    old, new = tables(p.old(path)), tables(p.new(path))
    if old is None or new is None:
        return [Offence(LINT, path, "configuration file does not parse")]
    keys = sorted(set(old) | set(new))
    return [
        Offence(_rule_for(k), f"{path} [{k}]", "section changed") for k in keys if old.get(k) != new.get(k)
    ]


def _rule_for(section: str) -> str:
    for prefix, rule in (*PYPROJECT_TABLES.items(), *INI_SECTIONS.items()):
        if section.startswith((prefix, f"tool.{prefix}")):
            return rule
    return TEST


def _pyproject_tables(text: str) -> dict[str, Any] | None:
    try:
        tool = tomllib.loads(text).get("tool", {}) if text.strip() else {}
    except (tomllib.TOMLDecodeError, RecursionError):  # nested past the parser's depth: no config either
        return None
    return {f"tool.{k}": v for k, v in tool.items() if k in PYPROJECT_TABLES}


def _runner_table(text: str) -> object:
    try:
        tool = tomllib.loads(text).get("tool") if text.strip() else None
    except (tomllib.TOMLDecodeError, RecursionError):
        return "unparsable"  # differs from any table: an unreadable file counts as a change
    return tool.get("agent-runner") if isinstance(tool, dict) else None


def _ini_sections(text: str) -> dict[str, Any] | None:
    parser = configparser.RawConfigParser()
    try:
        parser.read_string(text)
    except (configparser.Error, RecursionError):
        return None
    wanted = [
        s
        for s in parser.sections()
        if s in INI_SECTIONS or s.startswith(INI_TEST_SECTIONS) or s.startswith("mypy")
    ]
    return {s: dict(parser.items(s)) for s in wanted}

"""The mutation gate (write-tests): the new tests must fail on at least one simple mutant of the target code.

Only the new or changed tests run, against each mutant, in a scratch copy of the checkout.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agent_runner.core.protocols import GateContext, Sandbox
from agent_runner.core.result import GateResult, GateVerdict
from agent_runner.gates.command import CommandResult, gate_env, run_command, tail
from agent_runner.gates.coverage import LINKED_DIRS, measured_files
from agent_runner.gates.mutate import Mutant, apply_mutant, choose_mutants, find_mutants
from agent_runner.gates.pytest import SuiteRunner, is_pytest, scratch_parent
from agent_runner.gates.ruff import is_inside, targets_of
from agent_runner.gates.testfiles import find_test_functions, is_test_module
from agent_runner.gates.workdiff import WorkDiff, show_file, work_diff

MIN_MUTANTS = 5
SCRATCH_IGNORE = shutil.ignore_patterns(".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache")


@dataclass(frozen=True)
class NewTests:
    """The tests the diff adds or changes, as pytest node ids, and the files assert nothing."""

    __test__ = False
    node_ids: list[str]
    assert_nothing: list[str]


def new_tests(ctx: GateContext, diff: WorkDiff) -> NewTests:
    """Return the test functions that are new or have added lines in the diff."""
    node_ids: list[str] = []
    assert_nothing: list[str] = []
    for path in diff.paths("A", "M"):
        if not is_test_module(path):
            continue
        source = (ctx.checkout / path).read_text(encoding="utf-8", errors="replace")
        old = {f.node for f in find_test_functions(show_file(ctx.checkout, diff.base, path) or "")}
        lines = {line.number for line in diff.files[path].added}
        picked = [
            f
            for f in find_test_functions(source)
            if f.node not in old or any(f.start <= n <= f.end for n in lines)
        ]
        node_ids += [f"{path}::{f.node}" for f in picked]
        if picked and not any(f.asserts for f in picked):
            assert_nothing.append(
                f"{path}: the new tests assert nothing ({', '.join(f.node for f in picked)})"
            )
    return NewTests(node_ids, assert_nothing)


def target_sources(ctx: GateContext) -> dict[str, str]:
    """Return the non-test Python files inside the targets, by relative path (no hidden folders, no venvs)."""
    files = [rel for rel in measured_files(ctx.checkout, targets_of(ctx)) if is_inside(ctx.checkout, rel)]
    return {rel: (ctx.checkout / rel).read_text(encoding="utf-8", errors="replace") for rel in files}


def make_scratch(checkout: Path, scratch: Path) -> None:
    """Copy the checkout for mutants (no .git, no caches); environments like .venv are symlinked."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        top = set(LINKED_DIRS) & set(names) if Path(folder) == checkout else set()
        return set(SCRATCH_IGNORE(folder, names)) | top

    shutil.copytree(checkout, scratch, ignore=ignore, symlinks=True)
    for name in LINKED_DIRS:
        if (checkout / name).is_dir():
            (scratch / name).symlink_to(checkout / name)


def pytest_prefix(command: str) -> list[str]:
    """Return the words that start pytest in the test command (options and paths dropped)."""
    words = shlex.split(command) if is_pytest(command) else []
    for i, word in enumerate(words):
        if PurePosixPath(word).name in ("pytest", "py.test"):
            prefix = words[: i + 1]
            return prefix if not {"&&", ";", "|", "||"} & set(prefix) else [sys.executable, "-m", "pytest"]
    return [sys.executable, "-m", "pytest"]


@dataclass
class Trial:
    """How the new tests run in a scratch copy: the command, plugin autoload, and the per-run timeout."""

    argv: list[str]
    autoload: bool = True
    timeout_s: float = 600.0
    sandbox: Sandbox | None = None
    anchor: Path | None = None  # the checkout the scratch copies live in (writes start there)
    withheld: tuple[str, ...] = ()  # variables never given to the agent's code (see command.gate_env)

    def run(self, scratch: Path) -> CommandResult:
        """Run the new tests in `scratch` with its folders first on PYTHONPATH."""
        roots = [str(scratch), *([str(scratch / "src")] if (scratch / "src").is_dir() else [])]
        extra = {"PYTHONPATH": os.pathsep.join([*roots, *filter(None, [os.environ.get("PYTHONPATH")])])}
        extra["PYTHONDONTWRITEBYTECODE"] = (
            "1"  # a mutant of equal size within the same second would hit a stale .pyc
        )
        if not self.autoload:
            extra["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        return run_command(
            self.argv,
            cwd=scratch,
            env=gate_env(extra, sandboxed=self.sandbox is not None, withheld=self.withheld),
            timeout_s=self.timeout_s,
            sandbox=self.sandbox,
        )

    def killed(self, scratch: Path, mutants: list[Mutant]) -> set[Mutant]:
        """Apply each mutant in turn in `scratch` and return those the tests caught.

        The tests (the agent's code) run between the writes and may swap a file or folder for a symlink:
        every write starts from `anchor` (the checkout) and follows none (`write_beneath`).
        """
        anchor = self.anchor if self.anchor is not None and scratch.is_relative_to(self.anchor) else scratch
        caught = set()
        for mutant in mutants:
            rel = str((scratch / mutant.file).relative_to(anchor))
            try:
                original = read_beneath(anchor, rel)
                write_beneath(anchor, rel, apply_mutant(original, mutant))
            except (OSError, UnicodeDecodeError):  # a link, or no text file: not a mutant to try
                continue
            try:
                if self.run(scratch).exit_code not in (0, 5):
                    caught.add(mutant)
            finally:
                with contextlib.suppress(OSError):  # swapped for a link by the tests: left alone
                    write_beneath(anchor, rel, original)
        return caught


def _open_beneath(root: Path, rel: str, flags: int) -> int:
    """Open `rel` under `root` following no symlink on the way (a link or a missing file: OSError)."""
    *folders, name = PurePosixPath(rel).parts
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for folder in folders:
            inner = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = inner
        return os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644, dir_fd=fd)  # a FIFO: no wait
    finally:
        os.close(fd)


def read_beneath(root: Path, rel: str) -> str:
    """Return the text of the regular file `rel` under `root`, through no symlink."""
    with os.fdopen(_open_beneath(root, rel, os.O_RDONLY), encoding="utf-8") as fh:
        return fh.read()


def write_beneath(root: Path, rel: str, text: str) -> None:
    """Replace the content of the file `rel` under `root`, through no symlink."""
    with os.fdopen(_open_beneath(root, rel, os.O_WRONLY | os.O_TRUNC), "w", encoding="utf-8") as fh:
        fh.write(text)


def clean_trial(
    scratch: Path,
    argv: list[str],
    *,
    sandbox: Sandbox | None = None,
    anchor: Path | None = None,
    withheld: tuple[str, ...] = (),
) -> Trial | CommandResult:
    """Run the new tests on unmutated code, first without plugin autoload (faster), then with it."""
    result = CommandResult("", 1, "", "", 0.0)
    for autoload in (False, True):
        trial = Trial(argv, autoload=autoload, sandbox=sandbox, anchor=anchor, withheld=withheld)
        result = trial.run(scratch)
        if result.exit_code == 0:
            trial.timeout_s = max(30.0, 5 * result.duration_s)
            return trial
    return result


@dataclass
class MutationGate:
    """Runs only the new tests against >= 5 mutants of the targets; at least one mutant must be killed."""

    runner: SuiteRunner | None = None
    name: str = "mutants"

    def baseline(self, ctx: GateContext) -> None:
        return None

    def check(self, ctx: GateContext, baseline: object) -> GateResult:
        if not is_pytest(ctx.test_command):
            return self._result(GateVerdict.SKIP, "the test command is not pytest; mutation check skipped")
        tests = new_tests(ctx, work_diff(ctx.checkout, ctx.base_commit))
        if not tests.node_ids:
            return self._result(GateVerdict.FAIL, "no new or changed test functions found in the diff")
        if tests.assert_nothing:
            return self._result(
                GateVerdict.FAIL, "a test file asserts nothing", offending=tests.assert_nothing
            )
        mutants = self._choose(ctx)
        if not mutants:
            return self._result(GateVerdict.SKIP, "the target code has no function to mutate")
        return self._run_all(ctx, tests.node_ids, mutants)

    def _choose(self, ctx: GateContext) -> list[Mutant]:
        candidates = [m for rel, src in target_sources(ctx).items() for m in find_mutants(src, rel)]
        covered = None
        if self.runner is not None and (report := self.runner.report(ctx)).coverage is not None:
            covered = {f: c.executed for f, c in report.coverage.items()}
        limit = max(MIN_MUTANTS, ctx.settings.max_mutants)
        return choose_mutants(candidates, covered=covered, limit=limit)

    def _run_all(self, ctx: GateContext, node_ids: list[str], mutants: list[Mutant]) -> GateResult:
        argv = [*pytest_prefix(ctx.test_command), "-x", "-q", "-p", "no:cacheprovider", *node_ids]
        n_workers = max(1, min(ctx.settings.mutant_workers, len(mutants)))
        # The agent's tests run in the same sandbox as the test gate's (so the copies live in the checkout).
        with tempfile.TemporaryDirectory(prefix="mutants-", dir=scratch_parent(ctx)) as tmp:
            scratches = [Path(tmp, f"repo{i}") for i in range(n_workers)]
            for scratch in scratches:
                make_scratch(ctx.checkout, scratch)
            trial = clean_trial(
                scratches[0],
                argv,
                sandbox=ctx.sandbox,
                anchor=ctx.checkout,
                withheld=ctx.settings.withheld_env,
            )
            if isinstance(trial, CommandResult):
                details = f"the new tests do not pass on the unmutated code:\n{tail(trial.output)}"
                return self._result(GateVerdict.FAIL, details, command=shlex.join(argv))
            groups = [mutants[i::n_workers] for i in range(n_workers)]
            with ThreadPoolExecutor(n_workers) as pool:
                killed_sets = list(pool.map(trial.killed, scratches, groups))
        killed = set().union(*killed_sets)
        survived = [m for m in mutants if m not in killed]
        details = f"the new tests killed {len(killed)} of {len(mutants)} mutants"
        if len(mutants) < MIN_MUTANTS:
            details += f" (the targets offer only {len(mutants)} mutation sites)"
        return self._result(
            GateVerdict.PASS if killed else GateVerdict.FAIL,
            details,
            command=shlex.join(argv),
            killed=len(killed),
            total=len(mutants),
            offending=[f"survived: {m}" for m in survived],
        )

    def _result(
        self,
        verdict: GateVerdict,
        details: str,
        *,
        command: str = "",
        killed: int = 0,
        total: int = 0,
        offending: list[str] | None = None,
    ) -> GateResult:
        after: dict[str, float] = {"killed": killed, "mutants": total} if total else {}
        return GateResult(
            name=self.name,
            verdict=verdict,
            command=command,
            after=after,
            details=details,
            offending=offending or [],
        )

"""The pytest plugin the coverage gate loads (`-p agent_runner_gatecov`) where the tests run.

The runner never imports this module: it copies the file into the gate's scratch folder, puts that folder on
PYTHONPATH and names its settings file in AGENT_RUNNER_GATECOV. It needs only pytest (and coverage.py).

It measures only the target files, and only while project code runs: a target module's own import-time code
(a meta path finder wraps its loader, whoever imports it first) and each test's setup, call and teardown.
Pytest's collection and reporting machinery runs untraced, which is most of what tracing a whole session
costs. (So target code that a test module or conftest calls at import time, or from a collection hook,
is not counted: a stricter figure, the same at baseline and after.)

A full run uses coverage.py's C tracer and writes statements and missing lines per file. With `only` (an
after-run where just those test files changed) a plain sys.settrace tracer records the raw lines of those
tests, sparing the import of coverage.py; the runner maps them to statements. Each process writes
{"files": {path: {"statements": [...], "missing": [...]} or {"lines": [...]}}, "error": ""}.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Generator, Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any, Literal

import pytest

SETTINGS_ENV = "AGENT_RUNNER_GATECOV"
GLOB_CHARS = re.compile(r"[\[\]*?]")
Tracer = Callable[[FrameType, str, Any], "Tracer | None"]  # what sys.settrace takes (`arg` varies by event)


class GateCoverage:
    """Starts and stops tracing around the parts of a session that run project code, then reports."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.root = Path(settings["root"])
        self.files: list[str] = list(settings["files"])
        self.report = Path(settings["report"])
        only = settings.get("only")
        self.only = None if only is None else {os.path.realpath(self.root / p) for p in only}
        self.targets = {os.path.realpath(self.root / f): f for f in self.files}
        self.wanted: dict[str, bool] = {}  # test file -> traced (realpath is slow, asked 3 times a test)
        self.names = {_module_name(path) for path in self.targets}
        self.error = ""
        self.is_tracing = False
        self.tracer: CoverageTracer | LineTracer | None = (
            LineTracer(self.targets) if self.only is not None else None
        )
        if self.tracer is None:
            try:
                self.tracer = CoverageTracer(self.targets)
            except ImportError:
                self.error = "coverage.py is not installed where the tests run (pip install coverage)"

    def wants(self, path: object) -> bool:
        """Return whether code run for this test file is measured."""
        if self.only is None:
            return True
        if (known := self.wanted.get(str(path))) is None:
            known = self.wanted[str(path)] = os.path.realpath(str(path)) in self.only
        return known

    def start(self) -> bool:
        """Start tracing unless already on; return whether this call started it."""
        if self.tracer is None or self.is_tracing:
            return False
        self.tracer.start()
        self.is_tracing = True
        return True

    def stop(self, started: bool) -> None:
        """Stop tracing if `started` (the matching start call turned it on)."""
        if started and self.tracer is not None:
            self.tracer.stop()
            self.is_tracing = False

    def write(self) -> None:
        """Write this process's report (under pytest-xdist each worker writes one; the runner joins them)."""
        self.stop(self.is_tracing)
        files = self.tracer.results() if self.tracer is not None else {}
        report = self.report.with_name(f"{self.report.stem}.{os.getpid()}.json")
        report.write_text(json.dumps({"files": files, "error": self.error}), encoding="utf-8")


class CoverageTracer:
    """coverage.py's C tracer, limited to the target files: statements and missing lines per file."""

    def __init__(self, targets: dict[str, str]) -> None:
        # ~140 ms, and coverage.py may be missing where the tests run (GateCoverage reports it): only
        # this tracer needs it, LineTracer (after-runs tracing new tests only) does not.
        import coverage

        self.targets = targets
        # Exact files, not folders: `*?[]` in a name become `?` (coverage globs reject brackets).
        include = [GLOB_CHARS.sub("?", path) for path in targets] or ["<no targets>"]
        self.cov = coverage.Coverage(data_file=None, include=include)
        self.cov.set_option("run:source", None)  # a repo's own source= would override include=
        self.cov.set_option("run:source_pkgs", [])

    def start(self) -> None:
        """Start (or resume) tracing on this thread and new threads."""
        with warnings.catch_warnings():  # coverage's own warnings must not fail a `-W error` run
            warnings.simplefilter("ignore")
            self.cov.start()

    def stop(self) -> None:
        """Stop tracing."""
        self.cov.stop()

    def results(self) -> dict[str, dict[str, list[int]]]:
        """Return statements and missing lines of every target file (never imported: all missing)."""
        files: dict[str, dict[str, list[int]]] = {}
        with warnings.catch_warnings():  # "no data collected" is no news here
            warnings.simplefilter("ignore")
            for path, rel in self.targets.items():
                try:
                    _, statements, _, missing, _ = self.cov.analysis2(path)
                except Exception:  # a file coverage cannot parse (not Python, gone) has no figure
                    continue
                files[rel] = {"statements": sorted(statements), "missing": sorted(missing)}
        return files


class LineTracer:
    """A sys.settrace tracer for the few new tests of an after-run: raw line events of the target files.

    It spares the after-run importing coverage.py; the runner maps the lines to statements with
    coverage.py itself. Frames outside the targets get no line events at all.
    """

    def __init__(self, targets: dict[str, str]) -> None:
        self.targets = targets
        self.lines: dict[str, set[int]] = {}
        self.local: dict[str, Tracer | Literal[False]] = {}

    def start(self) -> None:
        """Trace this thread and new threads."""
        threading.settrace(self.trace)
        sys.settrace(self.trace)

    def stop(self) -> None:
        """Stop tracing."""
        sys.settrace(None)
        threading.settrace(None)  # type: ignore[arg-type]

    def trace(self, frame: FrameType, event: str, arg: Any) -> Tracer | None:
        """Return a line recorder for frames of target files, None for all others."""
        if event != "call":
            return None
        file = frame.f_code.co_filename
        local = self.local.get(file)
        if local is None:
            rel = self.targets.get(os.path.realpath(file))
            local = self.local[file] = _recorder(self.lines.setdefault(rel, set())) if rel else False
        return local or None

    def results(self) -> dict[str, dict[str, list[int]]]:
        """Return the executed lines (raw line events) per target file."""
        return {rel: {"lines": sorted(lines)} for rel, lines in self.lines.items() if rel}


def _recorder(lines: set[int]) -> Tracer:
    def record(frame: FrameType, event: str, arg: Any) -> Tracer:
        if event == "line":
            lines.add(frame.f_lineno)
        return record

    return record


class TargetImports:
    """A meta path finder that traces a target module's own import-time code, whoever imports it."""

    def __init__(self, state: GateCoverage) -> None:
        self.state = state
        self.is_busy = False

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        """Find the spec with the other finders; for a target file, trace its loader's exec_module."""
        if self.is_busy or name.rpartition(".")[2] not in self.state.names:
            return None  # Python asks the other finders itself
        self.is_busy = True
        try:
            spec = _find_with_others(self, name, path, target)
        finally:
            self.is_busy = False
        origin = getattr(spec, "origin", None)
        if spec is not None and origin and os.path.realpath(origin) in self.state.targets:
            _trace_exec(spec.loader, self.state)
        return spec


def _find_with_others(
    finder: TargetImports, name: str, path: Sequence[str] | None, target: ModuleType | None
) -> ModuleSpec | None:
    for other in list(sys.meta_path):
        find = getattr(other, "find_spec", None)
        if other is not finder and find is not None and (spec := find(name, path, target)) is not None:
            return spec
    return None


def _trace_exec(loader: object, state: GateCoverage) -> None:
    """Wrap this loader's exec_module (on the instance) so the module body runs traced."""
    original = getattr(loader, "exec_module", None)
    if original is None or getattr(original, "is_gatecov", False):
        return

    def exec_module(module: ModuleType) -> None:
        started = state.start()
        try:
            original(module)
        finally:
            state.stop(started)

    exec_module.is_gatecov = True  # type: ignore[attr-defined]
    with contextlib.suppress(AttributeError, TypeError):  # a loader without instance attributes: unmeasured
        setattr(loader, "exec_module", exec_module)  # noqa: B010 (an object of any loader class)


def _module_name(path: str) -> str:
    """Return the last part of the module name a file imports as."""
    file = Path(path)
    return file.parent.name if file.stem == "__init__" else file.stem


_STATE: GateCoverage | None = None


def _state() -> GateCoverage | None:
    global _STATE
    if _STATE is None and os.environ.get(SETTINGS_ENV):
        settings = json.loads(Path(os.environ[SETTINGS_ENV]).read_text(encoding="utf-8"))
        _STATE = GateCoverage(settings)
    return _STATE


def _traced(wanted: bool):  # type: ignore[no-untyped-def]
    """Run the wrapped hook's implementations with tracing on when `wanted`."""
    state = _state()
    started = state.start() if state is not None and wanted else False
    try:
        yield
    finally:
        if state is not None:
            state.stop(started)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Watch imports from the start: a target's import-time lines count whoever imports it first."""
    state = _state()
    if state is not None and state.tracer is not None:
        sys.meta_path.insert(0, TargetImports(state))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    """Measure fixture setup."""
    yield from _traced(_wants_item(item))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Measure the test itself."""
    yield from _traced(_wants_item(item))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    """Measure fixture teardown."""
    yield from _traced(_wants_item(item))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Write the report once the session is over."""
    state = _state()
    if state is not None:
        state.write()


def _wants_item(item: pytest.Item) -> bool:
    state = _state()
    return state is not None and state.wants(getattr(item, "path", ""))

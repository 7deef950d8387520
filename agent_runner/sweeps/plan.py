"""A sweep's plan: the tasks it would write, each with the size of its gain, and how many can run at once."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path, PurePosixPath

from agent_runner.coordinator.readiness import overlaps
from agent_runner.core.errors import ConfigError
from agent_runner.core.task import Task, path_problem
from agent_runner.gates.ruff import is_inside

MAX_ID = 80  # core.task's limit on ids
DIGEST_CHARS = 8


class SweepKind(StrEnum):
    LINT = "lint"
    TESTS = "tests"
    ISSUES = "issues"

    @property
    def label(self) -> str:
        """The label every task of this sweep carries (so a later sweep knows its own tasks)."""
        return f"sweep:{self.value}"


@dataclass(frozen=True)
class PlannedTask:
    """One task a sweep would write: the task, what it covers (its identity), its gain, and whether ruff
    alone may finish it."""

    task: Task
    covers: str
    gain: int
    needs_model: bool = True
    summary: str = ""


@dataclass(frozen=True)
class SweepPlan:
    """The tasks of one sweep, highest gain first, with notes a person should read."""

    kind: SweepKind
    tasks: tuple[PlannedTask, ...] = ()
    notes: tuple[str, ...] = ()
    scope: tuple[str, ...] = (".",)
    figures: Mapping[str, float] = field(default_factory=dict)


def parallel_count(tasks: Iterable[Task]) -> int:
    """Return the size of the first wave the scheduler could start: by priority, skipping a task whose paths
    overlap one already taken (tasks naming no paths overlap none, as in the scheduler)."""
    taken: list[Task] = []
    for task in sorted(tasks, key=lambda t: -t.priority):
        if not any(overlaps(task.paths, other.paths) for other in taken):
            taken.append(task)
    return len(taken)


def stable_id(prefix: str, key: str) -> str:
    """Return a task id made from what the task covers ('pkg/mod.py' -> 'lint-pkg-mod'), cut with a digest
    of the key when too long."""
    stem = key.removesuffix(".py")
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-") or "top"
    task_id = f"{prefix}-{slug}"
    if len(task_id) <= MAX_ID:
        return task_id
    keep = MAX_ID - DIGEST_CHARS - 1
    return f"{task_id[:keep].rstrip('-')}-{digest(key)}"


def digest(key: str) -> str:
    """Return a short stable digest of a key."""
    return hashlib.sha256(key.encode()).hexdigest()[:DIGEST_CHARS]


def distinct_ids(planned: list[PlannedTask]) -> list[PlannedTask]:
    """Return the tasks with unique ids: keys with one slug ('a_b.py', 'a/b.py') each get a digest."""
    counts = Counter(p.task.id for p in planned)
    return [_with_digest(p) if counts[p.task.id] > 1 else p for p in planned]


def _with_digest(planned: PlannedTask) -> PlannedTask:
    base = planned.task.id[: MAX_ID - DIGEST_CHARS - 1].rstrip("-")
    task = planned.task.model_copy(update={"id": f"{base}-{digest(planned.covers)}"})
    return replace(planned, task=task)


def by_gain(planned: Iterable[PlannedTask]) -> tuple[PlannedTask, ...]:
    """Return the tasks highest gain first (then by id, so the order is stable)."""
    return tuple(sorted(planned, key=lambda p: (-p.gain, p.task.id)))


def line_ranges(lines: Iterable[int]) -> str:
    """Return line numbers as ranges: [1, 2, 3, 7] -> '1-3, 7'."""
    spans: list[list[int]] = []
    for line in sorted(set(lines)):
        if spans and line == spans[-1][1] + 1:
            spans[-1][1] = line
        else:
            spans.append([line, line])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)


def nameable(checkout: Path, file: str) -> bool:
    """Whether a task can name `file`: a valid target path that stays inside the checkout (no symlink out)."""
    return path_problem(file) is None and is_inside(checkout, file)


def shown(checkout: Path, name: str) -> str:
    """Return `name` relative to the checkout when a tool gave it absolute (a symlink out of the repo)."""
    for root in (checkout, checkout.resolve()):
        if PurePosixPath(name).is_relative_to(root.as_posix()):
            return PurePosixPath(name).relative_to(root.as_posix()).as_posix()
    return name


def left_out_note(names: tuple[str, ...], *, what: str) -> str:
    """Return the note on files with work that no task can name (a symlink out, a control character)."""
    listed = ", ".join(repr(name) for name in names[:5]) + (
        f" and {len(names) - 5} more" if len(names) > 5 else ""
    )
    return (
        f"{len(names)} file(s) with {what} left out: no task can name them (a symlink out of the repo, "
        f"a control character in the name): {listed}"
    )


def require_paths(checkout: Path, paths: Iterable[str]) -> None:
    """Refuse sweep PATHS that are not committed files or folders inside the repo (ConfigError)."""
    bad = [p for p in paths if path_problem(p) or not is_inside(checkout, p) or not (checkout / p).exists()]
    if bad:
        names = ", ".join(repr(p) for p in bad)
        raise ConfigError(
            f"{names} not found in the base commit (or leads out of the repo); sweep paths are committed "
            "files or folders inside it"
        )

"""Which queued tasks can run: dependencies done, machine accepted, no overlap with a running task; per-base
counts.

The overlap rule: a task's footprint is its declared `paths` plus, once it has run, the files the commit on
its branch in the landing repo changed (the runner's own git state, never a list from a result). Two tasks
overlap when they work in the same repo, both write (a `review` task only reads: it never waits, and no
writer waits for it), and an entry of one footprint equals, contains or lies inside an entry of the other.
A queued task that overlaps a running one is not claimed until that one ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath

from agent_runner.coordinator.landing import source_repo
from agent_runner.core.errors import GitError
from agent_runner.core.protocols import Slot
from agent_runner.core.task import Task, TaskStatus
from agent_runner.gates.kinds import KINDS
from agent_runner.queue.sources import source_of
from agent_runner.queue.state import TaskState
from agent_runner.repo import git

DONE = (TaskStatus.FINISHED, TaskStatus.UNPUBLISHED)
MAX_TOUCHED = 500  # a landed commit changing more files than this counts as changing the whole repo
Spot = tuple[str, ...]  # a path as its parts; () is the whole repo


def overlaps(a: list[str], b: list[str]) -> bool:
    """Return whether two path lists touch the same file or folder (one contains or equals the other)."""
    for left in a:
        lp = PurePosixPath(left.strip("/") or ".")
        for right in b:
            rp = PurePosixPath(right.strip("/") or ".")
            if lp == rp or lp.is_relative_to(rp) or rp.is_relative_to(lp) or "." in (str(lp), str(rp)):
                return True
    return False


class Overlap(StrEnum):
    """How two footprints overlap, as `run --dry-run` says it."""

    NONE = "none"
    DECLARED = "paths overlap"
    LEARNED = "files changed by an earlier attempt overlap"


@dataclass(frozen=True)
class Spots:
    """Paths as parts, with every prefix of each: an overlap test is set lookups, not pairwise walks."""

    entries: frozenset[Spot]
    prefixes: frozenset[Spot]

    @classmethod
    def of(cls, paths: Iterable[str]) -> Spots:
        """Return the spots of repo-relative paths ("." or "" is the whole repo)."""
        entries = frozenset(_parts(path) for path in paths)
        return cls(entries, frozenset(e[:i] for e in entries for i in range(len(e) + 1)))

    @classmethod
    def merged(cls, group: Iterable[Spots]) -> Spots:
        """Return one Spots holding every entry of `group` (it meets what any of them meets)."""
        group = list(group)
        return cls(
            frozenset().union(*(s.entries for s in group)), frozenset().union(*(s.prefixes for s in group))
        )

    def meets(self, other: Spots) -> bool:
        """Whether an entry of one equals, contains or lies inside an entry of the other."""
        few, many = (self, other) if len(self.entries) <= len(other.entries) else (other, self)
        for spot in few.entries:
            if spot in many.prefixes:  # the same, or a folder holding one of `many`
                return True
            for i in range(len(spot)):
                if spot[:i] in many.entries:  # inside a folder of `many`
                    return True
        return False


def _parts(path: str) -> Spot:
    parts = PurePosixPath(path.strip("/") or ".").parts
    return () if parts in ((), (".",)) else parts


@dataclass(frozen=True)
class Footprint:
    """Where a task may write: its repo, its declared paths, and those plus what its landed commit changed."""

    repo: str | None
    declared: Spots
    every: Spots
    is_read_only: bool = False

    @classmethod
    def of(cls, task: Task, touched: Iterable[str] = ()) -> Footprint:
        """Return the footprint of `task`, with the files its earlier attempt changed."""
        kind = KINDS.get(str(task.kind))
        is_read_only = kind is not None and not kind.commits
        return cls(task.repo, Spots.of(task.paths), Spots.of([*task.paths, *touched]), is_read_only)

    def overlap(self, other: Footprint) -> Overlap:
        """Return how this footprint overlaps `other` (NONE when either task only reads or repos differ)."""
        if self.is_read_only or other.is_read_only or self.repo != other.repo:
            return Overlap.NONE
        if not self.every.entries or not other.every.entries:
            return Overlap.NONE  # the common case of a task with no paths that never ran: no set lookups
        if self.declared.meets(other.declared):
            return Overlap.DECLARED
        return Overlap.LEARNED if self.every.meets(other.every) else Overlap.NONE


class Writers:
    """The footprints of the running tasks that write, merged per repo: one look-up per queued task."""

    def __init__(self, footprints: Iterable[Footprint]) -> None:
        groups: dict[str | None, list[Spots]] = {}
        for footprint in footprints:
            if not footprint.is_read_only and footprint.every.entries:
                groups.setdefault(footprint.repo, []).append(footprint.every)
        self._by_repo = {repo: Spots.merged(group) for repo, group in groups.items()}

    def overlap(self, mine: Footprint) -> bool:
        """Whether `mine` overlaps a running writer (a read-only task never does)."""
        theirs = self._by_repo.get(mine.repo)
        if theirs is None or mine.is_read_only or not mine.every.entries:
            return False
        return mine.every.meets(theirs)


class Footprints:
    """Each task's footprint; what its landed commit changed is read from git once per ended attempt."""

    def __init__(self, root: Path | None) -> None:
        self.root = root  # None: declared paths only (no repo to read)
        self._touched: dict[tuple[str, str, int], tuple[str, ...]] = {}
        self._made: dict[tuple[str, int], tuple[Task, Footprint]] = {}

    def of(self, task: Task, *, n_ended: int) -> Footprint:
        """Return the footprint of `task` once `n_ended` of its attempts have ended."""
        made = self._made.get((task.id, n_ended))
        if made is None or made[0] is not task:
            made = (task, Footprint.of(task, self.touched(task, n_ended=n_ended)))
            self._made[(task.id, n_ended)] = made
        return made[1]

    def of_state(self, state: TaskState) -> Footprint | None:
        """Return the footprint of a queued or running task (None: its definition is no valid Task)."""
        if state.task is None:
            return None
        n_ended = state.attempt - (1 if state.status == TaskStatus.RUNNING else 0)
        return self.of(state.task, n_ended=n_ended)

    def touched(self, task: Task, *, n_ended: int) -> tuple[str, ...]:
        """Return the files the commit on the task's branch changed (none before its first attempt ended)."""
        if n_ended <= 0 or self.root is None:
            return ()
        key = (task.id, task.branch_name, n_ended)
        if key not in self._touched:
            self._touched[key] = landed_files(self.root, task)
        return self._touched[key]


def landed_files(root: Path, task: Task) -> tuple[str, ...]:
    """Return the files the tip commit of the task's branch changed in its landing repo (none: no branch)."""
    repo = _landing_repo(root, task)
    if repo is None:
        return ()
    ref = f"refs/heads/{task.branch_name}"
    try:
        out = git.run_git(repo, "diff-tree", "-r", "--name-only", "--no-renames", "-z", f"{ref}^", ref)
    except GitError:
        return ()  # no such branch (never landed), or a root commit
    files = tuple(sorted({name for name in out.split("\0") if name}))
    return (".",) if len(files) > MAX_TOUCHED else files


def _landing_repo(root: Path, task: Task) -> Path | None:
    """The repo the task's branch lands in; for a URL, its cache only if it exists (nothing is fetched)."""
    source = source_of(root, task.repo)
    if git.is_local(source):
        return Path(source)
    cache = git.cache_path(source)
    return cache if (cache / "HEAD").exists() else None


def is_pending(
    state: TaskState,
    states: dict[str, TaskState],
    *,
    in_scope: Callable[[TaskState], bool],
    slots: list[Slot],
    seen: frozenset[str] = frozenset(),
) -> bool:
    """Return whether a queued task can still run in this run (now or after back-off, deps or overlap)."""
    if (
        state.status != TaskStatus.QUEUED
        or not state.has_definition
        or not in_scope(state)
        or state.id in seen
    ):
        return False
    machine = state.task.machine if state.task is not None else None
    if not any(slot.accepts(machine) for slot in slots):
        return False
    for dep_id in state.depends_on:
        dep = states.get(dep_id)
        if dep is None:
            return False
        if dep.status in DONE or dep.status == TaskStatus.RUNNING:
            continue
        if not is_pending(dep, states, in_scope=in_scope, slots=slots, seen=seen | {state.id}):
            return False
    return True


def queued_by_base(
    root: Path, states: dict[str, TaskState], in_scope: Callable[[TaskState], bool]
) -> dict[tuple[str, str | None], int]:
    """Count the queued tasks in scope per (source repo, base branch)."""
    counts: dict[tuple[str, str | None], int] = {}
    for state in states.values():
        if state.status == TaskStatus.QUEUED and state.has_definition and in_scope(state):
            if state.task is None:
                continue  # the scheduler fails it when it comes up
            key = (source_repo(root, state.task), state.task.base)
            counts[key] = counts.get(key, 0) + 1
    return counts

"""The queue file as a log: append-only JSON Lines, locked, fsynced, tolerant of a torn last line.

Every write takes an exclusive `fcntl.flock` on `<queue>.lock`, first reads whatever other writers appended
since this process last looked (so state is incremental, not re-parsed), then appends and fsyncs. A torn last
line (a crash mid-write) is ignored on read and cut off by the next writer; a failed write is cut back so no
partial line stays. `compact` swaps in a one-line-per-task file by atomic rename; readers notice the swap.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from agent_runner.core.errors import QueueCorruptError, QueueError
from agent_runner.core.task import TaskStatus
from agent_runner.queue.schema import event_problem
from agent_runner.queue.state import Event, EventType, TaskState, apply

_decode = json.JSONDecoder().decode  # skips json.loads' per-call encoding detection: the fold is hot
SIDE_SUFFIXES = ("lock", "compact", "coordinator")  # <queue>.<suffix>: the lock, a compaction, the run lock


def side_files(queue: str) -> list[str]:
    """Return the names of the files kept beside the queue file `queue` (for .gitignore)."""
    return [f"{queue}.{suffix}" for suffix in SIDE_SUFFIXES]


@dataclass(frozen=True)
class CorruptLine:
    """A complete line the fold skipped: not JSON, not shaped as an event, or a move the task cannot make."""

    lineno: int
    text: str
    problem: str = "not a JSON event"
    move: bool = False  # a well-formed event its task cannot make: skipped, never believed, harmless to go on


class QueueLog:
    """The queue file and the folded state of every task in it (reading, locking, appending)."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.clock = clock
        self.states: dict[str, TaskState] = {}
        self.corrupt: list[CorruptLine] = []
        self._offset = 0
        self._lineno = 0
        self._inode: int | None = None
        self._head = b""  # first bytes of the file: tells a compacted file apart even if its inode is reused
        self._live_ids: set[str] = set()  # queued or running: all that claim() has to look at
        self._sink: list[Event] | None = None  # events() collects accepted events here

    # -- reading -------------------------------------------------------------------------------------
    def refresh(self) -> dict[str, TaskState]:
        """Read what was appended since the last look and return the state of every task."""
        try:
            with open(self.path, "rb") as fh:
                info = os.fstat(fh.fileno())
                if self._is_other_file(fh, info):
                    self._reset(info.st_ino)
                fh.seek(self._offset)
                self._consume(fh.read())
        except FileNotFoundError:
            self._reset(None)
        return self.states

    def _is_other_file(self, fh: BinaryIO, info: os.stat_result) -> bool:
        if info.st_ino != self._inode or info.st_size < self._offset:
            return True
        return bool(self._head) and os.pread(fh.fileno(), len(self._head), 0) != self._head

    def _reset(self, inode: int | None) -> None:
        self.states, self.corrupt = {}, []
        self._live_ids = set()
        self._offset = self._lineno = 0
        self._inode = inode
        self._head = b""

    def _consume(self, data: bytes) -> None:
        end = data.rfind(b"\n") + 1  # a torn last line is left for later (or repaired by a writer)
        if self._offset == 0 and end:
            self._head = data[: min(end, 64)]
        self._offset += end
        for line in data[:end].decode("utf-8", "replace").split("\n")[:-1]:
            self._lineno += 1
            if line.strip():
                self._apply_line(line)

    def _apply_line(self, line: str) -> None:
        try:
            event = _decode(line)
        except ValueError:
            event = None
        malformed = event_problem(event)
        problem = malformed or apply(self.states, event, self._lineno)
        if problem is not None:
            self.corrupt.append(CorruptLine(self._lineno, line[:200], problem, move=malformed is None))
            return
        if self._sink is not None:
            self._sink.append(event)
        state = self.states[event["task"]]
        if state.status in (TaskStatus.QUEUED, TaskStatus.RUNNING):
            self._live_ids.add(state.id)
        else:
            self._live_ids.discard(state.id)

    def check(self, *, strict: bool = False) -> None:
        """Raise QueueCorruptError naming the first line that is no event (or, if strict, any skipped line).

        A well-formed event its task cannot make (a stale claim after `finished`) is skipped and reported by
        the readers, but does not stop a run: nothing in it is believed, so going on is safe.
        """
        self.refresh()
        bad_lines = [bad for bad in self.corrupt if strict or not bad.move]
        if bad_lines:
            bad = bad_lines[0]
            raise QueueCorruptError(
                f"{self.path}:{bad.lineno}: {bad.problem} ({bad.text[:60]!r}); "
                "fix or delete that line (the rest of the queue is still read)"
            )

    def events(self, task_id: str | None = None) -> Iterator[Event]:
        """Yield the events the fold accepted (for one task, or all), in file order; skipped lines are not."""
        if self._offset == 0:  # a cold reader: keep the events as the fold accepts them (one parse, not two)
            self._sink = []
            try:
                self.refresh()
            finally:
                accepted, self._sink = self._sink, None
        else:
            accepted = self._reread()
        yield from (event for event in accepted if task_id is None or event["task"] == task_id)

    def _reread(self) -> list[Event]:
        lines = self._folded_lines()
        skipped = {bad.lineno for bad in self.corrupt}
        numbered = enumerate(lines, start=1)
        return [_decode(line) for n, line in numbered if n not in skipped and line.strip()]

    def _folded_lines(self) -> list[str]:
        """Return the lines of the file that `refresh` has folded (a compaction meanwhile: read again)."""
        for _ in range(3):
            try:
                with open(self.path, "rb") as fh:
                    self.refresh()
                    if os.fstat(fh.fileno()).st_ino == self._inode:
                        data = fh.read(self._offset)
                        return data.decode("utf-8", "replace").split("\n")[: self._lineno]
            except FileNotFoundError:
                return []
        raise QueueError(f"{self.path} kept being replaced while it was read; try again")

    # -- writing -------------------------------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[dict[str, TaskState]]:
        """Hold the exclusive lock with fresh state; writes inside use `_append`."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield self.refresh()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _append(self, *events: Event) -> None:
        """Append events under the lock: repair a torn tail, write, fsync, fold."""
        now = self.clock()
        lines = [{"ts": round(now, 6), **event} for event in events]
        data = "".join(json.dumps(e, separators=(",", ":"), default=str) + "\n" for e in lines).encode()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size > self._offset:  # a torn line from a crashed writer: cut it off
                os.ftruncate(fd, self._offset)
            self._write_all(fd, data)
            if self._inode is None:
                self._inode = os.fstat(fd).st_ino
        finally:
            os.close(fd)
        self._consume(data)

    def _write_all(self, fd: int, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:  # a short write (disk or file-size limit) raises on the next call
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError as exc:
            with suppress(OSError):
                os.ftruncate(fd, self._offset)  # never leave a partial line behind
            hint = "the disk is full; free space and run again" if exc.errno == errno.ENOSPC else exc.strerror
            raise QueueError(f"cannot write {self.path}: {hint}. Nothing was recorded.") from exc

    def record(self, **event: Any) -> None:
        """Append one event as it is (under the lock)."""
        with self.locked():
            self._append(event)

    def compact(self) -> int:
        """Rewrite the file as one snapshot line per task (atomic rename); return the lines written."""
        with self.locked() as states:
            if self.corrupt:
                self.check(strict=True)  # compaction would drop the line for good: make the user look first
            tmp = self.path.with_name(self.path.name + ".compact")
            try:
                self._write_snapshot(tmp, states)
            except OSError as exc:
                with suppress(OSError):
                    tmp.unlink(missing_ok=True)
                raise QueueError(
                    f"cannot compact {self.path}: {exc.strerror}; the queue is unchanged"
                ) from exc
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)
            self._inode = None
            self.refresh()
            return len(states)

    def _write_snapshot(self, tmp: Path, states: dict[str, TaskState]) -> None:
        """Write one snapshot line per task, oldest first, renumbered so later lines stay younger."""
        now = round(self.clock(), 6)
        with open(tmp, "w", encoding="utf-8") as fh:
            for seq, state in enumerate(sorted(states.values(), key=lambda s: s.seq), start=1):
                event = {"ts": now, "type": EventType.SNAPSHOT, "task": state.id}
                snapshot = {**state.to_json(), "seq": seq}
                fh.write(json.dumps({**event, "state": snapshot}, separators=(",", ":"), default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

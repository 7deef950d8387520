"""The central queue file: append-only JSON Lines, locked, fsynced, tolerant of a torn last line.

Every write takes an exclusive `fcntl.flock` on `<queue>.lock`, first reads whatever other writers appended
since this process last looked (so state is incremental, not re-parsed), then appends one or more events
and fsyncs. A torn last line (a crash mid-write) is ignored on read and cut off by the next writer.
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

from agent_runner.errors import QueueCorruptError, QueueError, StaleAttemptError
from agent_runner.queue_state import EventType, TaskState, apply, is_expired, is_runnable
from agent_runner.task import Task, TaskStatus

Accept = Callable[[TaskState], bool]
_decode = json.JSONDecoder().decode  # skips json.loads' per-call encoding detection: the fold is hot


@dataclass(frozen=True)
class CorruptLine:
    """A line in the middle of the file that is not a JSON event."""

    lineno: int
    text: str


@dataclass(frozen=True)
class Claim:
    """A granted lease on one attempt of a task."""

    task_id: str
    attempt: int
    state: TaskState


class Queue:
    """The queue file and the folded state of every task in it."""

    def __init__(self, path: Path, *, max_infra: int = 5, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.max_infra = max_infra
        self.clock = clock
        self.states: dict[str, TaskState] = {}
        self.corrupt: list[CorruptLine] = []
        self._offset = 0
        self._lineno = 0
        self._inode: int | None = None
        self._head = b""  # first bytes of the file: tells a compacted file apart even if its inode is reused
        self._live_ids: set[str] = set()  # queued or running: all that claim() has to look at

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
            if not isinstance(event, dict):
                raise ValueError("not an object")
        except ValueError:
            self.corrupt.append(CorruptLine(self._lineno, line[:200]))
            return
        apply(self.states, event, self._lineno)
        state = self.states.get(event.get("task"))  # type: ignore[arg-type]
        if state is not None and state.status in (TaskStatus.QUEUED, TaskStatus.RUNNING):
            self._live_ids.add(state.id)
        elif state is not None:
            self._live_ids.discard(state.id)

    def check(self) -> None:
        """Raise QueueCorruptError naming the first corrupt line, if any."""
        self.refresh()
        if self.corrupt:
            bad = self.corrupt[0]
            raise QueueCorruptError(
                f"{self.path}:{bad.lineno}: not a JSON event ({bad.text[:60]!r}); "
                "fix or delete that line (the rest of the queue is still read)"
            )

    def events(self, task_id: str | None = None) -> Iterator[dict[str, Any]]:
        """Yield the events in the file (for one task, or all), skipping corrupt lines."""
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and (task_id is None or event.get("task") == task_id):
                    yield event

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

    def _append(self, *events: dict[str, Any]) -> None:
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

    # -- operations ------------------------------------------------------------------------------------
    def add(self, task: Task, *, file: str | None = None, digest: str | None = None) -> bool:
        """Queue a task not seen before (or re-define a waiting or invalid one); return whether it did."""
        with self.locked() as states:
            if not _accepts_definition(states.get(task.id), digest):
                return False
            self._append(_queued_event(task, file, digest))
            return True

    def mark_invalid(self, task_id: str, file: str, reason: str) -> None:
        """Record that a task file is invalid (once per reason); a waiting task stops being runnable."""
        with self.locked() as states:
            state = states.get(task_id)
            waiting = state is not None and state.status == TaskStatus.QUEUED
            if state is None or waiting or (state.status == TaskStatus.INVALID and state.reason != reason):
                self._append(_event(EventType.INVALID, task_id, file=file, reason=reason))

    def claim(self, worker: str, *, lease_s: float, accept: Accept | None = None) -> Claim | None:
        """Atomically lease the highest-priority runnable task, or return None."""
        with self.locked() as states:
            now = self.clock()
            self._expire(states, now)
            live = [states[task_id] for task_id in self._live_ids]
            ok = [s for s in live if is_runnable(s, states, now) and (accept is None or accept(s))]
            if not ok:
                return None
            best = min(ok, key=lambda s: (-s.priority, s.seq))
            attempt = best.attempt + 1
            event = _event(EventType.CLAIMED, best.id, attempt=attempt, worker=worker)
            self._append({**event, "lease_until": round(now + lease_s, 3)})
            return Claim(best.id, attempt, states[best.id])

    def _expire(self, states: dict[str, TaskState], now: float) -> None:
        for state in [states[task_id] for task_id in self._live_ids if is_expired(states[task_id], now)]:
            final = state.infra + 1 > self.max_infra
            reason = f"lease expired on {state.worker} (attempt {state.attempt})"
            reason += "; too many infrastructure failures" if final else ""
            event = _event(EventType.RELEASED, state.id, attempt=state.attempt, infra=True, final=final)
            self._append({**event, "reason": reason})

    def _live(self, states: dict[str, TaskState], task_id: str, attempt: int) -> TaskState:
        state = states.get(task_id)
        if state is None or state.status != TaskStatus.RUNNING or state.attempt != attempt:
            live = f"attempt {state.attempt} is {state.status}" if state else "the task is unknown"
            raise StaleAttemptError(f"{task_id}: attempt {attempt} is not live ({live}); result discarded")
        return state

    def heartbeat(self, task_id: str, attempt: int, *, lease_s: float) -> None:
        """Extend a live lease; raise StaleAttemptError when the attempt was re-granted."""
        with self.locked() as states:
            self._live(states, task_id, attempt)
            until = round(self.clock() + lease_s, 3)
            self._append(_event(EventType.HEARTBEAT, task_id, attempt=attempt, lease_until=until))

    def finish(self, task_id: str, attempt: int, result: dict[str, Any]) -> None:
        """Record an accepted result for a live attempt."""
        with self.locked() as states:
            self._live(states, task_id, attempt)
            self._append(_event(EventType.FINISHED, task_id, attempt=attempt, result=result))

    def fail(self, task_id: str, attempt: int, reason: str, *, result: dict[str, Any] | None = None) -> bool:
        """Record a task failure (spends an attempt); return whether the task is now failed for good."""
        with self.locked() as states:
            state = self._live(states, task_id, attempt)
            final = state.spent + 1 >= state.max_attempts
            if final:
                reason = f"{reason} (attempt {state.spent + 1} of {state.max_attempts})"
            event = _event(EventType.FAILED, task_id, attempt=attempt, reason=reason, final=final)
            self._append({**event, "result": result} if result is not None else event)
            return final

    def release(
        self, task_id: str, attempt: int, reason: str, *, infra: bool = True, backoff_s: float = 0.0
    ) -> bool:
        """Give a live attempt back without spending an attempt; return whether the task failed for good."""
        with self.locked() as states:
            state = self._live(states, task_id, attempt)
            final = infra and state.infra + 1 > self.max_infra
            if final:
                reason = f"{reason}; gave up after {self.max_infra} infrastructure retries"
            not_before = round(self.clock() + backoff_s, 3) if backoff_s else 0
            event = _event(EventType.RELEASED, task_id, attempt=attempt, reason=reason, infra=infra)
            self._append({**event, "final": final, "not_before": not_before})
            return final

    def cancel(self, task_id: str, reason: str = "cancelled by user") -> TaskState:
        """Cancel a task (a running attempt's late result will be rejected)."""
        with self.locked() as states:
            state = self._known(states, task_id)
            if state.status in (TaskStatus.FINISHED, TaskStatus.CANCELLED):
                raise QueueError(f"{task_id} is already {state.status}; nothing to cancel")
            self._append(_event(EventType.CANCELLED, task_id, attempt=state.attempt, reason=reason))
            return states[task_id]

    def requeue(
        self, task_id: str, task: Task | None = None, *, file: str | None = None, digest: str | None = None
    ) -> TaskState:
        """Queue a task again with fresh attempt counters (optionally with a re-read definition)."""
        with self.locked() as states:
            state = self._known(states, task_id)
            if state.status == TaskStatus.RUNNING:
                raise QueueError(f"{task_id} is running (attempt {state.attempt}); cancel it first")
            if task is None and not state.task:
                raise QueueError(f"{task_id} has no valid definition ({state.reason}); fix its task file")
            event: dict[str, Any] = {"type": EventType.REQUEUED, "task": task_id}
            if task is not None:
                event.update(_queued_event(task, file, digest), type=EventType.REQUEUED)
            self._append(event)
            return states[task_id]

    def publish_event(self, task_id: str, *, pr_url: str | None = None, error: str | None = None) -> None:
        """Record the outcome of publishing a finished task."""
        with self.locked():
            if error is None:
                self._append(_event(EventType.PUBLISHED, task_id, pr_url=pr_url))
            else:
                self._append(_event(EventType.UNPUBLISHED, task_id, reason=error))

    def _known(self, states: dict[str, TaskState], task_id: str) -> TaskState:
        if task_id not in states:
            raise QueueError(f"no task '{task_id}' in {self.path}; `run-agents list` shows the known ids")
        return states[task_id]

    def compact(self) -> int:
        """Rewrite the file as one snapshot line per task (atomic rename); return the lines written."""
        with self.locked() as states:
            if self.corrupt:
                self.check()  # compaction would drop the corrupt line for good: make the user look first
            tmp = self.path.with_name(self.path.name + ".compact")
            now = round(self.clock(), 6)
            with open(tmp, "w", encoding="utf-8") as fh:
                for state in states.values():
                    event = {"ts": now, **_event(EventType.SNAPSHOT, state.id, state=state.to_json())}
                    fh.write(json.dumps(event, separators=(",", ":"), default=str) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)
            self._inode = None
            self.refresh()
            return len(states)


def _accepts_definition(state: TaskState | None, digest: str | None) -> bool:
    """Whether a (new or edited) task file may (re-)define the task: not while running or once ended."""
    if state is None or not state.task or state.status == TaskStatus.INVALID:
        return True
    return state.status == TaskStatus.QUEUED and state.digest != digest


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _event(kind: EventType, task_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "task": task_id, **fields}


def _queued_event(task: Task, file: str | None, digest: str | None) -> dict[str, Any]:
    definition = task.model_dump(mode="json", exclude_defaults=True)
    definition.update(id=task.id, kind=task.kind.value)
    return {"type": EventType.QUEUED, "task": task.id, "def": definition, "file": file, "digest": digest}

"""The phase of a running attempt, in a small file beside its trajectory, for a view on the same machine.

The worker writes `phase.json` (atomically: a temporary file, then a rename) each time a phase of the job
starts or ends; `run`'s live table reads it as it reads the trajectory. Phases nest (a gate round runs inside
the agent phase), so the file holds the stack of open phases and how often each was entered (gate round r).
An empty stack after some phases means the worker is done and its result is on its way back (and, when it
committed, being landed).
A remote worker writes the file on its own machine: the view finds none and shows the attempt as running.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG

PHASE_FILE = "phase.json"
MAX_BYTES = 4096  # the file holds a handful of names; anything larger is not one the worker wrote
# The job's phases. The file is display only, but an agent without a sandbox could write it: a name outside
# these is not the worker's, and is shown as plain `running`.
PHASES = frozenset({"checkout", "setup", "baseline", "agent", "gates", "commit"})


@dataclass(frozen=True)
class PhaseState:
    """The open phases of an attempt (innermost last) and how many times each phase was entered."""

    stack: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    time: float = 0.0

    @property
    def current(self) -> str | None:
        """Return the innermost open phase; None once the worker left its last phase (or before its first)."""
        return self.stack[-1] if self.stack else None

    def entered(self, name: str) -> PhaseState:
        """Return the state after phase `name` starts."""
        counts = {**self.counts, name: self.counts.get(name, 0) + 1}
        return PhaseState((*self.stack, name), counts, time.time())

    def left(self) -> PhaseState:
        """Return the state after the innermost phase ends."""
        return PhaseState(self.stack[:-1], self.counts, time.time())

    def label(self, *, step: int) -> str:
        """Return what a person reads: `checkout`, `agent step 4`, `gates round 2`, `landing`, `ending`..."""
        name = self.current
        if name is None:
            if not self.counts:
                return "running"
            return "landing" if "commit" in self.counts else "ending"  # its result is on its way back
        if name == "agent":
            return f"agent step {max(step, 1)}"
        if name == "gates":
            return f"gates round {self.counts.get('gates', 1)}"
        return name if name in PHASES else "running"


def phase_path(run_dir: Path) -> Path:
    """Return the phase file of the attempt whose run folder is `run_dir`."""
    return run_dir / PHASE_FILE


@contextlib.contextmanager
def shown(run_dir: Path, name: str) -> Iterator[None]:
    """Write phase `name` as started while the block runs, and as ended after it (however it ends)."""
    path = phase_path(run_dir)
    _write(path, (read_phase(path) or PhaseState()).entered(name))
    try:
        yield
    finally:
        _write(path, (read_phase(path) or PhaseState()).left())


def read_phase(path: Path, *, since: float = 0.0) -> PhaseState | None:
    """Return the phase file's state, or None when it is missing, unreadable, or older than `since`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        stat = os.fstat(fd)
        if not S_ISREG(stat.st_mode) or stat.st_mtime < since:
            return None
        return _parse(fh.read(MAX_BYTES + 1))


def _parse(data: bytes) -> PhaseState | None:
    if len(data) > MAX_BYTES:
        return None
    try:
        record = json.loads(data)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    stack, counts, at = record.get("stack"), record.get("counts"), record.get("time")
    if not isinstance(stack, list) or not isinstance(counts, dict) or not isinstance(at, int | float):
        return None
    try:
        return PhaseState(tuple(map(str, stack)), {str(k): int(n) for k, n in counts.items()}, float(at))
    except (TypeError, ValueError):  # a count that is not a number
        return None


def _write(path: Path, state: PhaseState) -> None:
    """Replace the file at once, so a reader never sees half of it; a failure only costs the display."""
    record = {"stack": list(state.stack), "counts": state.counts, "time": round(state.time, 3)}
    tmp = path.with_name(f".{PHASE_FILE}.{os.getpid()}.tmp")
    with contextlib.suppress(OSError):
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, path)

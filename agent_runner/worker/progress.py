"""Steps and cost of a running attempt, read incrementally from its trajectory file (for the live table
and the run's budget, on the machine where the worker writes it)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from stat import S_ISREG

TYPE_PREFIX = b'{"type": "'  # how every trajectory record starts (json.dumps with its default separators)


class TrajectoryProgress:
    """Reads steps and cost of a running attempt from its trajectory file, incrementally."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.steps, self.cost = path, 0, 0, 0.0
        self.is_cost_unknown = False  # a model call had no price: the attempt's cost is unknown
        self.is_acting = False  # the last record is a model turn: its tools run now, in the same step

    @property
    def step(self) -> int:
        """Return the step under way: the last model turn's while its tools run, else the next one."""
        return self.steps if self.is_acting else self.steps + 1

    def poll(self) -> tuple[int, float]:
        """Return (model calls so far, cost so far)."""
        try:  # a regular file only: no link followed, no FIFO (whose open would block) read
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return self.steps, self.cost
        with os.fdopen(fd, "rb") as fh:
            if not S_ISREG(os.fstat(fd).st_mode):
                return self.steps, self.cost
            fh.seek(self.offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].splitlines():
            self._see(line)
        return self.steps, self.cost

    def _see(self, line: bytes) -> None:
        if line.startswith(TYPE_PREFIX):
            record_type = line[len(TYPE_PREFIX) : line.find(b'"', len(TYPE_PREFIX))]
            self.is_acting = record_type == b"model"
        if b'"model"' in line:
            self._count(line)

    def _count(self, line: bytes) -> None:
        try:
            record = json.loads(line)
        except ValueError:
            return
        if isinstance(record, dict) and record.get("type") == "model":
            self.steps += 1
            price = _price(record.get("cost_usd"))
            self.is_cost_unknown |= price is None
            self.cost += price or 0.0


def _price(value: object) -> float | None:
    """Return a model call's price when it is a finite, non-negative number; None (unknown) otherwise: the
    file is read by the budget, and an agent without a sandbox could have written it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None

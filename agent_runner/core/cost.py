"""What an attempt or a run spent, and how it reads: a known dollar amount, or unknown.

A cost is unknown (None) once any model call had no price (a local server, a model name missing from the
price table); an attempt that made no model call (fix-lint by ruff alone) spent a known $0. A total with an
unknown part says so ("$0.42 + unknown"); a budget counts an unknown part as $0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

UNKNOWN = "unknown"
NARROW_UNKNOWN = "?"  # in narrow table cells, with a legend under the table
NARROW_LEGEND = (
    "? = cost unknown: the model has no price (a local server, or a name not in the price table), "
    "or a remote worker died with its record"
)


def result_cost(record: Mapping[str, Any]) -> float | None:
    """Return the cost a stored result record carries (None: unknown); a record without the field (older
    queue files) spent $0 if it made no model call, else an unknown amount, as did one whose spend could not
    be read back (a remote worker died)."""
    value = record.get("cost_usd")
    if value is not None:  # a stored record is read back, not trusted: NaN, infinite or negative is unknown
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if is_number and math.isfinite(value) and value >= 0 else None
    return None if record.get("model_calls") or record.get("steps") or record.get("spend_unknown") else 0.0


def usd(cost: float | None, *, digits: int = 4, unknown: str = UNKNOWN) -> str:
    """Return `cost` as `$0.0123`, or `unknown` (the `unknown` text) when it is None."""
    return unknown if cost is None else f"${cost:.{digits}f}"


def unknown_cost_note(n_unknown: int) -> str:
    """Return the warning for attempts of unknown cost ("" when there were none)."""
    if not n_unknown:
        return ""
    attempts = "attempt" if n_unknown == 1 else "attempts"
    return (
        f"cost unknown for {n_unknown} {attempts}: the model has no price (a local server or a model name "
        "not in the price table) or a remote worker died with its record; a budget (budget_usd) counts "
        "them as $0"
    )


@dataclass
class CostTotal:
    """A sum of costs: the known part and how many parts were unknown."""

    known_usd: float = 0.0
    n_unknown: int = 0

    def add(self, cost: float | None) -> None:
        """Count one cost in (None: an unknown one)."""
        if cost is None:
            self.n_unknown += 1
        else:
            self.known_usd += cost

    @property
    def usd(self) -> float | None:
        """The total, or None when some part of it is unknown."""
        return None if self.n_unknown else self.known_usd

    def text(self, *, digits: int = 4, unknown: str = UNKNOWN) -> str:
        """Return `$0.4200`, `$0.4200 + unknown`, or `unknown` when every part with a cost is unknown."""
        if not self.n_unknown:
            return f"${self.known_usd:.{digits}f}"
        return f"${self.known_usd:.{digits}f} + {unknown}" if self.known_usd else unknown

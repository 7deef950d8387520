"""Budget benchmark: what budgets that pause cost while nothing is paused.

Prints (1) the pause check a worker makes before each model call (one failed open of the pause file),
beside the limit check it already made there (the baseline), and (2) what the coordinator spends per round
of its loop reading the spend of N running attempts from their trajectories (incrementally: only what was
appended since), beside the loop's own poll period.

    python bench/budget_bench.py [--attempts 16] [--records 200]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from agent_runner.coordinator.pause import LiveSpend
from agent_runner.coordinator.scheduler import POLL_S
from agent_runner.core.task import Limits
from agent_runner.worker.limits import limit_hit
from agent_runner.worker.pause import pause_reason

N_CALLS = 20_000


def per_call_us(action: object, n: int = N_CALLS) -> float:
    """Return the mean microseconds of one call of `action`."""
    assert callable(action)
    started = time.perf_counter()
    for _ in range(n):
        action()
    return (time.perf_counter() - started) / n * 1e6


def pause_check(folder: Path) -> None:
    """Print the pause check beside the limit check of the same model call."""
    limits = Limits(steps=60, cost_usd=2.0, minutes=30)
    baseline = per_call_us(
        lambda: limit_hit(
            limits, n_calls=3, tokens=9000, cost=0.1, elapsed_s=60, next_call_bound=lambda: 0.01
        )
    )
    check = per_call_us(lambda: pause_reason(folder))
    print(f"before each model call: limit check {baseline:.1f} us, pause check {check:.1f} us "
          f"({check / baseline:.1f}x the limit check; a model call takes seconds)")  # fmt: skip


def live_spend(folder: Path, n_attempts: int, n_records: int) -> None:
    """Print one loop round's read of N trajectories (nothing new, then one record each) beside POLL_S."""
    record = json.dumps({"type": "model", "cost_usd": 0.001, "message": {"text": "x" * 2000}}) + "\n"
    keys = [(f"t{i}", 1) for i in range(n_attempts)]
    for task_id, attempt in keys:
        run_dir = folder / "runs" / task_id / str(attempt)
        run_dir.mkdir(parents=True)
        (run_dir / "trajectory.jsonl").write_text(record * n_records, encoding="utf-8")
    live = LiveSpend(folder)
    started = time.perf_counter()
    live.total(keys)
    first_ms = (time.perf_counter() - started) * 1e3
    idle_ms = per_call_us(lambda: live.total(keys), 200) / 1e3
    for task_id, attempt in keys:
        with open(folder / "runs" / task_id / str(attempt) / "trajectory.jsonl", "a") as fh:
            fh.write(record)
    started = time.perf_counter()
    live.total(keys)
    grown_ms = (time.perf_counter() - started) * 1e3
    print(f"{n_attempts} running attempts: first read of {n_records} records each {first_ms:.1f} ms (once); "
          f"a round with nothing new {idle_ms:.2f} ms, with one new record each {grown_ms:.2f} ms "
          f"({idle_ms / (POLL_S * 1e3):.1%} of the loop's {POLL_S * 1e3:.0f} ms poll)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--attempts", type=int, default=16)
    parser.add_argument("--records", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pause_check(Path(tmp))
        live_spend(Path(tmp), args.attempts, args.records)


if __name__ == "__main__":
    main()

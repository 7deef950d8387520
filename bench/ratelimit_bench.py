"""Rate-limit-aware dispatch: many workers on one key that allows N requests in flight.

    python bench/ratelimit_bench.py                  # N = 2, 16 tasks, 3 calls of 0.5 s each
    python bench/ratelimit_bench.py --n 2 --tasks 24 --delay 0.5 --without

The fake LLM server (real Anthropic SDK, real local workers) answers 429 with `retry-after` and quota
headers whenever more than N requests would be in flight. Runs, in turns:
  baseline  N workers, no limit at the server;
  limited   4N workers, the server's limit N, the coordinator's adaptive limit on (defaults);
  without   (--without) 4N workers, the server's limit N, `rate_limits.enabled = false`: today's path.
Printed per run: wall time, requests in flight at the server (time-weighted mean, max), 429s, attempts
spent on rate limits (failed events) and re-queued unspent, tasks finished; then limited / baseline.
The target: every task finished, no attempt spent, in flight near N, limited <= 1.3 x baseline.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run_bench import small_repo

from agent_runner.config.runner import load_config
from agent_runner.coordinator.events import RunEvent
from agent_runner.coordinator.scheduler import Scheduler
from agent_runner.executors.local import LocalExecutor
from agent_runner.queue.intake import open_queue
from agent_runner.testing.fake_llm import (
    FakeLLMServer,
    InFlightLimit,
    InFlightStats,
    RecordedRequest,
    Reply,
    turn,
)
from agent_runner.testing.scripts import write_command

UNLIMITED = 1 << 30


@dataclass
class Figures:
    """One run's figures."""

    label: str
    workers: int
    wall_s: float
    stats: InFlightStats
    n_finished: int
    n_failed: int
    n_requeued: int
    throttled: dict[str, str]


def session(n_calls: int, delay_s: float):  # type: ignore[no-untyped-def]
    """Return the server's replies: n_calls - 1 bash calls, then finish (each answered after delay_s)."""

    def reply(request: RecordedRequest) -> Reply:
        n_results = sum(
            1
            for message in request.json["messages"]
            if isinstance(message["content"], list)
            for block in message["content"]
            if block.get("type") == "tool_result"
        )
        if n_results + 1 >= n_calls:
            return turn("done", [("finish", {"summary": "wrote out.txt"})], delay_s=delay_s)
        command = write_command("out.txt", f"step {n_results}\n")
        return turn("work", [("bash", {"command": command})], delay_s=delay_s)

    return reply


def run_once(
    tmp: Path, label: str, *, workers: int, limit: int, enabled: bool, args: argparse.Namespace
) -> Figures:
    """Run `args.tasks` tasks with `workers` workers against a server allowing `limit` in flight."""
    in_flight = InFlightLimit(limit, retry_after_s=args.retry_after)
    with FakeLLMServer(default=session(args.calls, args.delay), in_flight_limit=in_flight) as server:
        repo = small_repo(tmp / label)
        with open(repo / "pyproject.toml", "a", encoding="utf-8") as fh:
            fh.write(
                f'\n[tool.agent-runner.models]\nanthropic_base_url = "{server.anthropic_base_url}"\n'
                f"timeout_s = 60\n\n[tool.agent-runner.rate_limits]\nenabled = {str(enabled).lower()}\n"
            )
        for i in range(args.tasks):
            front = "kind: change\nmodel: anthropic:claude-bench\nreflection_rounds: 0\n"
            (repo / "tasks" / f"t{i:03d}.md").write_text(f"---\n{front}---\nWrite out.txt.\n")
        config = load_config(repo, overrides={"workers": workers})
        queue = open_queue(repo, config)
        executor = LocalExecutor(workdir=config.path(repo, "state_dir"), workers=workers, cwd=repo)
        events: list[RunEvent] = []
        scheduler = Scheduler(queue, executor, config=config, root=repo, on_event=events.append)
        started = time.perf_counter()
        try:
            summary = scheduler.run()
        finally:
            wall = time.perf_counter() - started
            executor.close()
    kinds = [event.kind for event in events]
    return Figures(
        label, workers, wall, in_flight.stats(), len(summary.finished), kinds.count("failed"),
        kinds.count("requeued"), summary.throttled,
    )  # fmt: skip


def show(figures: Figures) -> None:
    s = figures.stats
    print(
        f"{figures.label:<9} | {figures.workers:7d} | {figures.wall_s:6.1f} | {s.mean_in_flight:7.2f} | "
        f"{s.max_in_flight:6d} | {s.n_limited:5d} | {figures.n_failed:13d} | {figures.n_requeued:8d} | "
        f"{figures.n_finished:8d}"
    )
    for pool, note in figures.throttled.items():
        print(f"          throttled {pool}: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2, help="Requests in flight the server allows.")
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--calls", type=int, default=3, help="Model calls per task.")
    parser.add_argument("--delay", type=float, default=0.5, help="Seconds per model call.")
    parser.add_argument("--retry-after", type=float, default=1.0, help="The 429's retry-after, seconds.")
    parser.add_argument("--without", action="store_true", help="Also run 4N workers with the limiter off.")
    args = parser.parse_args()
    os.environ["ANTHROPIC_API_KEY"] = "bench-key"
    print(
        f"== {args.tasks} tasks, {args.calls} calls of {args.delay} s each; server: 429 above {args.n} "
        f"in flight (retry-after {args.retry_after} s) =="
    )
    print("run       | workers | wall s | mean in flight | max | 429s | spent on 429 | requeued | finished")
    with tempfile.TemporaryDirectory(prefix="ratelimit-bench-") as folder:
        tmp = Path(folder)
        base = run_once(tmp, "baseline", workers=args.n, limit=UNLIMITED, enabled=True, args=args)
        show(base)
        limited = run_once(tmp, "limited", workers=4 * args.n, limit=args.n, enabled=True, args=args)
        show(limited)
        if args.without:
            show(run_once(tmp, "without", workers=4 * args.n, limit=args.n, enabled=False, args=args))
    ratio = limited.wall_s / base.wall_s
    ok = limited.n_finished == args.tasks and limited.n_failed == 0 and ratio <= 1.3
    print(
        f"limited / baseline wall time: {ratio:.2f} (target <= 1.3); every task finished, none spent: "
        f"{limited.n_finished == args.tasks and limited.n_failed == 0} -> {'met' if ok else 'NOT met'}"
    )


if __name__ == "__main__":
    main()

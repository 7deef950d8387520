"""Generate the recorded queue file the report tests use: 30 tasks on 3 machines, through the real Queue API.

Run `python tests/report/make_report_fixture.py` to regenerate `tests/report/fixtures/` (deterministic).
"""

from __future__ import annotations

import heapq
import json
import random
import shutil
from pathlib import Path

from agent_runner.core.messages import Usage
from agent_runner.core.result import ExitStatus, GateResult, GateVerdict, Outcome, TaskResult
from agent_runner.core.task import Task, TaskKind
from agent_runner.queue.store import Queue

FIXTURES = Path(__file__).parent / "fixtures"
START = 1_764_300_000.0
WORKERS = ["alpha/1", "alpha/2", "beta/1", "beta/2", "gamma/1", "gamma/2"]
MODELS = ["anthropic:claude-sonnet-4-5", "openai:gpt-5-mini", "anthropic:claude-haiku-4-5"]
KINDS = [TaskKind.FIX_LINT, TaskKind.WRITE_TESTS, TaskKind.CHANGE]
# Plans: the outcome of each attempt in order. "run" stays running at the end of the recording.
PLANS: dict[str, list[str]] = {
    **{f"task-{n:02d}": ["ok"] for n in range(1, 19)},
    "task-19": ["reject", "ok"],
    "task-20": ["infra", "ok"],
    "task-21": ["infra", "reject", "ok"],
    "task-22": ["reject", "reject"],
    "task-23": ["reject", "reject"],
    "task-24": ["infra", "reject", "reject"],
    "task-25": ["cancel"],
    "task-26": ["run"],
}
CANCELLED_BEFORE_START = "task-27"
NEVER_RUNS = "task-28"  # depends on a task that fails
INVALID = {
    "task-29": "field 'kind': Input should be 'fix-lint', 'write-tests', 'change' or 'review'",
    "task-30": "invalid YAML: mapping values are not allowed here",
}
TRAJECTORIES = {"task-01": 6, "task-19": 400}  # steps: a small one (inlined) and a large one (own page)


class Clock:
    """A settable clock for the queue."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def make_task(task_id: str, n: int) -> Task:
    """A task of a rotating kind and model; the two-attempt tasks get max_attempts=2."""
    attempts = 2 if task_id in ("task-22", "task-23", "task-24") else 3
    deps = ["task-22"] if task_id == NEVER_RUNS else []
    return Task(
        id=task_id,
        kind=KINDS[n % 3],
        title=f"Chore number {n}",
        model=MODELS[n % 3],
        max_attempts=attempts,
        depends_on=deps,
    )


def make_result(task: Task, attempt: int, outcome: Outcome, rng: random.Random, worker: str) -> dict:
    """A TaskResult record as a worker would print it."""
    gate = "ruff" if task.kind == TaskKind.FIX_LINT else "tests"
    before = {"violations": float(rng.randint(3, 40))} if gate == "ruff" else {"coverage": 61.5}
    good = outcome == Outcome.ACCEPTED
    after = {"violations": 0.0 if good else 2.0} if gate == "ruff" else {"coverage": 74.0 if good else 61.0}
    verdict = GateVerdict.PASS if good else GateVerdict.FAIL
    usage = Usage(
        input_tokens=rng.randint(2_000, 9_000),
        output_tokens=rng.randint(500, 3_000),
        cache_read_tokens=rng.randint(10_000, 90_000),
        cache_write_tokens=rng.randint(1_000, 5_000),
    )
    # The worker's own path (absent here): the report falls back to <state_dir>/runs/<task>/<attempt>/.
    traj = f"/srv/worker/.agent-runner/runs/{task.id}/{attempt}/trajectory.jsonl"
    result = TaskResult(
        task_id=task.id,
        attempt=attempt,
        outcome=outcome,
        exit_status=ExitStatus.FINISHED,
        reason="" if good else f"gate {gate} failed: {after}",
        gates=[GateResult(name=gate, verdict=verdict, before=before, after=after)],
        usage=usage,
        cost_usd=round(rng.uniform(0.02, 0.9), 4),
        steps=rng.randint(4, 40),
        model=task.model,
        machine=worker,
        trajectory_path=traj,
    )
    return result.for_queue()


def simulate(queue: Queue, clock: Clock, tasks: dict[str, Task], rng: random.Random) -> None:
    """Run the plans on six worker slots with random durations, recording every event."""
    plans = {k: list(v) for k, v in PLANS.items()}
    free = list(WORKERS)
    ends: list[tuple[float, str, str, int, str]] = []
    pr = 100
    while True:
        for worker in list(free):
            claim = queue.claim(worker, lease_s=1e9)
            if claim is None:
                break
            free.remove(worker)
            step = plans[claim.task_id].pop(0)
            if step != "run":
                heapq.heappush(
                    ends, (clock.now + rng.uniform(60, 900), worker, claim.task_id, claim.attempt, step)
                )
        if not ends:
            return
        clock.now, worker, task_id, attempt, step = heapq.heappop(ends)
        free.append(worker)
        task = tasks[task_id]
        if step == "ok":
            queue.finish(task_id, attempt, make_result(task, attempt, Outcome.ACCEPTED, rng, worker))
            pr += 1
            url = f"https://github.com/acme/widgets/pull/{pr}"
            queue.publish_event(task_id, pr_url=url) if task_id != "task-18" else queue.publish_event(
                task_id, error="push rejected: protected branch"
            )
        elif step == "reject":
            queue.fail(
                task_id,
                attempt,
                "gates failed",
                result=make_result(task, attempt, Outcome.REJECTED, rng, worker),
            )
        elif step == "infra":
            queue.release(task_id, attempt, f"worker {worker} lost its connection", infra=True)
        elif step == "cancel":
            queue.cancel(task_id, "cancelled by user")


def write_trajectory(path: Path, steps: int) -> None:
    """Write a trajectory in the format of agent_runner.worker.trajectory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = START
    lines = [
        {
            "type": "start",
            "time": t,
            "model": MODELS[0],
            "system": "You are a careful engineer.",
            "limits": {"steps": 50, "cost_usd": 1.0},
        },
        {"type": "user", "time": t, "text": "Fix the lint violations in src/."},
    ]
    for step in range(1, steps + 1):
        call = {
            "id": f"c{step}",
            "name": "bash",
            "arguments": {"command": f"ruff check src/ --select E{step}"},
        }
        lines.append(
            {
                "type": "model",
                "time": t + step,
                "step": step,
                "seconds": 1.5,
                "cost_usd": 0.002,
                "usage": {"input_tokens": 900, "cache_read_tokens": 4000, "output_tokens": 120},
                "message": {"role": "assistant", "text": f"Step {step}: checking.", "tool_calls": [call]},
            }
        )
        output = "\n".join(f"src/mod{step}.py:{i}:1: E501 line too long <tag>" for i in range(8))
        lines.append(
            {
                "type": "tools",
                "time": t + step,
                "results": [
                    {"call_id": f"c{step}", "content": output, "is_error": step % 7 == 0, "seconds": 0.2}
                ],
            }
        )
    lines.append({"type": "user", "time": t + steps, "text": "Gate report: ruff 12 -> 0. All gates pass."})
    lines.append(
        {
            "type": "end",
            "time": t + steps,
            "exit_status": "finished",
            "steps": steps,
            "model_calls": steps,
            "cost_usd": 0.002 * steps,
            "usage": {},
            "summary": "Fixed every violation.",
        }
    )
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def main(out: Path = FIXTURES) -> None:
    """Write out/queue.jsonl and out/runs/<task>/<attempt>/trajectory.jsonl (runs/ goes in the state dir)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    clock, rng = Clock(), random.Random(7)
    queue = Queue(out / "queue.jsonl", clock=clock)
    tasks = {f"task-{n:02d}": make_task(f"task-{n:02d}", n) for n in range(1, 29)}
    for task_id, task in tasks.items():
        queue.add(task, file=f"tasks/{task_id}.md", digest=task_id)
    for task_id, reason in INVALID.items():
        queue.mark_invalid(task_id, f"tasks/{task_id}.md", f"tasks/{task_id}.md: {reason}")
    queue.cancel(CANCELLED_BEFORE_START, "no longer needed")
    simulate(queue, clock, tasks, rng)
    for task_id, steps in TRAJECTORIES.items():
        attempt = len(PLANS[task_id])
        write_trajectory(out / "runs" / task_id / str(attempt) / "trajectory.jsonl", steps)
    (out / "queue.jsonl.lock").unlink(missing_ok=True)


if __name__ == "__main__":
    main()

"""Queue file benchmark: fold (status) of a big queue, and claim latency with 4 contending processes.

    python bench/queue_bench.py [--tasks 10000] [--events 50000] [--claims 200] [--history 10000]

Each figure is printed next to a naive baseline measured in the same run: a queue that re-reads and
re-parses the whole file on every operation instead of reading only what was appended since its last look.
The machine's load average is printed too: on a shared machine, wall times move with it.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agent_runner.queue.state import TaskState
from agent_runner.queue.store import Queue

WORKERS = 4


def write_history(path: Path, n_tasks: int, n_events: int, *, n_queued: int = 0) -> None:
    """Write `n_tasks` finished tasks (about `n_events` events in all) plus `n_queued` queued ones."""
    per_task = max(n_events // max(n_tasks, 1), 3)
    now = time.time()
    with open(path, "w", encoding="utf-8") as fh:
        for n in range(n_tasks):
            task_id = f"done-{n:05d}"
            fh.write(_line("queued", task_id, now, **_definition(task_id)))
            fh.write(_line("claimed", task_id, now, attempt=1, worker=f"w{n % 8}", lease_until=now + 120))
            for _ in range(per_task - 3):
                fh.write(_line("heartbeat", task_id, now, attempt=1, lease_until=now + 140))
            result = {"status": "accepted", "summary": "Fixed 3 lint violations", "cost_usd": 0.012}
            result |= {"steps": 7, "branch": f"agent/{task_id}", "head_commit": "ab" * 20}
            fh.write(_line("finished", task_id, now, attempt=1, result=result))
        for n in range(n_queued):
            task_id = f"todo-{n:05d}"
            fh.write(_line("queued", task_id, now, **_definition(task_id, priority=n % 3)))


def _definition(task_id: str, priority: int = 0) -> dict[str, object]:
    definition = {
        "id": task_id,
        "kind": "fix-lint",
        "title": f"Clean lint in {task_id}",
        "priority": priority,
    }
    return {"def": definition, "file": f"tasks/{task_id}.md", "digest": "0f" * 32}


def _line(kind: str, task_id: str, ts: float, **fields: object) -> str:
    return json.dumps({"ts": ts, "type": kind, "task": task_id, **fields}, separators=(",", ":")) + "\n"


class TimedQueue(Queue):
    """Our queue, noting how long its last operation waited for the lock (other processes' turns)."""

    waited = 0.0

    @contextmanager
    def locked(self) -> Iterator[dict[str, TaskState]]:
        """Hold the lock exactly like Queue.locked, timing the wait for flock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as lock:
            start = time.perf_counter()
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.waited = time.perf_counter() - start
            try:
                yield self.refresh()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


class NaiveQueue(TimedQueue):
    """The baseline: forgets what it read, so every operation re-reads and re-parses the whole file."""

    def refresh(self) -> dict[str, TaskState]:
        """Fold the whole file from the first line, every time."""
        self._reset(None)
        return super().refresh()


def time_fold(path: Path, repeats: int = 3) -> tuple[float, float]:
    """Return the best (wall, CPU) time of a cold fold: a fresh Queue reading the whole file."""
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        Queue(path).refresh()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu


def time_status_after_append(path: Path, queue_class: type[Queue], repeats: int = 10) -> float:
    """Return the median time to bring a warm queue's status up to date after one more event."""
    queue = queue_class(path)
    queue.refresh()
    times = []
    for n in range(repeats):
        Queue(path).record(type="heartbeat", task=f"done-{n:05d}", attempt=1, lease_until=0)
        start = time.perf_counter()
        queue.refresh()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def worker(path: Path, go: Path, naive: bool) -> None:
    """Claim and finish tasks until none is left; print [claim latency, lock wait] pairs as JSON."""
    queue = (NaiveQueue if naive else TimedQueue)(path)
    queue.refresh()
    while not go.exists():
        time.sleep(0.0005)
    timings = []
    while True:
        start = time.perf_counter()
        claim = queue.claim(f"w{os.getpid()}", lease_s=600)
        timings.append((time.perf_counter() - start, queue.waited))
        if claim is None:
            break
        queue.finish(claim.task_id, claim.attempt, {"status": "accepted"})
    print(json.dumps(timings[:-1]))


def contended_claims(path: Path, *, naive: bool) -> list[list[float]]:
    """Run 4 worker processes on `path` at once; return every [claim latency, lock wait] they measured."""
    go = path.with_suffix(".go")
    argv = [sys.executable, __file__, "--worker", str(path), str(go), *(["--naive"] if naive else [])]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(WORKERS)]
    time.sleep(1.5)  # let every worker import and fold before the start signal
    go.touch()
    return [pair for proc in procs for pair in json.loads(proc.communicate()[0])]


def fsync_latency(folder: Path, n: int = 200) -> float:
    """Return the median time of one 200-byte append + fsync in `folder` (the floor under every claim)."""
    fd = os.open(folder / "fsync.probe", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    times = []
    try:
        for _ in range(n):
            start = time.perf_counter()
            os.write(fd, b"x" * 199 + b"\n")
            os.fsync(fd)
            times.append(time.perf_counter() - start)
    finally:
        os.close(fd)
    return statistics.median(times)


def ms(seconds: float) -> str:
    """Format seconds as milliseconds."""
    return f"{seconds * 1000:8.2f} ms"


def claim_figures(folder: Path, label: str, n_history: int, n_claims: int) -> None:
    """Print claim latency (median, p95, own work) for our queue and the naive one on the same file."""
    print(f"\nclaim latency, {WORKERS} processes, {n_claims} queued tasks, {n_history} finished in history")
    medians = {}
    for naive in (False, True):
        path = folder / f"claims-{label}-{'naive' if naive else 'queue'}.jsonl"
        n_queued = min(n_claims, 40) if naive and n_history else n_claims  # the naive one is slow: a sample
        write_history(path, n_history, n_history * 5, n_queued=n_queued)
        pairs = contended_claims(path, naive=naive)
        latencies = sorted(total for total, _ in pairs)
        own = statistics.median(total - wait for total, wait in pairs)
        medians[naive] = statistics.median(latencies)
        name = "naive (re-read whole file)" if naive else "agent-runner Queue        "
        p95 = latencies[int(len(latencies) * 0.95)]
        print(f"  {name} median {ms(medians[naive])}  p95 {ms(p95)}  lock held {ms(own)}  n={len(pairs)}")
    print(f"  ratio naive / queue (median): {medians[True] / medians[False]:.1f}x")


def status_figures(folder: Path, n_tasks: int, n_events: int) -> None:
    """Print the cold fold time of a big queue and the cost of catching up with one new event."""
    path = folder / "status.jsonl"
    write_history(path, n_tasks, n_events)
    n_lines = path.read_bytes().count(b"\n")
    print(f"status (fold) of {n_tasks} tasks, {n_lines} events, {path.stat().st_size / 1e6:.1f} MB")
    wall, cpu = time_fold(path)
    verdict = "ok" if wall < 0.5 else "MISSED"
    print(f"  cold fold, wall (CPU)                {ms(wall)} ({ms(cpu).strip()}) target < 500 ms: {verdict}")
    warm = time_status_after_append(path, Queue)
    naive = time_status_after_append(path, NaiveQueue)
    print(f"  status after 1 new event, Queue      {ms(warm)}")
    print(f"  status after 1 new event, naive      {ms(naive)}   ratio {naive / warm:.0f}x")


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description="Queue file benchmark.")
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks in the status queue")
    parser.add_argument("--events", type=int, default=50_000, help="events in the status queue")
    parser.add_argument("--claims", type=int, default=200, help="queued tasks the 4 processes claim")
    parser.add_argument("--history", type=int, default=10_000, help="finished tasks before the claims")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    with tempfile.TemporaryDirectory(prefix="queue-bench-") as tmp:
        folder = Path(tmp)
        status_figures(folder, args.tasks, args.events)
        fsync = fsync_latency(folder)
        print(f"\nappend + fsync alone, this disk now: median {ms(fsync)}")
        claim_figures(folder, "small", 0, args.claims)
        claim_figures(folder, "big", args.history, args.claims)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(Path(sys.argv[2]), Path(sys.argv[3]), naive="--naive" in sys.argv)
    else:
        main()

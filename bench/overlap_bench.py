"""The overlap rule's cost per dispatch round: declared paths only (the rule before) against learned files.

    python bench/overlap_bench.py [--queued 1000] [--running 8] [--requeued 100] [--files 20] [--rounds 50]

A real git repo gets `--requeued` landed branches (`agent/<id>`, one commit changing `--files` files each);
`--queued` tasks wait (the requeued ones among them) while `--running` tasks run. One round asks, for every
queued task, whether it overlaps a running one, as the scheduler's acceptor does when no task may start
(its worst case: every queued task is looked at). Printed: the baseline (the `overlaps` path lists of the
rule before), the warm round (footprints cached), and the first round (one git read per requeued task).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from agent_runner.coordinator.readiness import Footprints, Writers, overlaps
from agent_runner.core.task import Task


def sh(cwd: Path, *argv: str) -> None:
    """Run a command quietly, failing loudly."""
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)


def make_repo(folder: Path, n_requeued: int, n_files: int) -> Path:
    """A repo with main and one landed branch per requeued task (made with fast-import: one git call)."""
    folder.mkdir(parents=True)
    sh(folder, "git", "init", "-q", "-b", "main")
    lines = ["commit refs/heads/main", "mark :1", "committer b <b@b> 0 +0000", "data 4", "base"]
    lines += ["M 100644 inline README", "data 2", "x"]
    for n in range(n_requeued):
        lines += [f"commit refs/heads/agent/q{n:04d}", "committer b <b@b> 0 +0000", "data 6", "landed"]
        lines += ["from :1"]
        for f in range(n_files):
            lines += [f"M 100644 inline pkg{n % 50}/m{f}.py", "data 2", "y"]
    data = ("\n".join(lines) + "\n").encode()
    subprocess.run(["git", "fast-import", "--quiet"], cwd=folder, input=data, check=True)
    return folder


def tasks(n_queued: int, n_running: int) -> tuple[list[Task], list[Task]]:
    """Queued tasks (q0000.. with no paths, their earlier commit their footprint) and running ones."""
    queued = [Task(id=f"q{n:04d}", kind="change", instructions="x") for n in range(n_queued)]
    running = [
        Task(id=f"r{n}", kind="change", instructions="x", paths=[f"pkg{n}/m0.py", f"docs/r{n}.md"])
        for n in range(n_running)
    ]
    return queued, running


def round_baseline(queued: list[Task], running: list[Task]) -> int:
    """The rule before: declared paths only."""
    paths = [(r.repo, r.paths) for r in running]
    return sum(any(repo == q.repo and overlaps(q.paths, p) for repo, p in paths) for q in queued)


def round_learned(footprints: Footprints, queued: list[Task], running: list[Task], n_requeued: int) -> int:
    """The rule now: footprints (declared + learned), as the scheduler's acceptor builds them."""
    writers = Writers(footprints.of(r, n_ended=0) for r in running)
    waiting = 0
    for n, q in enumerate(queued):
        waiting += writers.overlap(footprints.of(q, n_ended=1 if n < n_requeued else 0))
    return waiting


def median_ms(action: object, rounds: int) -> float:
    """Median wall time of `action()` in ms."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queued", type=int, default=1000)
    parser.add_argument("--running", type=int, default=8)
    parser.add_argument("--requeued", type=int, default=100)
    parser.add_argument("--files", type=int, default=20, help="files each landed commit changed")
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        root = make_repo(Path(tmp) / "repo", args.requeued, args.files)
        queued, running = tasks(args.queued, args.running)
        footprints = Footprints(root)
        start = time.perf_counter()
        n_waiting = round_learned(footprints, queued, running, args.requeued)
        cold_ms = 1000 * (time.perf_counter() - start)
        base_ms = median_ms(lambda: round_baseline(queued, running), args.rounds)
        warm_ms = median_ms(lambda: round_learned(footprints, queued, running, args.requeued), args.rounds)
    landed = f"{args.requeued} with a landed commit of {args.files} files"
    print(f"{args.queued} queued ({landed}), {args.running} running")
    print(f"waiting by declared paths: {round_baseline(queued, running)}; with learned files: {n_waiting}")
    print(f"declared paths only (the rule before): {base_ms:.2f} ms per round")
    print(f"learned files, warm:                   {warm_ms:.2f} ms per round ({warm_ms / base_ms:.2f}x)")
    per_read = cold_ms / max(args.requeued, 1)
    print(f"learned files, first round:            {cold_ms:.0f} ms ({per_read:.2f} ms per git read)")


if __name__ == "__main__":
    main()

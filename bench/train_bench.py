"""Train benchmark: what the integration train costs per result beyond its test runs, at 5, 10 and 20 results.

Each result is an accepted task that added its own file on `main`; the test command is `test ! -e red.txt`
(it costs nothing, so what is timed is the train itself). For each count and batch size it prints the
verify jobs run, the wall time, the coordinator's share per result (git applying the results, bundles, the
re-checks, queue events: the total less the time inside verify jobs) and the time of one verify job (a
worker process: checkout, baseline, the gates, no agent). With `--red`, one result in the middle adds
red.txt, so its batch is red and is bisected: the extra verify jobs show what a red result costs.

    python bench/train_bench.py [--counts 5,10,20] [--batches 1,5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from agent_runner.config.runner import load_config
from agent_runner.coordinator.train import land
from agent_runner.core.protocols import Slot
from agent_runner.core.result import GateResult, GateVerdict, Outcome, TaskResult, WorkRequest
from agent_runner.core.task import Task, TaskKind
from agent_runner.executors.local import LocalExecutor
from agent_runner.queue.intake import open_queue

CONFIG = (
    '[tool.agent-runner]\nsandbox = "none"\ntest = "test ! -e red.txt"\nbackoff_seconds = 0\n'
    'keep_checkouts = "never"\n'
)
GATES = ["non-empty-diff", "lint-touched", "tests", "diff-policy"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


class TimedExecutor(LocalExecutor):
    """The local executor, counting verify jobs and the time spent inside them."""

    n_jobs = 0
    job_s = 0.0

    def run(self, request: WorkRequest, slot: Slot) -> TaskResult:
        started = time.perf_counter()
        try:
            return super().run(request, slot)
        finally:
            self.n_jobs += 1
            self.job_s += time.perf_counter() - started


def make_project(tmp: Path, n_results: int, *, red: bool) -> Path:
    """Return a repo with `n_results` accepted results (one new file each) recorded in its queue."""
    root = tmp / "repo"
    (root / "tasks").mkdir(parents=True)
    (root / "pyproject.toml").write_text(CONFIG)
    (root / ".gitignore").write_text(".agent-runner/\ntasks/queue.jsonl*\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "init")
    base = git(root, "rev-parse", "HEAD")
    queue = open_queue(root, load_config(root))
    for i in range(n_results):
        task = Task(id=f"t{i:03d}", kind=TaskKind.CHANGE, priority=n_results - i)
        name = "red.txt" if red and i == n_results // 2 else f"f{i:03d}.py"
        head = _commit_file(root, base, task, name)
        queue.add(task)
        queue.claim("bench", lease_s=600)
        gates = [GateResult(name=g, verdict=GateVerdict.PASS) for g in GATES]
        result = TaskResult(
            task_id=task.id, outcome=Outcome.ACCEPTED, base_commit=base, head_commit=head, gates=gates
        )
        queue.finish(task.id, 1, result.for_queue())
    return root


def _commit_file(root: Path, base: str, task: Task, name: str) -> str:
    """Commit a new file `name` on `base` as the task's branch; return the commit."""
    blob = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"], cwd=root, input=f"X = {task.priority}\n",
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    tree_lines = git(root, "ls-tree", base) + f"\n100644 blob {blob}\t{name}\n"
    tree = subprocess.run(
        ["git", "mktree"], cwd=root, input=tree_lines, capture_output=True, text=True, check=True
    ).stdout.strip()
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b"}
    env |= {"GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}
    message = f"agent-runner: {task.id}: add {name}"
    head = subprocess.run(
        ["git", "commit-tree", tree, "-p", base, "-m", message], cwd=root, env=env,
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    git(root, "update-ref", f"refs/heads/{task.branch_name}", head)
    return head


def bench(n_results: int, batch: int, *, red: bool) -> dict[str, float]:
    """Run one train over a fresh project; return its figures."""
    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:
        os.environ["AGENT_RUNNER_HOME"] = str(Path(tmp) / "home")
        root = make_project(Path(tmp), n_results, red=red)
        config = load_config(root, overrides={"train": {"batch": batch}})
        executor = TimedExecutor(workdir=root / ".agent-runner", workers=1, cwd=root)
        executor.prepare()
        try:
            started = time.perf_counter()
            (train,) = land(open_queue(root, config), executor, config=config, root=root)
            wall = time.perf_counter() - started
        finally:
            executor.close()
    coordinator = wall - executor.job_s
    return {
        "landed": len(train.landed), "jobs": executor.n_jobs, "wall": wall,
        "coord_ms": 1000 * coordinator / n_results, "job_ms": 1000 * executor.job_s / max(1, executor.n_jobs),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="5,10,20")
    parser.add_argument("--batches", default="1,5")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'results':>7} {'batch':>5} {'red':>4} {'landed':>6} {'jobs':>5} {'wall s':>7} "
          f"{'coordinator ms/result':>21} {'ms/verify job':>13}")  # fmt: skip
    for red in (False, True):
        for n in map(int, args.counts.split(",")):
            for batch in map(int, args.batches.split(",")):
                f = bench(n, batch, red=red)
                print(
                    f"{n:>7} {batch:>5} {'yes' if red else 'no':>4} {f['landed']:>6} {f['jobs']:>5} "
                    f"{f['wall']:>7.1f} {f['coord_ms']:>21.0f} {f['job_ms']:>13.0f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()

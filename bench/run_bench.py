"""Benchmarks of the run path: runner overhead, parallel efficiency, checkout cost.

    python bench/run_bench.py                       # all three, full size
    python bench/run_bench.py --only overhead --tasks 40

Everything runs on real git repos in a temp folder with the scripted model and the local executor
(real `run-agents exec -` worker subprocesses). Figures are printed; nothing is asserted.

"ms per task" at k workers on a machine with c CPUs: core ms = wall x min(k, c) / tasks, the machine
time one task costs. While k <= c it equals the slot time (wall x k / tasks); beyond c a slot's time
also counts waiting for a CPU another worker holds, so the slot figure is printed beside it, with the
measured CPU time per task of every process involved as a cross-check. "Beyond checkout" subtracts the
checkout phase the jobs time themselves. Parallel efficiency is printed both as T1 / (k x Tk) and as
the model-time ideal (tasks x calls x delay / k) over the measured wall time.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from agent_runner.config.runner import load_config
from agent_runner.coordinator.scheduler import Scheduler
from agent_runner.executors.local import LocalExecutor
from agent_runner.queue.intake import open_queue
from agent_runner.repo import checkouts, pools
from agent_runner.repo import git as agit

PYPROJECT = """\
[tool.agent-runner]
sandbox = "none"
test = "true"
lease_seconds = 120
heartbeat_seconds = 20
"""


def sh(cwd: Path, *argv: str, stdin: bytes | None = None) -> str:
    """Run a command, fail loudly, return stdout."""
    out = subprocess.run(argv, cwd=cwd, input=stdin, capture_output=True, check=True)
    return out.stdout.decode()


def small_repo(folder: Path) -> Path:
    """A repo with one module and the runner config for benchmarks."""
    folder.mkdir(parents=True)
    (folder / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (folder / "pyproject.toml").write_text(PYPROJECT)
    (folder / "tasks").mkdir()
    sh(folder, "git", "init", "-q", "-b", "main")
    sh(folder, "git", "add", "-A")
    sh(folder, "git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "init")
    return folder


def write_tasks(repo: Path, n_tasks: int, *, delay_s: float) -> None:
    """Write n change tasks whose scripted agent writes one file and finishes (delay_s per model call)."""
    # JSON, not YAML: the stand-in model's script parse (2 ms of pure-Python YAML) is no runner cost.
    script = repo.parent / f"script-{delay_s}.json"
    edit = {"name": "bash", "arguments": {"command": "echo done > out.txt"}}
    finish = {"name": "finish", "arguments": {"summary": "wrote out.txt"}}
    turns = [{"delay_s": delay_s, "tool_calls": [edit]}, {"delay_s": delay_s, "tool_calls": [finish]}]
    script.write_text(json.dumps({"turns": turns}))
    for i in range(n_tasks):
        front = yaml.safe_dump({"kind": "change", "model": f"scripted:{script}"})
        (repo / "tasks" / f"t{i:04d}.md").write_text(f"---\n{front}---\nWrite out.txt.\n")


def run_queue(repo: Path, workers: int) -> tuple[float, float]:
    """Run the queue of `repo` with `workers` local workers; return wall seconds and CPU seconds.

    CPU counts this process (the coordinator) and every process it waited for: the fork server, the
    workers it forked and all their git, ruff and shell children.
    """
    config = load_config(repo, overrides={"workers": workers})
    queue = open_queue(repo, config)
    executor = LocalExecutor(workdir=config.path(repo, "state_dir"), workers=workers, cwd=repo)
    scheduler = Scheduler(queue, executor, config=config, root=repo)
    cpu_before, started = _cpu_seconds(), time.perf_counter()
    summary = scheduler.run()
    wall = time.perf_counter() - started
    executor.close()  # waits for the fork server, so its children's CPU time is counted
    cpu = _cpu_seconds() - cpu_before
    if summary.failed or summary.invalid:
        raise SystemExit(f"benchmark run failed: {summary.failed or summary.invalid}")
    return wall, cpu


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def checkout_seconds(repo: Path, tmp: Path, n: int = 10) -> float:
    """Mean seconds of one checkout (cache already warm) of `repo`."""
    cache = agit.ensure_cache(str(repo))
    base = agit.resolve_base(cache, None)
    times = []
    for i in range(n):
        started = time.perf_counter()
        checkouts.make_checkout(cache, tmp / f"co-{i}", branch=f"agent/bench-{i}", base_commit=base)
        times.append(time.perf_counter() - started)
        shutil.rmtree(tmp / f"co-{i}")
    return statistics.mean(times)


def worker_start_seconds(n: int = 5) -> float:
    """Mean seconds for `python -m agent_runner.cli exec --help` (interpreter plus imports)."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        sh(Path.cwd(), sys.executable, "-m", "agent_runner.cli", "exec", "--help")
        times.append(time.perf_counter() - started)
    return statistics.mean(times)


def phase_ms(repo: Path) -> dict[str, float]:
    """Mean milliseconds per phase inside the job, from the workers' timing lines in worker.log."""
    totals: dict[str, list[float]] = {}
    for log in (repo / ".agent-runner" / "runs").glob("*/*/worker.log"):
        for line in log.read_text().splitlines():
            if "agent_runner.worker.job" not in line:
                continue
            for part in line.split(": ", 2)[-1].split():
                name, _, value = part.partition("=")
                totals.setdefault(name, []).append(float(value.removesuffix("ms")))
    return {name: statistics.mean(values) for name, values in totals.items()}


def bench_overhead(tmp: Path, n_tasks: int, worker_counts: list[int]) -> None:
    """Runner overhead per task beyond the checkout, with a model that answers at once."""
    print(f"\n== runner overhead: {n_tasks} tasks, scripted model that edits one file and finishes ==")
    probe = small_repo(tmp / "probe")
    print(f"checkout alone: {checkout_seconds(probe, tmp) * 1000:.0f} ms; for comparison, starting a fresh")
    print(
        f"`run-agents exec` interpreter: {worker_start_seconds() * 1000:.0f} ms (the fork server avoids it)"
    )
    n_cpus = os.cpu_count() or 1
    print(OVERHEAD_LEGEND.format(n_cpus=n_cpus))
    print("workers | wall s | wall/task | beyond checkout | slot | core | CPU | core (slot) beyond", end="")
    print(" | gates | agent")
    for workers in worker_counts:
        repo = small_repo(tmp / f"overhead-{workers}")
        write_tasks(repo, n_tasks, delay_s=0.0)
        wall, cpu = run_queue(repo, workers)
        slot = wall * workers / n_tasks * 1000
        share = min(workers, n_cpus) / workers  # of a slot's time, the part that is a CPU's time
        phases = phase_ms(repo)
        beyond = slot - phases.get("checkout", 0)
        gates = (phases.get("baseline", 0) + phases.get("gates", 0)) * share
        row = [f"{workers:7d}", f"{wall:6.1f}", f"{wall / n_tasks * 1000:9.0f}", f"{beyond / workers:15.0f}"]
        row += [
            f"{slot:4.0f}",
            f"{slot * share:4.0f}",
            f"{cpu / n_tasks * 1000:3.0f}",
            f"{beyond * share:12.0f} ({beyond:3.0f})",
        ]
        print(" | ".join([*row, f"{gates:5.0f}", f"{phases.get('agent', 0) * share:5.0f}"]))
    print("(ms per task, except wall s)")


OVERHEAD_LEGEND = """\
The target is <= 50 ms per task beyond its checkout. "beyond checkout" reads it as the runner's cost in a
run's time: wall / task, less the checkout phase (as the slots spent it, spread over the workers). The
other columns are machine-time views, stricter with several workers (they count every busy slot or CPU):
  slot ms = wall x workers / tasks: how long a worker slot is busy per task. With more workers than
            CPUs ({n_cpus} here) it includes waiting for a CPU another worker holds, so it grows with
            oversubscription, not with the runner's work.
  core ms = wall x min(workers, CPUs) / tasks: the machine time a task costs; equals slot ms while
            workers <= CPUs, and is the throughput cost (wall / task x CPUs) beyond that.
  CPU ms  = CPU time of the coordinator, fork server, workers and all their git/ruff/shell children
            (the agent's own command and the test command too), per task: a cross-check.
  core (slot) beyond = core (slot) ms minus the checkout phase measured inside the job, scaled the same
  way; gates and agent columns are the jobs' own phase timings on the core basis."""


def bench_parallel(tmp: Path, n_tasks: int, worker_counts: list[int], delay_s: float, repeat: int) -> None:
    """Parallel efficiency: T(1) / (k * T(k)) with a model that sleeps `delay_s` per call.

    With `repeat`, the worker counts run in turns (1, 2, 4, 1, 2, 4, ...), each k against the T(1) of its
    own turn, so a machine that drifts faster or slower during the run biases no k; medians are printed.
    """
    print(f"\n== parallel efficiency: {n_tasks} tasks, model sleeping {delay_s} s per call (2 calls/task) ==")
    print("turn | workers | wall s | T1/(k*Tk) | model-time ideal / measured")
    efficiency: dict[int, list[float]] = {k: [] for k in worker_counts}
    for turn in range(1, repeat + 1):
        base = None
        for workers in worker_counts:
            repo = small_repo(tmp / f"parallel-{turn}-{workers}")
            write_tasks(repo, n_tasks, delay_s=delay_s)
            wall, _cpu = run_queue(repo, workers)
            base = base or wall * (1 if workers == 1 else workers)
            ideal = n_tasks * 2 * delay_s / workers
            efficiency[workers].append(base / (workers * wall))
            ratio = base / (workers * wall)
            print(f"{turn:4d} | {workers:7d} | {wall:6.2f} | {ratio:9.1%} | {ideal / wall:.1%}")
    if repeat > 1:
        for workers, values in efficiency.items():
            low, mid, high = min(values), statistics.median(values), max(values)
            print(f"{workers} workers: median {mid:.1%} over {repeat} turns (from {low:.1%} to {high:.1%})")


def large_repo(folder: Path, n_files: int, n_commits: int, *, churn_bytes: int = 4096) -> Path:
    """Generate a repo with n_files files and n_commits commits through git fast-import."""
    folder.mkdir(parents=True)
    sh(folder, "git", "init", "-q", "-b", "main")
    chunks = []
    for c in range(n_commits):
        msg = f"commit {c}".encode()
        chunks.append(b"commit refs/heads/main\n")
        chunks.append(b"committer b <b@b> %d +0000\n" % (1_700_000_000 + c))
        chunks.append(b"data %d\n%s\n" % (len(msg), msg))
        touched = range(n_files) if c == 0 else [(c * 7 + k * 131) % n_files for k in range(10)]
        for i in touched:
            # the first commit writes small files; later ones rewrite 10 files with fresh (incompressible)
            # data, so the history is much larger than the work tree, as in real long-lived repos
            noise = os.urandom(churn_bytes // 2).hex().encode() if c else b"x = 1\n" * 20
            body = f"# file {i}, revision {c}\n".encode() + noise
            chunks.append(
                b"M 100644 inline pkg%03d/mod%05d.py\ndata %d\n%s\n" % (i % 200, i, len(body), body)
            )
    sh(folder, "git", "fast-import", "--quiet", stdin=b"".join(chunks))
    sh(folder, "git", "checkout", "-q", "-f", "main")
    return folder


def timed(action: object, n: int) -> float:
    """Mean seconds of `action(i)` over n runs."""
    times = []
    for i in range(n):
        started = time.perf_counter()
        action(i)  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.mean(times)


def bench_checkout(tmp: Path, n_files: int, n_commits: int, n: int, churn_bytes: int) -> None:
    """Checkout cost on a large repo: clone --local from the cache vs a full clone vs copying the tree."""
    print(f"\n== checkout cost: generated repo, {n_files} files, {n_commits} commits, {n} checkouts each ==")
    started = time.perf_counter()
    repo = large_repo(tmp / "large", n_files, n_commits, churn_bytes=churn_bytes)
    history = sum(f.stat().st_size for f in (repo / ".git").rglob("*") if f.is_file()) / 1e6
    print(f"generated in {time.perf_counter() - started:.1f} s; history {history:.0f} MB")
    cache = agit.ensure_cache(str(repo))
    base = agit.resolve_base(cache, None)
    out = tmp / "out"
    out.mkdir()

    def ours(i: int) -> None:
        checkouts.make_checkout(cache, out / f"ours-{i}", branch=f"agent/b{i}", base_commit=base)

    def git_clone(i: int) -> None:  # what the runner's in-process clone replaces, with the same checkout
        agit.run_git(
            None, "clone", "-q", "--local", "--no-checkout", "--template=", str(cache), str(out / f"s{i}")
        )
        agit.run_git(out / f"s{i}", "-c", "checkout.workers=0", "checkout", "-q", "-b", "agent/s", base)

    def full_clone(i: int) -> None:
        sh(tmp, "git", "clone", "-q", "--no-local", f"file://{repo}", str(out / f"clone-{i}"))

    tree = tmp / "tree"  # the work tree alone (no .git), the thing a plain copy would copy
    tree.mkdir()
    subprocess.run(f"git -C {repo} archive HEAD | tar -x -C {tree}", shell=True, check=True)

    def copy_tree(i: int) -> None:
        sh(tmp, "cp", "-a", "--reflink=never", str(tree), str(out / f"copy-{i}"))

    def reuse(i: int) -> None:
        # what a finished attempt leaves behind: 20 edited files, 50 new ones, then the refresh
        used = out / f"ours-{i}"
        for k in range(20):
            (used / f"pkg{k:03d}" / f"mod{k:05d}.py").write_text("edited = True\n")
        (used / "build").mkdir(exist_ok=True)
        for k in range(50):
            (used / "build" / f"junk{k}.o").write_bytes(b"0" * 100)
        started = time.perf_counter()
        checkouts.refresh_checkout(cache, used, branch=f"agent/r{i}", base_commit=base)
        reuse_times.append(time.perf_counter() - started)

    def ahead(i: int) -> None:
        # what an attempt does when the previous worker made its checkout ahead: rename, put on a branch
        pool = out / "pool" / "repo"
        pools.make_ready(cache, pool, base)
        started = time.perf_counter()
        dest = out / f"ahead-{i}"
        assert pools.take_ready(pools.ready_dir(pool), base, dest)
        checkouts.adopt(dest, branch=f"agent/a{i}", base_commit=base)
        ahead_times.append(time.perf_counter() - started)

    reuse_times: list[float] = []
    ahead_times: list[float] = []
    t_ours, t_git_clone = timed(ours, n), timed(git_clone, n)
    t_clone, t_copy = timed(full_clone, n), timed(copy_tree, n)
    timed(reuse, n)
    t_reuse = statistics.mean(reuse_times)
    timed(ahead, n)
    t_ahead = statistics.mean(ahead_times)
    rows = [
        ("take a checkout made ahead", t_ahead, "an attempt, when the last worker made it one"),
        ("re-use a parked checkout (refresh)", t_reuse, "how a large repo's checkout is made ahead"),
        ("local clone, parallel checkout", t_ours, "the first checkout of a repo on a machine"),
        ("git clone --local + same checkout", t_git_clone, "(git's clone instead of the runner's)"),
        ("full clone (git clone --no-local)", t_clone, ""),
        ("copy the work tree (cp -a)", t_copy, "the naive baseline"),
    ]
    for name, seconds, note in rows:
        ratios = f"full clone / this {t_clone / seconds:5.1f}x, this / copy {seconds / t_copy:4.2f}x"
        print(f"{name:36s} {seconds * 1000:7.1f} ms   {ratios}   {note}")


def compile_runner() -> None:
    """Write agent_runner's bytecode, as installing a wheel does, so no worker compiles it from source.

    An editable install leaves that to the first import, which does not write it when
    PYTHONDONTWRITEBYTECODE is set: then every fork server would compile the runner again (~80 ms).
    """
    import agent_runner

    compileall.compile_dir(Path(agent_runner.__file__).parent, quiet=1)
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("PYTHONDONTWRITEBYTECODE is set: agent_runner's bytecode was compiled first, as installs do")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["overhead", "parallel", "checkout"], action="append")
    parser.add_argument("--tasks", type=int, default=200, help="tasks for the overhead benchmark")
    parser.add_argument("--parallel-tasks", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--commits", type=int, default=2_000)
    parser.add_argument("--churn-bytes", type=int, default=4096, help="bytes per file rewrite in history")
    parser.add_argument("--checkouts", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5, help="turns of the parallel benchmark")
    args = parser.parse_args()
    chosen = args.only or ["overhead", "parallel", "checkout"]
    compile_runner()
    with tempfile.TemporaryDirectory(prefix="run-bench-") as folder:
        tmp = Path(folder)
        os.environ["AGENT_RUNNER_HOME"] = str(tmp / "home")
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"machine: {os.cpu_count()} CPUs, load average {load}; python {sys.version.split()[0]}")
        if "overhead" in chosen:
            bench_overhead(tmp, args.tasks, args.workers)
        if "parallel" in chosen:
            bench_parallel(tmp, args.parallel_tasks, args.workers, 0.5, args.repeat)
        if "checkout" in chosen:
            bench_checkout(tmp, args.files, args.commits, args.checkouts, args.churn_bytes)


if __name__ == "__main__":
    main()

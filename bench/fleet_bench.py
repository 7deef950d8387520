"""Fleet benchmark: 40 tasks over 1, 2 and 4 SSH machines (network namespaces with real sshd), as root.

Each task's fake model sleeps 0.5 s per call, 5 calls per task. Prints throughput and parallel efficiency
(target >= 90% at 4 machines), beside the naive baseline of starting `run-agents exec` per attempt
(`fork_server = false`), and per-task dispatch overhead over SSH beside the local executor's (target
<= 300 ms with ControlMaster), with a new ssh connection per command as the naive baseline.

    sudo /path/to/venv/bin/python bench/fleet_bench.py [--tasks 40] [--machines 1,2,4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from agent_runner.config.runner import load_config
from agent_runner.coordinator.scheduler import Scheduler
from agent_runner.core.result import WorkRequest
from agent_runner.core.task import Task
from agent_runner.executors.local import LocalExecutor
from agent_runner.executors.ssh import SshExecutor
from agent_runner.queue.intake import open_queue
from agent_runner.testing.netns import NetnsFleet, unavailable_reason

CALL_S = 0.5
CALLS = 5
RUN_AGENTS = str(Path(sys.executable).parent / "run-agents")
CONFIG = (
    '[tool.agent-runner]\nsandbox = "none"\ntest = "true"\nlease_seconds = 60\nheartbeat_seconds = 1\n'
    'backoff_seconds = 0\nkeep_checkouts = "never"\n'
)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(tmp: Path) -> Path:
    """Return a coordinator repo whose origin is a bare repo the machines fetch themselves."""
    remote, root = tmp / "remote.git", tmp / "repo"
    git(tmp, "init", "-q", "--bare", "-b", "main", str(remote))
    (root / "tasks").mkdir(parents=True)
    (root / "pyproject.toml").write_text(CONFIG)
    git(root, "init", "-q", "-b", "main")
    git(root, "remote", "add", "origin", str(remote))
    git(root, "add", "-A")
    git(root, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "init")
    git(root, "push", "-q", "-u", "origin", "main")
    return root


def model_spec(folder: Path, name: str, *, calls: int, delay_s: float) -> str:
    """Write a scripted model: `calls - 1` bash calls then finish, each after `delay_s`."""
    turns: list[dict[str, Any]] = []
    for step in range(calls - 1):
        bash = [{"name": "bash", "arguments": {"command": f"echo {name} {step} >> {name}.txt"}}]
        turns.append({"text": "work", "delay_s": delay_s, "tool_calls": bash})
    turns.append({"text": "done", "delay_s": delay_s, "tool_calls": [{"name": "finish", "arguments": {}}]})
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"turns": turns}))
    return f"scripted:{path}"


def machines(fleet: NetnsFleet, n: int, *, fork: bool = True) -> list[dict[str, Any]]:
    """Return `n` machine entries; `fork=False` starts `run-agents exec` per attempt (the naive baseline)."""
    return [
        {"name": name, "ssh": name, "workers": 1, "command": RUN_AGENTS, "fork_server": fork}
        for name in list(fleet.machines)[:n]
    ]


def run_queue(
    root: Path,
    fleet: NetnsFleet,
    n: int,
    n_tasks: int,
    models: Path,
    *,
    local: bool = False,
    fork: bool = True,
) -> float:
    """Queue `n_tasks` tasks, run them over `n` machines (or `n` local workers), return the wall time."""
    name = f"{'l' if local else 't'}{n}{'' if fork else 'p'}"
    tasks = root / "tasks"
    for old in tasks.glob("*.md"):
        old.unlink()
    for i in range(n_tasks):
        spec = model_spec(models, f"{name}-{i}", calls=CALLS, delay_s=CALL_S)
        (tasks / f"{name}-{i}.md").write_text(f"---\nkind: change\nmodel: {spec}\n---\nWork.\n")
    overrides = {"executor": "local" if local else "ssh", "workers": n, "queue": f"tasks/queue-{name}.jsonl",
                 "machines": machines(fleet, n, fork=fork),
                 "ssh": {"config_file": str(fleet.ssh_config)}}  # fmt: skip
    config = load_config(root, overrides=overrides)
    executor: Any = (
        LocalExecutor(workdir=config.path(root, "state_dir"), workers=n, cwd=root)
        if local
        else SshExecutor.from_config(config, root=root)
    )
    executor.slots()  # connect first: the run measures dispatch, not the first handshake
    started = time.perf_counter()
    summary = Scheduler(open_queue(root, config), executor, config=config, root=root).run()
    wall = time.perf_counter() - started
    executor.close()
    n_done = sum(1 for s in open_queue(root, config).refresh().values() if s.status == "finished")
    if n_done != n_tasks:
        sys.exit(f"only {n_done} of {n_tasks} tasks finished ({name}): {summary}")
    return wall


NOOP_WORKER = """#!/bin/sh
exec {python} -c 'import json, sys; r = json.load(sys.stdin); print(json.dumps({{"task_id": r["task"]["id"], \
"attempt": r["attempt"], "outcome": "accepted", "duration_s": 0}}))'
"""


def noop_worker(folder: Path) -> str:
    """Write a worker that answers at once (python + json only): isolates the transport's own cost."""
    path = folder / "noop-worker"
    path.write_text(NOOP_WORKER.format(python=sys.executable))
    path.chmod(0o755)
    return str(path)


def overhead_ms(executor: Any, slot: Any, root: Path, models: Path, tag: str, n: int = 7) -> float:
    """Median of (executor.run wall time - the worker's own duration), in ms."""
    config = load_config(root).model_dump(mode="json", by_alias=True)
    base = git(root, "rev-parse", "HEAD")
    samples = []
    for i in range(n):
        spec = model_spec(models, f"o{tag}{i}", calls=2, delay_s=0)
        task = Task(id=f"o-{tag}-{i}", kind="change", model=spec)
        request = WorkRequest(task=task, repo=str(root), base_commit=base, config=config)
        started = time.perf_counter()
        result = executor.run(request, slot)
        samples.append(time.perf_counter() - started - result.duration_s)
    return statistics.median(samples[1:]) * 1000  # the first run warms caches on both sides


def overhead(root: Path, fleet: NetnsFleet, models: Path, command: str, *, ssh: bool, fork: bool) -> float:
    """Return the dispatch overhead of the SSH executor (on m1) or the local one, `command` as the worker."""
    tag = f"{'s' if ssh else 'l'}{'f' if fork else 'p'}{len(command)}"
    if not ssh:
        argv = None if fork else [command]  # the local fork server runs this interpreter's runner
        local = LocalExecutor(workdir=root / ".agent-runner", workers=1, command=argv, fork=fork)
        try:
            return overhead_ms(local, local.slots()[0], root, models, tag)
        finally:
            local.close()
    machine = {**machines(fleet, 1, fork=fork)[0], "command": command}
    settings = {"config_file": str(fleet.ssh_config)}
    executor = SshExecutor.from_config(load_config(root, overrides={"machines": [machine], "ssh": settings}))
    try:
        return overhead_ms(executor, executor.slots()[0], root, models, tag)
    finally:
        executor.close()


def machine_cpu_s(root: Path, models: Path, *, fork: bool, n: int = 6) -> float:
    """Median CPU seconds a short attempt costs its machine: `run-agents exec`, or forkgate + a fork."""
    work = root.parent / f"cpu-{'fork' if fork else 'exec'}"
    work.mkdir(exist_ok=True)
    plain = [RUN_AGENTS, "exec", "-", "--inline-bundle", "--workdir", str(work)]
    gate = [sys.executable, "-m", "agent_runner.executors.fork.gate", "--pidfile", str(work / "pid"),
        "--workdir",
            str(work), "--inline-bundle", "--idle", "30", "--", *plain]  # fmt: skip
    config = load_config(root).model_dump(mode="json", by_alias=True)
    samples = []
    for i in range(n):
        task = Task(id=f"c-{work.name}-{i}", kind="change", model=model_spec(models, f"c{work.name}{i}",
                    calls=CALLS, delay_s=0))  # fmt: skip
        request = WorkRequest(task=task, repo=str(root.parent / "remote.git"), config=config)
        before = _fork_server_cpu_s(work)
        proc = subprocess.Popen(gate if fork else plain, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=work)  # fmt: skip
        assert proc.stdin is not None
        proc.stdin.write(request.model_dump_json().encode())
        proc.stdin.close()
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
        time.sleep(0.2)  # the server reaps its worker
        samples.append(usage.ru_utime + usage.ru_stime + _fork_server_cpu_s(work) - before)
    return statistics.median(samples[1:])  # the first one starts the server


def _fork_server_cpu_s(work: Path) -> float:
    """Return the CPU time of the finished workers of the fork server serving `work`."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            is_server = b"agent_runner.executors.fork.socket" in (stat.parent / "cmdline").read_bytes()
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cwd = os.readlink(stat.parent / "cwd")
        except OSError:
            continue
        if is_server and cwd == str(work) and int(fields[3]) == int(stat.parent.name):  # the session leader
            total += (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    return total


def ssh_round_trip_ms(fleet: NetnsFleet, *, shared: bool, n: int = 10) -> float:
    """Median time of `ssh m1 true`, through a ControlMaster socket or a new connection each time."""
    argv = ["ssh", "-F", str(fleet.ssh_config), "-o", "BatchMode=yes"]
    control = Path(tempfile.mkdtemp(prefix="ar-b-")) / "s"
    if shared:
        argv += ["-o", f"ControlPath={control}", "-o", "ControlMaster=auto", "-o", "ControlPersist=30"]
        subprocess.run(
            [*argv, "-f", "-N", "m1"], check=True, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run([*argv, "m1", "true"], check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    if shared:
        subprocess.run([*argv, "-O", "exit", "m1"], capture_output=True)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--machines", default="1,2,4")
    args = parser.parse_args()
    counts = [int(c) for c in args.machines.split(",")]
    reason = unavailable_reason()
    if reason:
        sys.exit(f"cannot build namespace machines: {reason}")
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as name:
        tmp = Path(name)
        os.environ["AGENT_RUNNER_HOME"] = str(tmp / "coordinator-home")
        root, models = make_repo(tmp), tmp / "models"
        models.mkdir()
        with NetnsFleet(tmp / "fleet", max(counts)) as fleet:
            report(root, fleet, models, counts, args.tasks)


def report(root: Path, fleet: NetnsFleet, models: Path, counts: list[int], n_tasks: int) -> None:
    """Print throughput, dispatch overhead and ssh round trips, then all of it as one JSON line."""
    rows = throughput(root, fleet, models, counts, n_tasks)
    print("dispatch overhead per task, median ms (executor.run wall - the worker's own duration):")
    figures = {}
    cases = (("real worker, forked", RUN_AGENTS, True), ("real worker, exec", RUN_AGENTS, False),
             ("no-op worker", noop_worker(models), False))  # fmt: skip
    for kind, command, fork in cases:
        ssh_ms = overhead(root, fleet, models, command, ssh=True, fork=fork)
        local_ms = overhead(root, fleet, models, command, ssh=False, fork=fork)
        figures[kind] = {"ssh": round(ssh_ms), "local": round(local_ms)}
        print(f"  {kind:19}: ssh {ssh_ms:5.0f}   local {local_ms:5.0f}   ssh extra {ssh_ms - local_ms:5.0f}")
    cpu = {"exec": machine_cpu_s(root, models, fork=False), "forked": machine_cpu_s(root, models, fork=True)}
    print(f"machine-side CPU per short attempt ({CALLS} calls, no delay): `run-agents exec` "
          f"{cpu['exec']:.2f} s, forked {cpu['forked']:.2f} s "
          f"({cpu['exec'] / cpu['forked']:.1f}x less)")  # fmt: skip
    shared, fresh = ssh_round_trip_ms(fleet, shared=True), ssh_round_trip_ms(fleet, shared=False)
    print(f"ssh round trip: ControlMaster {shared:.0f} ms vs a new connection each time {fresh:.0f} ms "
          f"(naive baseline, {fresh / shared:.1f}x slower)")  # fmt: skip
    trips = {"control_master": round(shared), "new_connection": round(fresh)}
    cpu = {k: round(v, 3) for k, v in cpu.items()}
    print(
        json.dumps({"runs": rows, "overhead_ms": figures, "machine_cpu_s": cpu, "ssh_round_trip_ms": trips})
    )


def throughput(
    root: Path, fleet: NetnsFleet, models: Path, counts: list[int], n_tasks: int
) -> list[dict[str, Any]]:
    """Run the queue over each machine count, then the naive baseline and the local executor; print rows."""
    ideal = CALL_S * CALLS
    print(f"{n_tasks} tasks, fake model {CALLS} calls x {CALL_S} s = {ideal:.1f} s of model time per task")
    walls = {n: run_queue(root, fleet, n, n_tasks, models) for n in counts}
    base, most = walls[counts[0]] * counts[0], counts[-1]
    rows = []
    for n, wall in walls.items():
        efficiency = base / (n * wall)
        ideal_eff = n_tasks * ideal / (n * wall)
        row = {"machines": n, "wall_s": round(wall, 2), "per_min": round(n_tasks / wall * 60, 1)}
        rows.append({**row, "efficiency": round(efficiency, 3), "model_time_share": round(ideal_eff, 3)})
        print(f"  {n} machine(s): {wall:6.1f} s  {n_tasks / wall * 60:5.1f} tasks/min  "
              f"parallel efficiency {efficiency:.0%} (vs {counts[0]} machine)  "
              f"model-time share {ideal_eff:.0%}")  # fmt: skip
    plain = run_queue(root, fleet, most, n_tasks, models, fork=False)
    plain_share = n_tasks * ideal / (most * plain)
    print(f"  naive baseline, {most} machines, `run-agents exec` per attempt (fork_server = false): "
          f"{plain:6.1f} s  model-time share {plain_share:.0%} "
          f"(fork server: {plain / walls[most]:.2f}x faster)")  # fmt: skip
    rows.append({"machines": most, "fork_server": False, "wall_s": round(plain, 2),
                 "model_time_share": round(plain_share, 3)})  # fmt: skip
    local_wall = run_queue(root, fleet, most, n_tasks, models, local=True)
    local_eff = base / (most * local_wall)
    print(f"  same host, local executor, {most} workers: {local_wall:6.1f} s  "
          f"parallel efficiency {local_eff:.0%} (vs 1 SSH machine)")  # fmt: skip
    rows.append({"local_workers": most, "wall_s": round(local_wall, 2), "efficiency": round(local_eff, 3)})
    return rows


if __name__ == "__main__":
    main()

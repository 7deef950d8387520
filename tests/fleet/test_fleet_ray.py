"""The Ray executor on Ray nodes in namespace machines (a local Ray without root): results with bundles,
pins honoured, unschedulable pins, a killed worker re-queued."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fleet_helpers import start_ray_in_namespaces

from agent_runner.config.runner import load_config
from agent_runner.coordinator.scheduler import Scheduler
from agent_runner.core.errors import ExecutorError
from agent_runner.core.result import Outcome, WorkRequest
from agent_runner.core.task import Task
from agent_runner.executors.ray import RayConfig, RayExecutor, import_ray
from agent_runner.queue.intake import open_queue
from agent_runner.testing.netns import NetnsFleet, unavailable_reason

FINISH = {"name": "finish", "arguments": {"summary": "done"}}
CONFIG = (
    '[tool.agent-runner]\nsandbox = "none"\ntest = "true"\nbackoff_seconds = 0\nheartbeat_seconds = 0.5\n'
)


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` and return its output."""
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def ray_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NetnsFleet, str] | None]:
    """Namespace machines head, m1, m2 running Ray nodes, and the head's address (None without root)."""
    if unavailable_reason() is not None:
        yield None
        return
    temp = Path(tempfile.mkdtemp(prefix="ar-ray-"))
    try:
        with NetnsFleet(tmp_path_factory.mktemp("ray-fleet"), 3, names=["head", "m1", "m2"]) as fleet:
            yield fleet, start_ray_in_namespaces(fleet, temp)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_cluster(ray_fleet: tuple[NetnsFleet, str] | None) -> Iterator[Any]:
    """A Ray started by the test: a head and a 1-CPU worker node in each namespace machine, or a local Ray."""
    ray = pytest.importorskip("ray")
    if ray_fleet is None:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=ray_fleet[1], log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A source repo (no remote: Ray nodes get it as a bundle)."""
    root = tmp_path / "repo"
    (root / "tasks").mkdir(parents=True)
    (root / "pyproject.toml").write_text(CONFIG, encoding="utf-8")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return root


def edit_model(tmp_path: Path, name: str, *, delay_s: float = 0.0) -> str:
    """Return a scripted model spec that writes <name>.txt, then finishes."""
    bash = {"name": "bash", "arguments": {"command": f"echo {name} > {name}.txt"}}
    turns = [
        {"text": "edit", "delay_s": delay_s, "tool_calls": [bash]},
        {"text": "ok", "tool_calls": [FINISH]},
    ]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"turns": turns}), encoding="utf-8")
    return f"scripted:{path}"


def node_config(tmp_path: Path, **fields: Any) -> RayConfig:
    """Return a Ray config whose workers keep their state and git caches under tmp_path."""
    env = {"AGENT_RUNNER_HOME": str(tmp_path / "node-home")}
    return RayConfig(workdir=str(tmp_path / "node"), env=env, **fields)


def request(repo: Path, task: Task) -> WorkRequest:
    """Return a work request for `task` on `repo` with the repo's config."""
    config = load_config(repo).model_dump(mode="json", by_alias=True)
    return WorkRequest(task=task, repo=str(repo), config=config, secrets={"GITHUB_TOKEN": "never-sent"})


def test_ray_task_returns_result_with_inline_bundle(ray_cluster: Any, repo: Path, tmp_path: Path) -> None:
    """A Ray task runs the worker on a node and returns an accepted result carrying its commits."""
    executor = RayExecutor(node_config(tmp_path), forward_env=["ANTHROPIC_API_KEY"])
    task = Task(id="r1", kind="change", model=edit_model(tmp_path, "r1"))
    result = executor.run(request(repo, task), executor.slots()[0])
    executor.close()
    assert result.outcome == Outcome.ACCEPTED, result.reason
    assert result.bundle_b64 and result.machine == "ray:ray/1"
    assert ray_cluster.is_initialized()  # a Ray started by someone else is left running


def test_pin_to_absent_resource_is_unschedulable(ray_cluster: Any, repo: Path, tmp_path: Path) -> None:
    """A task pinned to a resource no live node offers fails fast as unschedulable instead of hanging."""
    executor = RayExecutor(node_config(tmp_path, unschedulable_after_s=1.0))
    task = Task(id="pinned", kind="change", machine="gpu-box", model=edit_model(tmp_path, "p"))
    started = time.monotonic()
    with pytest.raises(ExecutorError, match=r"unschedulable.*gpu-box"):
        executor.run(request(repo, task), executor.slots()[0])
    assert time.monotonic() - started < 10


def test_pinned_tasks_run_on_their_namespace_node(
    ray_cluster: Any, ray_fleet: tuple[NetnsFleet, str] | None, repo: Path, tmp_path: Path
) -> None:
    """With Ray worker nodes in namespace machines, a task pinned to m1 or m2 runs on that machine."""
    if ray_fleet is None:
        pytest.skip(f"namespace machines unavailable: {unavailable_reason()}")
    executor = RayExecutor(node_config(tmp_path))
    for name in ("m1", "m2"):
        where = tmp_path / f"where-{name}"
        bash = {"name": "bash", "arguments": {"command": f"hostname -I > {where}; echo {name} > {name}.txt"}}
        turns = [{"text": "edit", "tool_calls": [bash]}, {"text": "ok", "tool_calls": [FINISH]}]
        script = tmp_path / f"{name}.yaml"
        script.write_text(yaml.safe_dump({"turns": turns}), encoding="utf-8")
        task = Task(id=f"pin-{name}", kind="change", machine=name, model=f"scripted:{script}")
        result = executor.run(request(repo, task), executor.slots()[0])
        assert result.outcome == Outcome.ACCEPTED, result.reason
        assert where.read_text().split() == [ray_fleet[0].machines[name].address]
    executor.close()


def _ray_workers_running(title: str) -> list[int]:
    """Return the pids whose command line (a Ray worker's process title) contains `title`."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if title in cmdline.read_bytes().decode("utf-8", "replace"):
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


def test_killed_ray_worker_requeues_the_task(ray_cluster: Any, repo: Path, tmp_path: Path) -> None:
    """Killing the Ray worker mid-task re-queues the task; it then finishes without spending an attempt."""
    (repo / "tasks" / "k.md").write_text(
        f"---\nkind: change\nmodel: {edit_model(tmp_path, 'k', delay_s=5)}\n---\nGo.\n"
    )  # the model call outlasts the kill below even on a loaded machine
    overrides = {"ray": node_config(tmp_path).model_dump(), "backoff_seconds": 0.5}
    config = load_config(repo, overrides=overrides)
    queue = open_queue(repo, config)
    executor = RayExecutor(config.ray)
    runner = threading.Thread(target=Scheduler(queue, executor, config=config, root=repo).run, daemon=True)
    runner.start()
    deadline = time.monotonic() + 30
    while not (pids := _ray_workers_running("ray::run_attempt")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pids, "the Ray task never started"
    time.sleep(0.5)
    for pid in pids:
        subprocess.run(["kill", f"-{signal.SIGKILL.value}", str(pid)], check=False)
    runner.join(timeout=180)
    executor.close()
    state = queue.refresh()["k"]
    assert state.status == "finished" and state.attempt == 2 and state.spent == 0 and state.infra == 1
    assert git(repo, "show", "agent/k:k.txt") == "k"


def test_a_paused_ray_attempt_stops_at_its_next_model_call(
    ray_cluster: Any, repo: Path, tmp_path: Path
) -> None:
    """A pause reaches the node through the pause board: the attempt stops before its next model call and
    comes back PAUSED (its first call's work recorded), not killed."""
    started, pause = tmp_path / "started", tmp_path / "node" / "runs" / "p" / "1" / "pause"
    wait = {
        "name": "bash",
        "arguments": {"command": f"touch {started}; until [ -e {pause} ]; do sleep 0.05; done"},
    }
    path = tmp_path / "p.yaml"
    turns = [{"text": "wait", "tool_calls": [wait]}, {"text": "ok", "tool_calls": [FINISH]}]
    path.write_text(yaml.safe_dump({"turns": turns}), encoding="utf-8")
    executor = RayExecutor(node_config(tmp_path))
    task = Task(id="p", kind="change", model=f"scripted:{path}")
    results = []
    runner = threading.Thread(
        target=lambda: results.append(executor.run(request(repo, task), executor.slots()[0]))
    )
    runner.start()
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:  # waits on the file the agent writes
        time.sleep(0.05)
    executor.pause("p", 1, "the cost budget is reached")
    runner.join(timeout=120)
    executor.close()
    assert results and results[0].outcome == Outcome.PAUSED, results
    assert results[0].reason == "paused: the cost budget is reached" and results[0].model_calls == 1


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Ray installed, choosing the Ray executor says which extra to install."""
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ExecutorError, match=r"pip install 'agent-runner\[ray\]'"):
        import_ray()

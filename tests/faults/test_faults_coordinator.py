"""The coordinator killed with SIGKILL at 20 seeded random moments of a 10-task run, restarted each time."""

from __future__ import annotations

import json
import random
import signal
import time
from collections import Counter

import pytest
from faults_helpers import Project, Scenario, git, json_events

from agent_runner.queue.store import Queue
from agent_runner.testing.fake_github import FakeGitHub

N_TASKS = 10
N_KILLS = 20
SEED = 20261128
TOKEN = {"GITHUB_TOKEN": "ghp_faultsuitefaketoken000000000000000001"}


def _check_queue_parses(project: Project) -> None:
    """Every complete line is a JSON event and the queue reads without a corrupt line."""
    if not project.queue_file.exists():
        return
    text = project.queue_file.read_text(encoding="utf-8")
    complete = text.splitlines(keepends=True)
    for line in complete:
        if line.endswith("\n"):
            assert isinstance(json.loads(line), dict), line
    Queue(project.queue_file).check()


def test_coordinator_sigkill_20_times_then_every_task_finished_once(
    project: Project, scenario: Scenario
) -> None:
    """20 kill -9 of `run` mid-run and restarts: each task finished once, one branch and one PR each."""
    ids = [f"t{i:02d}" for i in range(N_TASKS)]
    for task_id in ids:
        model = project.edit_script(task_id, f"{task_id}.py", f"x = {task_id!r}\n", delay_s=0.15)
        project.task(task_id, model, paths=[f"{task_id}.py"], max_attempts=1)
    # A restarted coordinator frees the attempts its killed predecessor left running, without spending an
    # attempt or an infrastructure retry: with the default cap of 5 and 60 s leases, 20 kills must still pass.
    project.configure("lease_seconds = 60\nheartbeat_seconds = 0.3\n")  # kills must not wait out leases
    rng = random.Random(SEED)
    landed = 0
    with FakeGitHub(origin=project.origin) as fake:
        project.configure(
            f'[tool.agent-runner.github]\napi_url = "{fake.base_url}"\nrepository = "{fake.full_name}"\n'
            "request_interval_s = 0\nwrite_interval_s = 0\n"
        )
        for _ in range(N_KILLS):
            proc = project.popen("run", "--json", env=TOKEN)
            time.sleep(rng.uniform(0.4, 2.4))
            landed += proc.poll() is None
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            _check_queue_parses(project)
        final = project.cli("run", "--json", env=TOKEN, timeout=150)
        pulls = list(fake.store.pulls.values())
        creates = fake.calls("POST", "/pulls")
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    _check_queue_parses(project)
    events = list(Queue(project.queue_file).events())
    finished = Counter(e["task"] for e in events if e["type"] == "finished")
    assert finished == Counter({task_id: 1 for task_id in ids}), finished
    assert not [e for e in events if e["type"] == "failed"], "no attempt may be spent by a killed coordinator"
    branches = git(project.root, "branch", "--list", "agent/*", "--format=%(refname:short)").split()
    assert sorted(branches) == [f"agent/{task_id}" for task_id in ids]
    for task_id in ids:
        assert git(project.root, "rev-list", "--count", f"main..agent/{task_id}") == "1"
    heads = Counter(p["head"]["ref"] for p in pulls)
    assert all(n == 1 for n in heads.values()), f"duplicate PRs: {heads}"
    missing = sorted(set(ids) - {ref.removeprefix("agent/") for ref in heads})
    summary = json_events(final.stdout)[-1]
    scenario.outcome = (
        f"{landed}/{N_KILLS} kills mid-run; 10 finished once; {len(heads)} PRs, {len(creates)} creates; "
        f"no PR for {missing or 'none'}; last run {summary.get('wall_s', 0):.1f} s"
    )
    if missing:  # the scheduler records `finished` before publishing and never revisits it after a crash
        pytest.xfail(f"known bug: killed between finish and publish, no PR is ever opened for {missing}")

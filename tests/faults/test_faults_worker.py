"""Worker faults: a worker killed mid-task, its checkout deleted under it, the queue file's disk full."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from faults_helpers import Project, Scenario, finish_call, json_events, small_tmpfs, task_types, wait_for

from agent_runner.queue.store import Queue
from agent_runner.testing.scripts import bash_turn, write_command


def _worker_pids(log: Path) -> list[int]:
    """Return the pids whose stderr is the attempt's worker.log: the worker (spawned or forked) and kin."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.readlink(entry / "fd" / "2") == str(log):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _quiet(events: list[dict[str, object]], task_id: str) -> list[str]:
    return [t for t in task_types(events, task_id) if t != "heartbeat"]


def _assert_whole_lines(path: Path) -> None:
    """The queue file holds only complete JSON lines."""
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), data[-200:]
    for line in data.splitlines():
        assert isinstance(json.loads(line), dict), line
    Queue(path).check()


def test_worker_killed_mid_task_is_requeued_without_spending_an_attempt(
    project: Project, scenario: Scenario
) -> None:
    """kill -9 of a running worker: the attempt is released as infra and re-run; finishes, nothing spent."""
    model = project.script("slow", [bash_turn(write_command("w.py", "w = 1\n"), delay_s=2.0), finish_call()])
    project.task("victim", model, max_attempts=1)
    proc = project.popen("run", "--json")
    try:
        run_dir = project.state / "runs" / "victim" / "1"
        wait_for(lambda: (run_dir / "trajectory.jsonl").exists(), timeout=30, what="the agent's first step")
        pids = _worker_pids(run_dir / "worker.log")
        assert pids, "no process writes the attempt's worker.log"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    events = project.events()
    assert _quiet(events, "victim") == ["queued", "claimed", "released", "claimed", "finished"]
    released = next(e for e in events if e["type"] == "released")
    assert released["infra"] is True and "-9" in released["reason"], released
    scenario.outcome = f"re-queued unspent ({released['reason'][:50]}), then finished"


def test_checkout_deleted_under_the_worker_fails_clearly_then_retries(
    project: Project, scenario: Scenario
) -> None:
    """The checkout vanishes mid-task: the attempt ends with a clear reason; the next attempt finishes."""
    model = project.script(
        "vanish",
        [bash_turn("echo start", delay_s=1.5), bash_turn(write_command("v.py", "v = 1\n")), finish_call()],
    )
    project.task("vanish", model, max_attempts=2, reflection_rounds=0)
    checkout = project.state / "checkouts" / "vanish-1"
    proc = project.popen("run", "--json")
    try:
        wait_for(lambda: (project.state / "runs" / "vanish" / "1" / "trajectory.jsonl").exists(), timeout=30)
        shutil.rmtree(checkout)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    events = project.events()
    ends = [e for e in events if e.get("task") == "vanish" and e["type"] in ("released", "failed")]
    assert len(ends) == 1 and _quiet(events, "vanish")[-1] == "finished", _quiet(events, "vanish")
    reason = ends[0]["reason"]
    assert "vanish-1" in reason or "checkout" in reason.lower() or "No such file" in reason, reason
    scenario.outcome = f"attempt 1 {ends[0]['type']}: {reason.splitlines()[0][:70]}; attempt 2 finished"


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (skips where mounting is not permitted)."""
    with small_tmpfs(tmp_path / "tiny", "256k") as mount:
        yield mount


def _fill(folder: Path) -> Path:
    """Fill the file system of `folder` to the last byte; return the filler file."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def test_disk_full_for_the_queue_file_is_a_clear_error_and_the_run_resumes(
    project: Project, scenario: Scenario, tiny_disk: Path
) -> None:
    """ENOSPC on the queue file mid-run: a clear error, no partial line; with space freed the run finishes."""
    queue_file = tiny_disk / "queue.jsonl"
    project.configure(f'queue = "{queue_file}"\nlease_seconds = 2\nheartbeat_seconds = 0.05\n')
    # A 10 kB summary makes the `finished` event larger than a page, so it cannot fit in the file's slack.
    turns = [bash_turn(write_command("f.py", "f = 1\n"), delay_s=1.0), finish_call("s" * 10_000)]
    model = project.script("full", turns)
    project.task("full", model, max_attempts=1)
    proc = project.popen("run", "--json")
    wait_for(
        lambda: queue_file.exists() and b'"claimed"' in queue_file.read_bytes(), timeout=30, what="a claim"
    )
    filler = _fill(tiny_disk)
    code = proc.wait(timeout=60)
    log = sorted((project.root.parent / "coordinator-logs").iterdir())[-1].read_text()
    assert code == 1, log
    assert "disk is full" in log and str(queue_file) in log, log
    _assert_whole_lines(queue_file)
    filler.unlink()
    # A `run` started while the dead coordinator's lease is live finds nothing runnable and exits 0
    # (reported), so the restart waits the lease out, as a user re-running after the error would.
    time.sleep(2.2)
    out = project.cli("run", "--json", timeout=90)
    assert out.returncode == 0, out.stdout + out.stderr
    _assert_whole_lines(queue_file)
    events = [e for e in Queue(queue_file).events() if e.get("task") == "full"]
    assert [e["type"] for e in events].count("finished") == 1
    assert any(e.get("event") == "finished" for e in json_events(out.stdout))
    error = next(line for line in log.splitlines() if "disk is full" in line)
    scenario.outcome = f"clear error ({error.strip()[:60]}...), whole lines, resumed and finished"

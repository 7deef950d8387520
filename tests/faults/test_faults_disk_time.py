"""The disk and long work: an attempt's wall-clock limit, a full disk (the task's or the machine's), the
checkouts of killed workers, and a worker that dies with something in its log."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from faults_helpers import Project, Scenario, finish_call, small_tmpfs, task_types, wait_for

from agent_runner.core.protocols import Slot
from agent_runner.core.result import Outcome, WorkRequest
from agent_runner.core.task import Limits, Task
from agent_runner.executors.local import LocalExecutor
from agent_runner.repo import ownership
from agent_runner.testing.scripts import bash_turn, write_command
from agent_runner.worker import deadline
from agent_runner.worker import serve as worker


def _quiet(events: list[dict[str, object]], task_id: str) -> list[str]:
    return [t for t in task_types(events, task_id) if t != "heartbeat"]


def _ends(project: Project, task_id: str) -> list[dict[str, object]]:
    return [e for e in project.events() if e.get("task") == task_id and e["type"] in ("released", "failed")]


def test_attempt_wall_clock_limit_covers_the_gates_and_show_names_it(
    project: Project, scenario: Scenario
) -> None:
    """A hanging test command: `attempt_minutes` ends the attempt as a task failure; show names the limit."""
    project.configure('test = "sleep 20"')
    model = project.edit_script("hang", "h.py", "h = 1\n")
    project.task("hang", model, max_attempts=1, limits={"attempt_minutes": 0.05})
    started = time.monotonic()
    out = project.cli("run", "--json", timeout=60)
    elapsed = time.monotonic() - started
    assert out.returncode == 1, out.stdout + out.stderr  # a task failed
    assert _quiet(project.events(), "hang")[-1] == "failed"
    failed = _ends(project, "hang")[-1]
    assert "attempt_minutes = 0.05" in str(failed["reason"]), failed
    assert failed["result"]["limit"] == "attempt_minutes", failed  # type: ignore[index]
    assert elapsed < 18, f"the run took {elapsed:.1f} s: the hanging test was not cut short"
    show = project.cli("show", "hang")
    assert "Ended by a limit" in show.stdout and "attempt_minutes" in show.stdout, show.stdout
    scenario.outcome = (
        f"failed after {elapsed:.1f} s (limit 3 s, test sleeps 20 s); show names attempt_minutes"
    )


def test_attempt_alarm_rings_at_its_limit_and_keeps_an_earlier_timer() -> None:
    """The worker's alarm ends the attempt at its limit; a timer set before it (pytest-timeout's) runs on."""
    saved = signal.getitimer(signal.ITIMER_REAL)
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: None)
    signal.setitimer(signal.ITIMER_REAL, 30)
    try:
        started = time.monotonic()
        with pytest.raises(deadline.AttemptTimeout), deadline.alarm(0.2 / 60):
            threading.Event().wait(5)  # interrupted by the alarm
        assert time.monotonic() - started < 2
        assert 25 < signal.getitimer(signal.ITIMER_REAL)[0] <= 30
    finally:
        signal.signal(signal.SIGALRM, previous)
        signal.setitimer(signal.ITIMER_REAL, *saved)


def test_executor_kills_a_worker_past_the_limit_and_grace(tmp_path: Path, scenario: Scenario) -> None:
    """A worker that ignores its deadline is killed by the executor (limit + grace): a failure naming it."""
    hang = [sys.executable, "-c", "import time; time.sleep(60)"]
    executor = LocalExecutor(workdir=tmp_path / "state", workers=1, command=hang, backstop_grace_s=0.5)
    task = Task(id="stuck", kind="change", limits=Limits(attempt_minutes=0.01))
    request = WorkRequest(task=task, repo=str(tmp_path))
    started = time.monotonic()
    result = executor.run(request, Slot("local-1", machine="local"))
    elapsed = time.monotonic() - started
    assert result.outcome == Outcome.REJECTED and result.limit == "attempt_minutes", result
    assert "killed" in result.reason and elapsed < 10, (elapsed, result.reason)
    scenario.outcome = f"killed after {elapsed:.1f} s (limit 0.6 s + grace 0.5 s): {result.reason[:50]}"


def test_checkout_over_max_disk_mb_fails_the_task_naming_its_size(
    project: Project, scenario: Scenario
) -> None:
    """A task whose checkout grows past `max_disk_mb` fails (spends its attempt), naming the size."""
    model = project.script("big", [bash_turn("head -c 3000000 /dev/urandom > big.bin"), finish_call()])
    project.task("big", model, max_attempts=1, limits={"max_disk_mb": 1})
    out = project.cli("run", "--json", timeout=60)
    assert out.returncode == 1, out.stdout + out.stderr  # a task failed
    failed = _ends(project, "big")
    assert [e["type"] for e in failed] == ["failed"], failed
    reason = str(failed[0]["reason"])
    assert "grew to 3 MB" in reason and "max_disk_mb = 1" in reason, reason
    show = project.cli("show", "big")
    assert "max_disk_mb" in show.stdout, show.stdout
    scenario.outcome = f"failed: {reason[:70]}"


def test_machine_without_free_space_pauses_and_loses_nothing(project: Project, scenario: Scenario) -> None:
    """Below `min_free_mb` free, the machine takes no more work: tasks released unspent, a clear message."""
    for name in ("one", "two", "three"):
        project.task(name, project.edit_script(name, f"{name}.py", "x = 1\n"), max_attempts=1)
    project.configure("min_free_mb = 1e12")
    out = project.cli("run", "--json", timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    events = project.events()
    released = [e for e in events if e["type"] == "released"]
    assert released and not [e for e in events if e["type"] == "failed"], events
    assert len(released) <= 2, "the paused machine took more attempts after the first found it full"
    assert all("min_free_mb" in str(e["reason"]) and e["infra"] is False for e in released), released
    project.configure("min_free_mb = 0")
    out = project.cli("run", "--json", timeout=90)
    assert out.returncode == 0, out.stdout + out.stderr
    for name in ("one", "two", "three"):
        assert _quiet(project.events(), name)[-1] == "finished", _quiet(project.events(), name)
    scenario.outcome = (
        f"{len(released)} released unspent ({str(released[0]['reason'])[:50]}...), then finished"
    )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs (skips where mounting is not permitted)."""
    with small_tmpfs(tmp_path / "small", "8m") as mount:
        yield mount


def test_task_that_fills_the_disk_fails_and_innocent_tasks_run(
    project: Project, scenario: Scenario, small_disk: Path
) -> None:
    """ENOSPC from a task that filled the disk spends its attempt (naming the size); the next one finishes."""
    project.configure(f'state_dir = "{small_disk}"\nmin_free_mb = 1\nworkers = 1')
    filler = project.script("filler", [bash_turn("head -c 20000000 /dev/zero > fill.bin"), finish_call()])
    project.task("filler", filler, max_attempts=1, priority=1)
    project.task("innocent", project.edit_script("innocent", "i.py", "i = 1\n"), max_attempts=1)
    out = project.cli("run", "--json", timeout=90)
    assert out.returncode == 1, out.stdout + out.stderr  # a task failed
    ends = _ends(project, "filler")
    assert [e["type"] for e in ends] == ["failed"], ends
    assert "filled the disk" in str(ends[0]["reason"]) and "MB" in str(ends[0]["reason"]), ends
    assert _quiet(project.events(), "innocent")[-1] == "finished", _quiet(project.events(), "innocent")
    scenario.outcome = f"filler failed ({str(ends[0]['reason'])[:60]}...); innocent finished"


def test_disk_filled_by_another_pauses_the_machine_and_spends_nothing(
    project: Project, scenario: Scenario, small_disk: Path
) -> None:
    """ENOSPC mid-attempt with the checkout not grown: released unspent, machine paused; then it finishes."""
    project.configure(f'state_dir = "{small_disk}"\nmin_free_mb = 1\nworkers = 1')
    turns = [bash_turn("echo start", delay_s=1.0), bash_turn(write_command("v.py", "v = 1\n")), finish_call()]
    project.task("victim", project.script("victim", turns), max_attempts=1)
    proc = project.popen("run", "--json")
    try:
        trajectory = small_disk / "runs" / "victim" / "1" / "trajectory.jsonl"
        wait_for(trajectory.exists, timeout=30, what="the agent's first step")
        filler = small_disk / "filler"
        with open(filler, "wb", buffering=0) as fh, pytest.raises(OSError):
            while True:
                fh.write(b"\0" * 65536)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    assert "failed" not in _quiet(project.events(), "victim"), project.events()
    released = _ends(project, "victim")
    assert released and all(e["type"] == "released" for e in released), released
    filler.unlink()
    out = project.cli("run", "--json", timeout=90)
    assert out.returncode == 0, out.stdout + out.stderr
    assert _quiet(project.events(), "victim")[-1] == "finished"
    scenario.outcome = f"released unspent ({str(released[-1]['reason'])[:60]}...), then finished"


def test_worker_sweeps_checkouts_no_live_attempt_owns(project: Project, scenario: Scenario) -> None:
    """A worker sweeps its machine's checkouts of dead attempts (lock held by none); kept, live ones stay."""
    checkouts = project.state / "checkouts"
    for name in ("ghost-1", "kept-1", "legacy-1", "live-1"):  # as on an SSH machine: no queue knows them
        (checkouts / name).mkdir(parents=True)
        (checkouts / name / "f.py").write_text("f = 1\n")
    for name in ("ghost-1.lock", "kept-1.lock", "kept-1.kept"):
        (checkouts / name).touch()
    project.task("t", project.edit_script("t", "t.py", "t = 1\n"), max_attempts=1)
    with ownership.owning(checkouts / "live-1"):
        out = project.cli("run", "--json", timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        assert (checkouts / "live-1").is_dir(), "a live attempt's checkout was swept"
    assert not (checkouts / "ghost-1").exists() and not (checkouts / "ghost-1.lock").exists()
    assert (checkouts / "kept-1").is_dir() and (checkouts / "legacy-1").is_dir()
    scenario.outcome = "the dead attempt's checkout went; kept, unlocked-legacy and live ones stayed"


def test_checkout_of_a_killed_worker_is_removed(project: Project, scenario: Scenario) -> None:
    """kill -9 of a worker: its attempt's checkout is gone when the run ends (not left for `clean`)."""
    model = project.script("slow", [bash_turn(write_command("w.py", "w = 1\n"), delay_s=2.0), finish_call()])
    project.task("victim", model, max_attempts=1)
    proc = project.popen("run", "--json")
    try:
        run_dir = project.state / "runs" / "victim" / "1"
        wait_for(lambda: (run_dir / "trajectory.jsonl").exists(), timeout=30, what="the agent's first step")
        assert (project.state / "checkouts" / "victim-1").is_dir()
        log = str(run_dir / "worker.log")
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and os.readlink(entry / "fd" / "2") == log:
                    os.kill(int(entry.name), signal.SIGKILL)
            except OSError:
                continue
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    assert _quiet(project.events(), "victim")[-1] == "finished"
    left = sorted(p.name for p in (project.state / "checkouts").iterdir() if p.name.startswith("victim-1"))
    assert not left, left
    scenario.outcome = "the dead attempt's checkout was removed during the run"


def test_worker_that_dies_of_an_exception_says_so_in_its_log(capfd: pytest.CaptureFixture[str]) -> None:
    """An exception that ends the worker is written to its stderr (the attempt's log) before it propagates."""
    with pytest.raises(OSError), worker.last_words():
        raise OSError(28, "No space left on device")
    err = capfd.readouterr().err
    assert "the worker failed" in err and "No space left on device" in err, err

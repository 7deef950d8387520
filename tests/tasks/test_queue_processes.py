"""The queue file under real processes: concurrent claims, and a write that runs out of space."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_runner.core.task import Task, TaskKind, TaskStatus
from agent_runner.queue.store import Queue

CLAIMER = """
import json, sys, time
from pathlib import Path
from agent_runner.queue.store import Queue

queue, name, go = Queue(Path(sys.argv[1])), sys.argv[2], Path(sys.argv[3])
go.with_name(f"ready-{name}").touch()
while not go.exists():
    time.sleep(0.001)
claimed = []
while (claim := queue.claim(name, lease_s=300)) is not None:
    queue.heartbeat(claim.task_id, claim.attempt, lease_s=300)
    queue.finish(claim.task_id, claim.attempt, {"worker": name})
    claimed.append(claim.task_id)
print(json.dumps(claimed))
"""

FULL_DISK = """
import resource, sys
from pathlib import Path
from agent_runner.core.errors import QueueError
from agent_runner.queue.store import Queue

queue = Queue(Path(sys.argv[1]))
claim = queue.claim("w", lease_s=300)
size = queue.path.stat().st_size
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 50, resource.RLIM_INFINITY))  # room for a fragment only
try:
    queue.finish(claim.task_id, claim.attempt, {"summary": "x" * 5000})
except QueueError as exc:
    print(f"{claim.task_id} {size} {exc}")
"""


FULL_TMPFS = """
import json, os, sys
from pathlib import Path
from agent_runner.core.errors import QueueError
from agent_runner.queue.store import Queue
from agent_runner.core.task import Task, TaskKind

folder = Path(sys.argv[1])
queue = Queue(folder / "queue.jsonl")
queue.add(Task(id="a", kind=TaskKind.CHANGE))
claim = queue.claim("w", lease_s=300)
filler = folder / "filler"
fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
try:  # take every free page of the tmpfs
    while os.write(fd, b"x" * 4096):
        pass
except OSError:
    pass
os.close(fd)
size = queue.path.stat().st_size
try:
    queue.finish("a", claim.attempt, {"summary": "x" * 20000})
    error = ""
except QueueError as exc:
    error = str(exc)
after = queue.path.read_bytes()
fresh = Queue(queue.path)
status = fresh.refresh()["a"].status
filler.unlink()
fresh.finish("a", claim.attempt, {"summary": "after the disk was freed"})
final = Queue(queue.path).refresh()["a"].status
print(json.dumps({"error": error, "size": size, "after": len(after), "ends_nl": after.endswith(b"\\n"),
                  "corrupt": len(fresh.corrupt), "status": status, "final": final}))
"""


def fill(path: Path, n_tasks: int) -> Queue:
    """Return a queue file holding `n_tasks` queued tasks."""
    queue = Queue(path)
    for n in range(n_tasks):
        queue.add(Task(id=f"t{n:03d}", kind=TaskKind.CHANGE, priority=n % 3))
    return queue


def test_four_processes_claim_each_task_exactly_once(tmp_path: Path) -> None:
    """4 processes racing on 200 tasks: each task is claimed and finished once, and the file stays clean."""
    queue = fill(tmp_path / "queue.jsonl", 200)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, str(queue.path), f"w{n}", str(go)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)  # start all four at once, after their imports
    go.touch()
    claimed = [json.loads(proc.communicate(timeout=120)[0]) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    flat = [task_id for ids in claimed for task_id in ids]
    assert sorted(flat) == [f"t{n:03d}" for n in range(200)]
    assert sum(1 for ids in claimed if ids) >= 2  # they really raced
    fresh = Queue(queue.path)
    states = fresh.refresh()
    assert not fresh.corrupt and all(
        s.status == TaskStatus.FINISHED and s.attempt == 1 for s in states.values()
    )
    finished = [e for e in fresh.events() if e["type"] == "finished"]
    assert len(finished) == 200 and len({e["task"] for e in finished}) == 200


def test_write_failure_leaves_no_partial_line(tmp_path: Path) -> None:
    """A write cut short by a file-size limit (as on a full disk) is undone: nothing recorded, file intact."""
    queue = fill(tmp_path / "queue.jsonl", 3)
    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(queue.path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    task_id, size, message = proc.stdout.split(" ", 2)
    assert "cannot write" in message and "Nothing was recorded" in message
    assert queue.path.stat().st_size == int(size) and queue.path.read_bytes().endswith(b"\n")
    fresh = Queue(queue.path)
    states = fresh.refresh()
    assert not fresh.corrupt and states[task_id].status == TaskStatus.RUNNING
    fresh.finish(task_id, 1, {"summary": "after the disk was freed"})
    assert Queue(queue.path).refresh()[task_id].status == TaskStatus.FINISHED


def test_full_disk_leaves_no_partial_line(tmp_path: Path) -> None:
    """On a real full filesystem (a 64 KiB tmpfs), a failed append is cut back and says the disk is full."""
    mount = f'mount -t tmpfs -o size=64k tmpfs {tmp_path} && exec {sys.executable} -c "$0" {tmp_path}'
    proc = subprocess.run(["unshare", "-m", "sh", "-c", mount, FULL_TMPFS], capture_output=True, text=True)
    if proc.returncode != 0 and "mount" in proc.stderr + proc.stdout:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert "the disk is full" in out["error"] and "Nothing was recorded" in out["error"]
    assert out["after"] == out["size"] and out["ends_nl"] and out["corrupt"] == 0
    assert (out["status"], out["final"]) == ("running", "finished")

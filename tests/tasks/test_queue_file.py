"""The queue file: fold, leases, fencing, retries, torn and corrupt lines, compaction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_runner.core.errors import QueueCorruptError, QueueError, StaleAttemptError
from agent_runner.core.task import Task, TaskKind, TaskStatus
from agent_runner.queue.store import Queue


class Clock:
    """A settable clock for lease and back-off tests."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def make_task(task_id: str, **fields: object) -> Task:
    """Return a change task with `fields`."""
    return Task.model_validate({"id": task_id, "kind": TaskKind.CHANGE, **fields})


@pytest.fixture
def clock() -> Clock:
    """A clock the test moves by hand."""
    return Clock()


@pytest.fixture
def queue(tmp_path: Path, clock: Clock) -> Queue:
    """An empty queue file in tmp_path."""
    return Queue(tmp_path / "queue.jsonl", max_infra=2, clock=clock)


def reread(queue: Queue) -> dict[str, dict[str, object]]:
    """Fold the file again from scratch in a fresh Queue and return every state as JSON."""
    return folded(Queue(queue.path))


def folded(queue: Queue) -> dict[str, dict[str, object]]:
    """Return the states `queue` folds after reading what is new (without `seq`, which orders only)."""
    return {k: {**v.to_json(), "seq": None} for k, v in queue.refresh().items()}


def lines(queue: Queue) -> list[str]:
    """Return the raw lines of the queue file."""
    return queue.path.read_text().splitlines()


def test_fold_follows_events_and_matches_a_fresh_read(queue: Queue) -> None:
    """Every operation changes the folded state as documented, and a fresh fold of the file agrees."""
    assert queue.add(make_task("a", priority=1), file="tasks/a.md", digest="d1")
    assert queue.add(make_task("b"), file="tasks/b.md", digest="d2")
    claim = queue.claim("w1", lease_s=60)
    assert claim is not None and (claim.task_id, claim.attempt) == ("a", 1)
    assert queue.states["a"].status == TaskStatus.RUNNING and queue.states["a"].worker == "w1"
    queue.finish("a", 1, {"status": "finished", "cost_usd": 0.25, "pr_url": "https://x/pr/1"})
    state = queue.states["a"]
    assert (state.status, state.cost_usd, state.pr_url, state.lease_until) == (
        TaskStatus.FINISHED,
        0.25,
        "https://x/pr/1",
        None,
    )
    queue.cancel("b")
    assert queue.states["b"].status == TaskStatus.CANCELLED
    assert reread(queue) == folded(queue)
    assert [json.loads(line)["type"] for line in lines(queue)] == [
        "queued",
        "queued",
        "claimed",
        "finished",
        "cancelled",
    ]


def test_add_is_idempotent_and_redefines_only_waiting_tasks(queue: Queue) -> None:
    """Same digest: no event; edited file while queued: re-defined; once started or ended: never."""
    assert queue.add(make_task("a", title="one"), digest="d1")
    assert not queue.add(make_task("a", title="one"), digest="d1")
    assert queue.add(make_task("a", title="two"), digest="d2")
    assert queue.states["a"].task.title == "two"
    claim = queue.claim("w", lease_s=60)
    assert claim is not None
    assert not queue.add(make_task("a", title="three"), digest="d3")  # running
    queue.finish("a", claim.attempt, {"status": "finished"})
    assert not queue.add(make_task("a", title="three"), digest="d3")  # finished: edits do not re-run it
    assert queue.states["a"].task.title == "two" and queue.states["a"].status == TaskStatus.FINISHED


def test_invalid_file_blocks_a_waiting_task_until_fixed(queue: Queue) -> None:
    """A queued task whose file turns invalid is not claimable; the fixed file queues it again."""
    queue.add(make_task("a"), digest="d1")
    queue.mark_invalid("a", "tasks/a.md", "tasks/a.md: field 'kind': bad")
    queue.mark_invalid("a", "tasks/a.md", "tasks/a.md: field 'kind': bad")  # same reason: no new event
    assert queue.states["a"].status == TaskStatus.INVALID and len(lines(queue)) == 2
    assert queue.claim("w", lease_s=60) is None
    assert queue.add(make_task("a"), digest="d1")
    assert queue.states["a"].status == TaskStatus.QUEUED and queue.states["a"].reason == ""


def test_claim_order_priority_then_age_and_dependencies(queue: Queue) -> None:
    """Higher priority first, then first queued; a task waits until its dependencies finished."""
    queue.add(make_task("low"))
    queue.add(make_task("high", priority=5))
    queue.add(make_task("child", priority=9, depends_on=["low"]))
    order = []
    while (claim := queue.claim("w", lease_s=60)) is not None:
        order.append(claim.task_id)
        queue.finish(claim.task_id, claim.attempt, {})
    assert order == ["high", "low", "child"]


def test_failed_dependency_keeps_dependents_waiting(queue: Queue) -> None:
    """A dependent of a task that failed for good is never claimed."""
    queue.add(make_task("base", max_attempts=1))
    queue.add(make_task("child", depends_on=["base"]))
    claim = queue.claim("w", lease_s=60)
    assert claim is not None and queue.fail("base", claim.attempt, "gates red")
    assert queue.claim("w", lease_s=60) is None


def test_lease_expiry_reclaim_and_fencing(queue: Queue, clock: Clock) -> None:
    """An expired lease is re-granted with attempt+1; the old attempt's heartbeat and finish are refused."""
    queue.add(make_task("a"))
    first = queue.claim("w1", lease_s=10)
    assert first is not None and first.attempt == 1
    clock.now += 5
    queue.heartbeat("a", 1, lease_s=10)  # extends to now + 10
    clock.now += 9
    assert queue.claim("w2", lease_s=10) is None  # still leased thanks to the heartbeat
    clock.now += 2
    second = queue.claim("w2", lease_s=10)
    assert second is not None and (second.task_id, second.attempt) == ("a", 2)
    assert queue.states["a"].spent == 0 and queue.states["a"].infra == 1
    with pytest.raises(StaleAttemptError, match="attempt 1 is not live"):
        queue.finish("a", 1, {"status": "late"})
    with pytest.raises(StaleAttemptError):
        queue.heartbeat("a", 1, lease_s=10)
    queue.finish("a", 2, {"status": "finished"})
    finished = [e for e in queue.events("a") if e["type"] == "finished"]
    assert [e["attempt"] for e in finished] == [2]


def test_max_attempts_fails_the_task_with_the_reason(queue: Queue) -> None:
    """Task failures spend attempts; the last one fails the task naming the reason and the count."""
    queue.add(make_task("a", max_attempts=2))
    claim = queue.claim("w", lease_s=60)
    assert claim is not None and not queue.fail("a", claim.attempt, "tests red")
    assert queue.states["a"].status == TaskStatus.QUEUED and queue.states["a"].spent == 1
    claim = queue.claim("w", lease_s=60)
    assert claim is not None and claim.attempt == 2
    assert queue.fail("a", claim.attempt, "tests still red", result={"cost_usd": 0.1})
    state = queue.states["a"]
    assert state.status == TaskStatus.FAILED and state.reason == "tests still red (attempt 2 of 2)"
    assert state.cost_usd == 0.1 and queue.claim("w", lease_s=60) is None


def test_infra_release_backs_off_and_gives_up(queue: Queue, clock: Clock) -> None:
    """An infrastructure release spends no attempt, waits out its back-off, and fails past max_infra."""
    queue.add(make_task("a", max_attempts=1))
    for n_release in (1, 2):
        claim = queue.claim("w", lease_s=60)
        assert claim is not None
        assert not queue.release("a", claim.attempt, "worker died", backoff_s=30)
        assert queue.states["a"].infra == n_release and queue.states["a"].spent == 0
        clock.now += 29
        assert queue.claim("w", lease_s=60) is None  # still backing off
        clock.now += 2
    claim = queue.claim("w", lease_s=60)
    assert claim is not None and claim.attempt == 3
    assert queue.release("a", claim.attempt, "worker died")
    assert queue.states["a"].status == TaskStatus.FAILED
    assert "gave up after 2 infrastructure retries" in queue.states["a"].reason


def test_non_infra_release_returns_the_task(queue: Queue) -> None:
    """A release with infra=False (e.g. Ctrl-C) re-queues without counting an infrastructure failure."""
    queue.add(make_task("a"))
    claim = queue.claim("w", lease_s=60)
    assert claim is not None and not queue.release("a", claim.attempt, "stopped", infra=False)
    assert queue.states["a"].status == TaskStatus.QUEUED and queue.states["a"].infra == 0


def test_expired_leases_past_max_infra_fail(queue: Queue, clock: Clock) -> None:
    """A task whose lease keeps expiring is failed once infrastructure retries run out."""
    queue.add(make_task("a"))
    for _ in range(3):
        assert queue.claim("w", lease_s=1) is not None
        clock.now += 2
    assert queue.claim("w", lease_s=1) is None
    assert queue.states["a"].status == TaskStatus.FAILED
    assert "too many infrastructure failures" in queue.states["a"].reason


def test_cancel_and_requeue(queue: Queue) -> None:
    """Cancel fences the running attempt; requeue resets counters and takes a new definition."""
    queue.add(make_task("a", max_attempts=1))
    claim = queue.claim("w", lease_s=60)
    assert claim is not None
    with pytest.raises(QueueError, match="is running"):
        queue.requeue("a")
    queue.cancel("a")
    with pytest.raises(StaleAttemptError):
        queue.finish("a", claim.attempt, {})
    with pytest.raises(QueueError, match="already cancelled"):
        queue.cancel("a")
    assert queue.claim("w", lease_s=60) is None
    queue.requeue("a", make_task("a", title="again", max_attempts=2), file="tasks/a.md", digest="d9")
    state = queue.states["a"]
    assert (state.status, state.spent, state.task.title, state.digest) == (
        TaskStatus.QUEUED,
        0,
        "again",
        "d9",
    )
    claim = queue.claim("w", lease_s=60)
    assert claim is not None and claim.attempt == 2
    with pytest.raises(QueueError, match="no task 'ghost'"):
        queue.cancel("ghost")


def test_requeue_of_a_never_valid_task_is_refused(queue: Queue) -> None:
    """An id that was only ever invalid has no definition to requeue."""
    queue.mark_invalid("bad", "tasks/bad.md", "tasks/bad.md: no front matter")
    with pytest.raises(QueueError, match="fix its task file"):
        queue.requeue("bad")


def test_torn_last_line_is_ignored_then_repaired(queue: Queue) -> None:
    """A crash mid-append leaves a fragment: readers skip it, the next writer cuts it off first."""
    queue.add(make_task("a"))
    with open(queue.path, "ab") as fh:
        fh.write(b'{"type":"claimed","task":"a","att')
    fresh = Queue(queue.path)
    assert fresh.refresh()["a"].status == TaskStatus.QUEUED and not fresh.corrupt
    fresh.add(make_task("b"))
    raw = queue.path.read_bytes()
    assert raw.endswith(b"\n") and b'"att' not in raw
    assert [json.loads(line)["task"] for line in raw.splitlines()] == ["a", "b"]
    assert set(reread(queue)) == {"a", "b"}


def test_corrupt_middle_line_is_reported_with_its_number(queue: Queue) -> None:
    """A bad line in the middle is kept, reported by line number, and the events around it still count."""
    queue.add(make_task("a"))
    with open(queue.path, "ab") as fh:
        fh.write(b"this is not json\n[1, 2]\n")
    queue.add(make_task("b"))
    fresh = Queue(queue.path)
    assert set(fresh.refresh()) == {"a", "b"}
    assert [(bad.lineno, bad.text) for bad in fresh.corrupt] == [(2, "this is not json"), (3, "[1, 2]")]
    with pytest.raises(QueueCorruptError, match=r"queue\.jsonl:2: not a JSON event"):
        fresh.check()
    with pytest.raises(QueueCorruptError):
        fresh.compact()  # compaction would drop the line: refused
    assert b"this is not json" in queue.path.read_bytes()


def test_compaction_preserves_state_and_keeps_working(queue: Queue, clock: Clock, tmp_path: Path) -> None:
    """compact() rewrites one line per task; the fold is identical and later operations continue."""
    for n in range(6):
        queue.add(make_task(f"t{n}", priority=n % 2, max_attempts=2))
    done = queue.claim("w", lease_s=60)
    assert done is not None
    queue.finish(done.task_id, done.attempt, {"cost_usd": 0.5, "pr_url": "https://x/pr/3"})
    retried = queue.claim("w", lease_s=60)
    assert retried is not None
    queue.fail(retried.task_id, retried.attempt, "red")
    running = queue.claim("w", lease_s=60)
    assert running is not None
    queue.cancel("t4")
    observer = Queue(queue.path)
    observer.refresh()
    before = reread(queue)
    uncompacted = Queue(tmp_path / "copy.jsonl", clock=clock)
    uncompacted.path.write_bytes(queue.path.read_bytes())
    assert queue.compact() == 6 and len(lines(queue)) == 6
    assert reread(queue) == before
    assert folded(observer) == before  # another reader follows the swap
    queue.compact()  # again: a reused inode number must not fool the observer
    queue.heartbeat(running.task_id, running.attempt, lease_s=60)
    queue.finish(running.task_id, running.attempt, {})
    uncompacted.finish(running.task_id, running.attempt, {})
    for _ in range(3):
        got, want = queue.claim("w", lease_s=60), uncompacted.claim("w", lease_s=60)
        assert (
            got is not None
            and want is not None
            and (got.task_id, got.attempt) == (want.task_id, want.attempt)
        )
    assert folded(observer) == reread(queue)


def test_events_and_publish_records(queue: Queue) -> None:
    """events() yields one task's history; publish events move finished <-> unpublished."""
    queue.add(make_task("a"))
    claim = queue.claim("w", lease_s=60)
    assert claim is not None
    queue.finish("a", claim.attempt, {})
    queue.publish_event("a", error="GitHub said 502")
    assert queue.states["a"].status == TaskStatus.UNPUBLISHED and "502" in queue.states["a"].reason
    queue.publish_event("a", pr_url="https://x/pr/9")
    assert queue.states["a"].status == TaskStatus.FINISHED and queue.states["a"].pr_url == "https://x/pr/9"
    assert [e["type"] for e in queue.events("a")] == [
        "queued",
        "claimed",
        "finished",
        "unpublished",
        "published",
    ]


def test_compaction_keeps_first_come_first_served(queue: Queue) -> None:
    """After compaction, a task queued later still runs after older tasks of the same priority."""
    for n in range(3):
        queue.add(make_task(f"old{n}"))
    first = queue.claim("w", lease_s=60)
    assert first is not None and first.task_id == "old0"
    queue.compact()
    queue.add(make_task("new"))
    order = [claim.task_id for claim in iter(lambda: queue.claim("w", lease_s=60), None)]
    assert order == ["old1", "old2", "new"]


def test_write_error_while_compacting_leaves_the_queue(queue: Queue, tmp_path: Path) -> None:
    """A compaction that cannot write its temporary file fails with a QueueError and changes nothing."""
    queue.add(make_task("a"))
    before = queue.path.read_bytes()
    (tmp_path / "queue.jsonl.compact").mkdir()  # opening the temporary file for writing fails
    with pytest.raises(QueueError, match="cannot compact"):
        queue.compact()
    assert queue.path.read_bytes() == before

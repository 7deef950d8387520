"""Task files, round two: branch names git refuses, two tasks on one branch, `add` under a full disk or a
concurrent reader, and task files that are FIFOs, folders, broken or escaping symlinks."""

from __future__ import annotations

import json
import os
import resource
import subprocess
from pathlib import Path

from faults_helpers import Project, Scenario, git, json_events

from agent_runner.core.errors import TaskFileError
from agent_runner.core.task import is_task_file, task_from_fields

# Names after 'agent/': what `git check-ref-format --branch` says about each is what intake must say.
REF_NAMES = [
    "x", "x.lock", "x~1", "@{0}", "/x", "x:y", ".hidden", "x/", "x\x01y", "x\ty", "x y", "x?", "x*", "x[y",
    "x\\y", "x^2", "x.", "a..b", "x.lock/y", "café", "x@y", "@", "x{y}", "x.lockx", "a/b/c", "-x", "x\x7f",
    ".", "lock", "a.b", "x/.y", "x/y.lock", "@{", "x@{y", "HEADS", "head", "x/", "a//b", "x/./y", "…",
]  # fmt: skip
STRICTER_THAN_GIT = ["HEAD", "a/HEAD", "x\x85", "x" * 251]  # git takes these; a task branch may not
ISSUE_NAMES = ["x.lock", "x~1", "@{0}", "/x", "x:y", ".hidden", "x/", "x\x01", "HEAD"]


def _git_accepts(repo: Path, name: str) -> bool:
    out = subprocess.run(["git", "check-ref-format", "--branch", name], cwd=repo, capture_output=True)
    return out.returncode == 0


def _intake_accepts(branch: str) -> bool:
    try:
        task_from_fields({"id": "t", "kind": "change", "branch": branch})
    except TaskFileError as exc:
        assert exc.field == "branch", exc
        return False
    return True


def _listed(project: Project) -> dict[str, dict[str, str]]:
    out = project.cli("list", "--json", timeout=60)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    return {row["id"]: row for row in json.loads(out.stdout)}


def test_branch_names_are_checked_by_gits_rules(project: Project, scenario: Scenario) -> None:
    """Intake takes a task branch exactly when `git check-ref-format --branch` does (HEAD, C1, long parts
    refused too)."""
    differ = {n: _git_accepts(project.root, f"agent/{n}") for n in REF_NAMES}
    differ = {n: ok for n, ok in differ.items() if _intake_accepts(f"agent/{n}") != ok}
    assert not differ, f"intake and git disagree on (name: git's answer): {differ}"
    assert all(_git_accepts(project.root, f"agent/{n}") for n in STRICTER_THAN_GIT)
    assert not any(_intake_accepts(f"agent/{n}") for n in STRICTER_THAN_GIT)
    n_refused = sum(not _intake_accepts(f"agent/{n}") for n in REF_NAMES + STRICTER_THAN_GIT)
    scenario.outcome = f"{len(REF_NAMES)} names agree with git; {n_refused} refused"


def test_bad_branch_is_a_task_file_error_naming_the_field(project: Project, scenario: Scenario) -> None:
    """Each branch name git refuses makes its file invalid at intake (field 'branch'); a valid task stays."""
    project.task("good", "scripted:none", branch="agent/good-one")
    for i, name in enumerate(ISSUE_NAMES):
        project.task(f"bad-{i}", "scripted:none", branch=f"agent/{name}")
    rows = _listed(project)
    assert rows["good"]["status"] == "queued", rows["good"]
    for i in range(len(ISSUE_NAMES)):
        row = rows[f"bad-{i}"]
        assert row["status"] == "invalid" and f"bad-{i}.md: field 'branch'" in row["reason"], row
        assert "git accepts" in row["reason"], row
    scenario.outcome = f"{len(ISSUE_NAMES)} bad branch names invalid at intake, the valid task queued"


def test_two_tasks_on_one_branch_is_an_error_naming_both_files(project: Project, scenario: Scenario) -> None:
    """Only the first of two tasks on one branch runs; the other is invalid naming both files. A branch nested
    in another task's branch clashes too; a task that builds on the branch (base = branch) may share it."""
    project.task("a", project.edit_script("a", "a.py", "a = 1\n"), branch="agent/shared")
    project.task("b", project.edit_script("b", "b.py", "b = 1\n"), branch="agent/shared")
    project.task("c", project.edit_script("c", "c.py", "c = 1\n"))
    project.task("d", project.edit_script("d", "d.py", "d = 1\n"), branch="agent/c/nested")
    plan = {row["task"]: row for row in json.loads(project.cli("run", "--dry-run", "--json").stdout)}
    assert [plan[t]["note"].startswith("invalid") for t in "abcd"] == [False, True, False, True], (
        plan
    )  # as run does
    out = project.cli("run", "--json", timeout=120)
    events = json_events(out.stdout)
    invalid = {e["task"]: str(e.get("message", "")) for e in events if e.get("event") == "invalid"}
    finished = sorted(e["task"] for e in events if e.get("event") == "finished")
    assert finished == ["a", "c"], out.stdout[-3000:]
    assert set(invalid) == {"b", "d"}, invalid
    assert "b.md: field 'branch'" in invalid["b"] and "a.md" in invalid["b"], invalid["b"]
    assert "d.md: field 'branch'" in invalid["d"] and "c.md" in invalid["d"], invalid["d"]
    tree = git(project.root, "ls-tree", "--name-only", "agent/shared").split()
    assert "a.py" in tree and "b.py" not in tree, tree
    project.task("0-late", "scripted:none", branch="agent/shared")  # sorts first; a keeps its branch
    project.task("fix", "scripted:none", branch="agent/shared", base="agent/shared")
    rows = _listed(project)
    late = rows["0-late"]
    assert late["status"] == "invalid" and "the branch of tasks/a.md" in late["reason"], late
    assert rows["fix"]["status"] == "queued", rows["fix"]
    (project.tasks / "a.md").unlink()  # the queue still knows a finished on agent/shared
    late = _listed(project)["0-late"]
    assert "the branch of task a (finished) in the queue" in late["reason"], late
    scenario.outcome = "a and c finished; b, d and a late file invalid naming the holder; a fix task queued"


def _limit_file_size(n_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, n_bytes))  # writes past it fail, as on a full disk


def test_add_on_a_full_disk_leaves_no_task_file(project: Project, scenario: Scenario) -> None:
    """`add` whose write fails (the file size limit stands in for a full disk) leaves no file, queues
    nothing, says why; the same `add` works once there is room."""
    args = ("add", "change", "--id", "full", "-m", "Write a long instruction. " * 20)
    out = project.cli(*args, preexec_fn=lambda: _limit_file_size(64))
    assert out.returncode == 1 and "cannot be written" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and "full.md" in out.stderr, out.stderr
    assert sorted(p.name for p in project.tasks.iterdir() if p.name != "queue.jsonl") == []
    assert "full" not in _listed(project)
    assert project.cli(*args).returncode == 0
    assert _listed(project)["full"]["status"] == "queued"
    scenario.outcome = "failed write left tasks/ empty and the queue untouched; the retry queued the task"


def test_a_reader_never_sees_a_partial_task_file_from_add(project: Project, scenario: Scenario) -> None:
    """While `add` runs, the task file is absent or whole (read back-to-back); the queue gets one `queued`."""
    seen: set[int] = set()
    n_reads = 0
    target = project.tasks / "watched.md"
    argv = project.argv("add", "change", "--id", "watched", "-m", "Do it.")
    proc = subprocess.Popen(argv, cwd=project.root, stderr=subprocess.PIPE, text=True)
    while proc.poll() is None:
        try:
            seen.add(len(target.read_bytes()))
            n_reads += 1
        except FileNotFoundError:
            continue
    assert proc.wait() == 0, proc.stderr.read() if proc.stderr else ""
    full = len(target.read_bytes())
    assert seen <= {full}, f"a reader saw {sorted(seen)} bytes of {full}"
    assert [e["type"] for e in project.events() if e.get("task") == "watched"] == ["queued"]
    stray = [p.name for p in project.tasks.iterdir() if p.name.startswith(".")]
    assert not stray and not is_task_file(Path(".watched.md.123.abcd.tmp"))
    scenario.outcome = f"{n_reads} reads of the file during add, all of the whole file ({full} bytes)"


def test_special_task_files_are_reported_and_never_block(
    project: Project, scenario: Scenario, tmp_path: Path
) -> None:
    """A FIFO, a folder named *.md, dangling and looping symlinks, links to /dev/zero and out of the repo:
    each is an error saying why it cannot be read; nothing blocks, the outside file is never read."""
    outside = tmp_path / "secret.md"
    outside.write_text("---\nkind: change\ntitle: SECRET-OUTSIDE\n---\nleak\n", encoding="utf-8")
    os.mkfifo(project.tasks / "fifo.md")
    (project.tasks / "folder.md").mkdir()
    (project.tasks / "dangling.md").symlink_to(project.tasks / "nowhere.md")
    (project.tasks / "loop.md").symlink_to(project.tasks / "loop2.md")
    (project.tasks / "loop2.md").symlink_to(project.tasks / "loop.md")
    (project.tasks / "zero.md").symlink_to("/dev/zero")
    (project.tasks / "outside.md").symlink_to(outside)
    (project.root / "shared.md").write_text("---\nkind: change\n---\nInside the repo.\n", encoding="utf-8")
    (project.tasks / "inside.md").symlink_to(project.root / "shared.md")
    project.task("plain", "scripted:none")
    expected = {
        "fifo": "FIFO", "folder": "directory", "dangling": "does not exist", "loop": "loop",
        "loop2": "loop", "zero": "outside the repo", "outside": "outside the repo",
    }  # fmt: skip
    rows = _listed(project)
    for name, why in expected.items():
        reason = rows[name]["reason"] if name in rows else "(not listed)"
        assert f"{name}.md: cannot be read: " in reason and why in reason, (name, reason)
    assert rows["plain"]["status"] == rows["inside"]["status"] == "queued", rows
    assert "SECRET-OUTSIDE" not in project.queue_file.read_text(encoding="utf-8")
    scenario.outcome = (
        f"{len(expected)} special files reported as unreadable; the plain and linked-in tasks queued"
    )

"""Task files: every field, every error, with messages that name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runner.core.errors import TaskFileError
from agent_runner.core.task import (
    MAX_TASK_FILE_BYTES,
    Limits,
    Task,
    TaskKind,
    TaskSet,
    check_dependencies,
    load_task_dir,
    load_task_file,
    render_task_file,
)

REPO = Path(__file__).resolve().parents[2]

FULL = """\
---
id: full-task
kind: write-tests
title: Cover the parser
paths: [src/parser.py, src/lexer.py]
repo: https://example.com/acme/app.git
base: develop
branch: agent/custom-branch
model: openai:gpt-test
limits: {steps: 12, cost_usd: 0.25, minutes: 5, tokens: 90000}
pr: true
labels: [tests, bot]
machine: gpu-box
priority: 7
depends_on: [other-task]
max_attempts: 4
allow: [noqa]
allow_partial: true
format: true
min_coverage_gain: 2.5
target_coverage: 80
reflection_rounds: 1
sandbox: bwrap
network: true
target_pr: 12
---
Cover every error branch.

Second paragraph.
"""


def write(folder: Path, name: str, text: str | bytes) -> Path:
    """Write a task file and return its path."""
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def error_of(path: Path) -> TaskFileError:
    """Return the TaskFileError that loading `path` raises."""
    with pytest.raises(TaskFileError) as info:
        load_task_file(path)
    return info.value


def test_every_field_is_read(tmp_path: Path) -> None:
    """A file using every field yields a Task with each value, the body as instructions."""
    task = load_task_file(write(tmp_path, "full-task.md", FULL))
    assert task.id == "full-task" and task.kind == TaskKind.WRITE_TESTS and task.title == "Cover the parser"
    assert task.paths == ["src/parser.py", "src/lexer.py"] and task.repo.endswith("app.git")
    assert (task.base, task.branch_name, task.model) == ("develop", "agent/custom-branch", "openai:gpt-test")
    assert task.limits == Limits(steps=12, cost_usd=0.25, minutes=5, tokens=90000)
    assert (task.pr, task.labels, task.machine, task.priority) == (True, ["tests", "bot"], "gpu-box", 7)
    assert (task.depends_on, task.max_attempts, task.allow) == (["other-task"], 4, ["noqa"])
    assert task.allow_partial and task.format and task.network
    assert (task.min_coverage_gain, task.target_coverage, task.reflection_rounds) == (2.5, 80, 1)
    assert (task.sandbox, task.target_pr) == ("bwrap", 12)
    assert task.instructions == "Cover every error branch.\n\nSecond paragraph."


def test_defaults(tmp_path: Path) -> None:
    """Only `kind` is required: the id is the file stem and the rest take documented defaults."""
    task = load_task_file(write(tmp_path, "tidy-up.md", "---\nkind: fix-lint\n---\n"))
    assert (task.id, task.title, task.instructions, task.paths) == ("tidy-up", "", "", [])
    assert (task.pr, task.priority, task.max_attempts, task.branch_name) == ("draft", 0, 3, "agent/tidy-up")
    assert task.repo is None and task.base is None and task.model is None and task.limits == Limits()
    assert task.display_title == "tidy-up"


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_yaml_task_file_takes_instructions_field(tmp_path: Path, suffix: str) -> None:
    """A .yaml/.yml task file is front matter only, with the instructions in `instructions`."""
    text = "kind: change\ntitle: Swap\ninstructions: |\n  Replace os.path.\n"
    task = load_task_file(write(tmp_path, f"swap{suffix}", text))
    assert (task.id, task.instructions.strip(), task.title) == ("swap", "Replace os.path.", "Swap")


def test_render_round_trips(tmp_path: Path) -> None:
    """render_task_file writes a file that loads back as the same task."""
    task = load_task_file(write(tmp_path, "full-task.md", FULL))
    again = load_task_file(write(tmp_path / "..", "full-task.md", render_task_file(task)))
    assert again == task


@pytest.mark.parametrize(
    ("name", "text", "field", "needle"),
    [
        (
            "a.md",
            "---\nkind: change\ncolour: red\n---\n",
            "colour",
            "unknown field; allowed fields are: allow",
        ),
        (
            "a.md",
            "---\nkind: change\nlimits: {stepz: 3}\n---\n",
            "limits.stepz",
            "allowed fields are: attempt_minutes, cost_usd",
        ),
        ("a.md", "---\nkind: nope\n---\n", "kind", "'fix-lint', 'write-tests', 'change' or 'review'"),
        ("a.md", "---\ntitle: no kind\n---\n", "kind", "is required"),
        ("a.md", "---\nkind: change\npriority: high\n---\n", "priority", "valid integer"),
        ("a.md", "---\nkind: change\npaths: src/\n---\n", "paths", "valid list"),
        ("a.md", "---\nkind: change\npr: maybe\n---\n", "pr", "got 'maybe'"),
        ("a.md", "---\nkind: change\nmax_attempts: 0\n---\n", "max_attempts", "greater than or equal to 1"),
        ("a.md", "---\nkind: change\nlimits: {cost_usd: -1}\n---\n", "limits.cost_usd", "greater than 0"),
        ("a.md", "---\nkind: change\nid: Bad_Id\n---\n", "id", "'Bad_Id' is not a valid id"),
        ("Bad Name.md", "---\nkind: change\n---\n", "id", "'Bad Name' is not a valid id"),
        ("a.md", "---\nkind: change\nbranch: main\n---\n", "branch", "must start with 'agent/'"),
        ("a.md", "---\nkind: change\ndepends_on: [Not OK]\n---\n", "depends_on", "not a valid id"),
        ("a.md", "---\nkind: change\ninstructions: hi\n---\n", "instructions", "Markdown body"),
        ("a.yaml", "kind: change\nsandbox: docker\n", "sandbox", "'auto', 'bwrap' or 'none'"),
    ],
)
def test_field_errors_name_file_and_field(
    tmp_path: Path, name: str, text: str, field: str, needle: str
) -> None:
    """Each invalid field gives a TaskFileError naming the file, the field and what is allowed."""
    path = write(tmp_path, name, text)
    err = error_of(path)
    assert err.field == field and err.path == str(path)
    assert str(err).startswith(f"{path}: field '{field}': ") and needle in str(err)


@pytest.mark.parametrize(
    ("name", "data", "needle"),
    [
        ("a.md", b"---\nkind: [unclosed\n---\n", "invalid YAML"),
        ("a.md", b"just text, no front matter\n", "has no YAML front matter"),
        ("a.md", b"---\nkind: change\nno closing fence\n", "has no YAML front matter"),
        ("a.md", b"---\n- a list\n---\n", "must be a YAML mapping"),
        ("a.yml", b"just a string", "must be a YAML mapping"),
        ("a.md", b"---\nkind: change\n---\n\x00\x01binary", "is a binary file"),
        ("a.md", b"---\nkind: change\n---\n\xff\xfe caf\xe9", "is not valid UTF-8 (byte 21)"),
        ("a.md", b"---\nkind: change\n---\n" + b"x" * MAX_TASK_FILE_BYTES, "task files are limited to"),
    ],
)
def test_file_errors_name_the_file(tmp_path: Path, name: str, data: bytes, needle: str) -> None:
    """Unreadable files (bad YAML, no front matter, binary, bad UTF-8, huge) are errors naming the file."""
    path = write(tmp_path, name, data)
    err = error_of(path)
    assert str(err).startswith(f"{path}: ") and needle in str(err)


def test_folder_collects_invalid_files_beside_valid_ones(tmp_path: Path) -> None:
    """load_task_dir never raises: broken files become InvalidTask records, the rest load."""
    write(tmp_path, "good.md", "---\nkind: change\n---\nDo it.\n")
    write(tmp_path, "broken.md", "---\nkind: nope\n---\n")
    write(tmp_path, "_draft.md", "not a task")
    write(tmp_path, "README.md", "# About these tasks\n")
    write(tmp_path, "notes.txt", "ignored")
    found = load_task_dir(tmp_path)
    assert list(found.tasks) == ["good"] and found.files["good"] == str(tmp_path / "good.md")
    assert [(bad.id, Path(bad.path).name) for bad in found.invalid] == [("broken", "broken.md")]
    assert "field 'kind'" in found.invalid[0].reason


def test_duplicate_id_names_both_files(tmp_path: Path) -> None:
    """Two files with one id: the first is kept, the second is invalid and names the first."""
    write(tmp_path, "a.md", "---\nid: same\nkind: change\n---\n")
    write(tmp_path, "b.md", "---\nid: same\nkind: review\n---\n")
    found = load_task_dir(tmp_path)
    assert found.tasks["same"].kind == TaskKind.CHANGE
    (bad,) = found.invalid
    assert bad.reason.startswith(
        f"{tmp_path / 'b.md'}: field 'id': 'same' is already used by {tmp_path / 'a.md'}"
    )


def test_missing_dependency_is_invalid_unless_known(tmp_path: Path) -> None:
    """A dependency on an id that exists nowhere invalidates the task; ids already queued are fine."""
    write(tmp_path, "a.md", "---\nkind: change\ndepends_on: [ghost]\n---\n")
    write(tmp_path, "b.md", "---\nkind: change\ndepends_on: [a]\n---\n")
    found = load_task_dir(tmp_path)
    assert found.tasks == {} and {bad.id for bad in found.invalid} == {"a", "b"}
    reason = next(bad.reason for bad in found.invalid if bad.id == "a")
    assert reason.startswith(f"{tmp_path / 'a.md'}: field 'depends_on': unknown or invalid task(s) ghost")
    assert set(load_task_dir(tmp_path, known={"ghost"}).tasks) == {"a", "b"}


def test_cycles_and_their_dependents_are_invalid(tmp_path: Path) -> None:
    """Tasks in a cycle (overlapping ones and self-loops too) and tasks waiting on them are invalid."""
    write(tmp_path, "a.md", "---\nkind: change\ndepends_on: [b]\n---\n")
    write(tmp_path, "b.md", "---\nkind: change\ndepends_on: [a, c]\n---\n")
    write(tmp_path, "c.md", "---\nkind: change\ndepends_on: [b]\n---\n")
    write(tmp_path, "d.md", "---\nkind: change\ndepends_on: [d]\n---\n")
    write(tmp_path, "e.md", "---\nkind: change\ndepends_on: [a]\n---\n")
    write(tmp_path, "f.md", "---\nkind: change\n---\n")
    found = load_task_dir(tmp_path)
    assert list(found.tasks) == ["f"]
    reasons = {bad.id: bad.reason for bad in found.invalid}
    assert "dependency cycle a -> b -> a" in reasons["a"] and "dependency cycle d -> d" in reasons["d"]
    assert "field 'depends_on': unknown or invalid task(s) a" in reasons["e"]


def test_long_dependency_chain_does_not_overflow(tmp_path: Path) -> None:
    """A chain of 3,000 dependent tasks loads (the cycle search is not recursive)."""
    tasks = {
        f"t{i}": Task(id=f"t{i}", kind=TaskKind.CHANGE, depends_on=[f"t{i - 1}"] if i else [])
        for i in range(3000)
    }
    found = TaskSet(tasks=dict(tasks), files={k: k for k in tasks})
    check_dependencies(found)
    assert len(found.tasks) == 3000 and not found.invalid


def test_repo_example_tasks_are_valid() -> None:
    """The example task files shipped in tasks/ (one per kind) all load without errors."""
    found = load_task_dir(REPO / "tasks")
    assert not found.invalid, found.invalid
    examples = [task for task in found.tasks.values() if task.id.startswith("example-")]
    assert {task.kind for task in examples} == set(TaskKind)


def test_init_example_task_is_valid(tmp_path: Path) -> None:
    """The example that `init` writes is a valid task file (queued only once copied to a real name)."""
    from agent_runner.queue.scaffold import EXAMPLE_TASK

    assert load_task_file(write(tmp_path, "example.md", EXAMPLE_TASK)).kind == TaskKind.FIX_LINT


def test_windows_line_endings_and_bom(tmp_path: Path) -> None:
    """CRLF line endings and a UTF-8 byte-order mark (as Windows editors write) are accepted."""
    text = "\ufeff---\r\nkind: change\r\ntitle: Win\r\n---\r\nDo it.\r\n"
    task = load_task_file(write(tmp_path, "win.md", text.encode("utf-8")))
    assert (task.title, task.instructions) == ("Win", "Do it.")

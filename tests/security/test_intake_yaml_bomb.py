"""A small task file cannot expand into a large task: YAML aliases are refused, the task's JSON is bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runner.core.errors import TaskFileError
from agent_runner.core.task import (
    MAX_TASK_FILE_BYTES,
    MAX_TASK_JSON_BYTES,
    load_task_dir,
    load_task_file,
    task_from_fields,
)


def bomb() -> str:
    """Return a 208 KB task file whose labels expand to 400 MB: 2,000 aliases of a 200,000-char string."""
    refs = ", ".join(["*a"] * 2000)
    return f"---\nkind: change\ntitle: &a {'x' * 200_000}\nlabels: [{refs}]\n---\nBoom.\n"


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    """The alias bomb fits the size limit but is a task-file error naming the file (no task queued)."""
    path = tmp_path / "bomb.md"
    path.write_text(bomb(), encoding="utf-8")
    assert path.stat().st_size < MAX_TASK_FILE_BYTES
    with pytest.raises(TaskFileError) as info:
        load_task_file(path)
    assert info.value.path == str(path) and "alias" in str(info.value)
    found = load_task_dir(tmp_path)
    assert found.tasks == {} and [bad.id for bad in found.invalid] == ["bomb"]


@pytest.mark.parametrize(
    "front",
    [
        "kind: change\nlabels: [&l one, *l]",
        "kind: change\nlimits: &lim {steps: 3}\nlabels: [*lim]",
        "base: &b {kind: change}\n<<: *b",
        "kind: change\ntitle: &t anchored",
    ],
)
def test_any_anchor_or_alias_is_refused(tmp_path: Path, front: str) -> None:
    """Anchors and aliases (merge keys too) are refused, not expanded: the file must spell values out."""
    path = tmp_path / "a.yaml"
    path.write_text(front + "\n", encoding="utf-8")
    with pytest.raises(TaskFileError) as info:
        load_task_file(path)
    assert str(info.value).startswith(f"{path}: ") and "anchors and aliases" in str(info.value)


def test_a_big_task_never_reaches_the_queue() -> None:
    """A task whose JSON is over MAX_TASK_JSON_BYTES is a task-file error naming its source."""
    fields = {"id": "big", "kind": "change", "labels": ["x" * 1000] * (MAX_TASK_JSON_BYTES // 1000)}
    with pytest.raises(TaskFileError) as info:
        task_from_fields(fields, source="tasks/big.md")
    assert info.value.path == "tasks/big.md" and f"{MAX_TASK_JSON_BYTES} bytes" in str(info.value)
    assert task_from_fields({**fields, "labels": ["x" * 1000] * 100}, source="ok.md").id == "big"


def test_control_characters_cannot_inflate_the_task(tmp_path: Path) -> None:
    """A body of raw control characters (6 JSON bytes each) within the file limit is still refused."""
    path = tmp_path / "ctl.md"
    path.write_bytes(b"---\nkind: change\n---\n" + b"\x01" * (MAX_TASK_FILE_BYTES - 100))
    with pytest.raises(TaskFileError, match="as JSON"):
        load_task_file(path)

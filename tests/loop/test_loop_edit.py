"""The edit tool: exact-once replacement, numbered views, and paths confined to the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent_runner.core.errors import ToolError
from agent_runner.tools.edit import EditTool


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    root.mkdir()
    (root / "mod.py").write_text("def f():\n    return 1\n\n\ndef g():\n    return 1\n")
    (tmp_path / "outside.txt").write_text("secret outside\n")
    return root


def test_create_then_view_numbered(checkout: Path) -> None:
    """create writes the file (making parents) and view shows it with line numbers."""
    tool = EditTool(checkout)
    assert "Created pkg/new.py" in tool.run(
        {"command": "create", "path": "pkg/new.py", "file_text": "a = 1\nb = 2\n"}
    )
    view = tool.run({"command": "view", "path": "pkg/new.py"})
    assert view == "     1\ta = 1\n     2\tb = 2"


def test_view_range(checkout: Path) -> None:
    """view_range shows only the asked lines, -1 meaning the last line."""
    view = EditTool(checkout).run({"command": "view", "path": "mod.py", "view_range": [5, -1]})
    assert view == "     5\tdef g():\n     6\t    return 1"


def test_str_replace_unique_shows_snippet(checkout: Path) -> None:
    """A unique old_str is replaced and the answer shows the changed region with line numbers."""
    out = EditTool(checkout).run(
        {
            "command": "str_replace",
            "path": "mod.py",
            "old_str": "def g():\n    return 1",
            "new_str": "def g():\n    return 2",
        }
    )
    assert (checkout / "mod.py").read_text().endswith("def g():\n    return 2\n")
    assert "     6\t    return 2" in out and "     5\tdef g():" in out


def test_str_replace_refuses_ambiguous_old_str(checkout: Path) -> None:
    """An old_str occurring twice is refused with the count and lines, and the file is untouched."""
    before = (checkout / "mod.py").read_text()
    with pytest.raises(ToolError, match=r"occurs 2 times .*lines 2, 6"):
        EditTool(checkout).run(
            {"command": "str_replace", "path": "mod.py", "old_str": "return 1", "new_str": "x"}
        )
    assert (checkout / "mod.py").read_text() == before


def test_str_replace_refuses_missing_old_str(checkout: Path) -> None:
    """An old_str that does not occur is refused."""
    with pytest.raises(ToolError, match="not found"):
        EditTool(checkout).run(
            {"command": "str_replace", "path": "mod.py", "old_str": "return 3", "new_str": "x"}
        )


def test_str_replace_keeps_crlf(checkout: Path) -> None:
    """Line endings other than the replaced text are kept byte for byte."""
    (checkout / "win.txt").write_bytes(b"one\r\ntwo\r\n")
    EditTool(checkout).run({"command": "str_replace", "path": "win.txt", "old_str": "two", "new_str": "2"})
    assert (checkout / "win.txt").read_bytes() == b"one\r\n2\r\n"


@pytest.mark.parametrize(
    ("line", "expected"),
    [(0, "# top\ndef f():\n"), (6, "    return 1\n# top\n")],
)
def test_insert(checkout: Path, line: int, expected: str) -> None:
    """insert puts new_str after the given line (0 = top, last line = end)."""
    EditTool(checkout).run({"command": "insert", "path": "mod.py", "insert_line": line, "new_str": "# top"})
    assert expected in (checkout / "mod.py").read_text()


def test_insert_after_last_line_without_newline(checkout: Path) -> None:
    """Inserting after a final line that lacks a newline does not glue the lines together."""
    (checkout / "x.txt").write_text("a\nb")
    EditTool(checkout).run({"command": "insert", "path": "x.txt", "insert_line": 2, "new_str": "c"})
    assert (checkout / "x.txt").read_text() == "a\nb\nc\n"


def test_insert_line_out_of_range(checkout: Path) -> None:
    """An insert_line past the end is refused."""
    with pytest.raises(ToolError, match="from 0 to 6"):
        EditTool(checkout).run({"command": "insert", "path": "mod.py", "insert_line": 9, "new_str": "x"})


def test_view_directory_lists_two_levels_without_hidden(checkout: Path) -> None:
    """Viewing a directory lists files two levels deep and leaves out .git and other hidden entries."""
    (checkout / ".git").mkdir()
    (checkout / "pkg" / "sub" / "deep").mkdir(parents=True)
    (checkout / "pkg" / "a.py").write_text("")
    (checkout / "pkg" / "sub" / "deep" / "z.py").write_text("")
    out = EditTool(checkout).run({"command": "view", "path": "."})
    assert "mod.py" in out and "pkg/a.py" in out and "pkg/sub/" in out
    assert ".git" not in out and "z.py" not in out


@pytest.mark.parametrize("path", ["../outside.txt", "pkg/../../outside.txt", "OUTSIDE_ABS", "/etc/passwd"])
@pytest.mark.parametrize("command", ["view", "create", "str_replace"])
def test_paths_outside_checkout_refused(checkout: Path, path: str, command: str) -> None:
    """Relative escapes and absolute paths outside the checkout are refused for every command."""
    path = str(checkout.parent / "outside.txt") if path == "OUTSIDE_ABS" else path
    args = {"command": command, "path": path, "file_text": "x", "old_str": "secret", "new_str": "x"}
    with pytest.raises(ToolError, match="outside the checkout"):
        EditTool(checkout).run(args)
    assert (checkout.parent / "outside.txt").read_text() == "secret outside\n"


def test_absolute_path_inside_checkout_allowed(checkout: Path) -> None:
    """An absolute path that lies inside the checkout works."""
    assert "def f" in EditTool(checkout).run({"command": "view", "path": str(checkout / "mod.py")})


@pytest.mark.parametrize("link_target", ["file", "dir"])
def test_symlink_escaping_checkout_refused(checkout: Path, link_target: str) -> None:
    """A symlink inside the checkout that resolves outside it cannot be read or written through."""
    if link_target == "file":
        os.symlink(checkout.parent / "outside.txt", checkout / "link.txt")
        path = "link.txt"
    else:
        os.symlink(checkout.parent, checkout / "linkdir")
        path = "linkdir/outside.txt"
    tool = EditTool(checkout)
    for args in ({"command": "view"}, {"command": "create", "file_text": "pwned"}):
        with pytest.raises(ToolError, match="outside the checkout"):
            tool.run({**args, "path": path})
    assert (checkout.parent / "outside.txt").read_text() == "secret outside\n"


def test_writes_into_git_dir_refused(checkout: Path) -> None:
    """The agent cannot plant files in .git (hooks), though it may view them."""
    (checkout / ".git" / "hooks").mkdir(parents=True)
    with pytest.raises(ToolError, match=r"\.git"):
        EditTool(checkout).run(
            {"command": "create", "path": ".git/hooks/pre-commit", "file_text": "#!/bin/sh\n"}
        )


@pytest.mark.parametrize(
    "args",
    [
        {"command": "delete", "path": "mod.py"},
        {"command": "view"},
        {"command": "view", "path": "missing.py"},
        {"command": "create", "path": "x.py"},
        {"command": "str_replace", "path": "mod.py", "old_str": ""},
        {"command": "view", "path": "mod.py", "view_range": [9, 12]},
    ],
)
def test_invalid_requests_are_tool_errors(checkout: Path, args: dict[str, object]) -> None:
    """Unknown commands, missing arguments and impossible ranges come back as ToolError."""
    with pytest.raises(ToolError):
        EditTool(checkout).run(args)


def test_binary_file_refused(checkout: Path) -> None:
    """Binary files are not shown as text."""
    (checkout / "blob.bin").write_bytes(b"\x00\x01\x02")
    with pytest.raises(ToolError, match="binary"):
        EditTool(checkout).run({"command": "view", "path": "blob.bin"})

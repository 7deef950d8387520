"""The `edit` tool: view, create, str_replace and insert on files confined to the checkout."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from agent_runner.core.errors import ToolError
from agent_runner.core.messages import ToolSpec
from agent_runner.tools.shell import cap_output

SNIPPET_LINES = 4
MAX_LISTING = 300
MAX_FILE_BYTES = 16 * 1024 * 1024  # the largest file view, str_replace and insert load

EDIT_SPEC = ToolSpec(
    name="edit",
    description=(
        "View and edit files in the repository checkout. Paths are relative to the checkout root.\n"
        "- view: show a file with line numbers (view_range [start, end], end -1 for the last line), "
        "or list a directory two levels deep.\n"
        "- create: write file_text to path (parents are created; an existing file is overwritten).\n"
        "- str_replace: replace old_str with new_str; old_str must occur exactly once in the file, "
        "whitespace included, so copy it from a view and add surrounding lines to make it unique.\n"
        "- insert: insert new_str after line insert_line (0 inserts at the top)."
    ),
    parameters={
        "type": "object",
        "properties": {
            "command": {"type": "string", "enum": ["view", "create", "str_replace", "insert"]},
            "path": {"type": "string", "description": "File or directory, relative to the checkout."},
            "file_text": {"type": "string", "description": "create: the whole content of the new file."},
            "old_str": {"type": "string", "description": "str_replace: the exact text to replace."},
            "new_str": {"type": "string", "description": "str_replace: the replacement; insert: the text."},
            "insert_line": {"type": "integer", "description": "insert: the line after which to insert."},
            "view_range": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "view: [start, end] line numbers, 1-based, end -1 for the last line.",
            },
        },
        "required": ["command", "path"],
    },
)


def numbered(lines: list[str], first: int) -> str:
    """Return `lines` with right-aligned line numbers starting at `first`."""
    return "\n".join(f"{n:6}\t{line}" for n, line in enumerate(lines, start=first))


class EditTool:
    """A file editor whose every path must resolve inside the checkout."""

    spec = EDIT_SPEC

    def __init__(self, checkout: Path, *, max_chars: int = 10_000) -> None:
        self.root = checkout.resolve()
        self.max_chars = max_chars

    def run(self, arguments: dict[str, Any]) -> str:
        """Dispatch one edit command and return its answer for the model."""
        command = arguments.get("command")
        handler = {
            "view": self.view,
            "create": self.create,
            "str_replace": self.str_replace,
            "insert": self.insert,
        }.get(str(command))
        if handler is None:
            raise ToolError(f"unknown edit command {command!r}; use view, create, str_replace or insert")
        return handler(self.resolve(arguments.get("path"), write=command != "view"), arguments)

    def resolve(self, raw: Any, *, write: bool = False) -> Path:
        """Return the real path for `raw`, refusing anything that lands outside the checkout."""
        if not isinstance(raw, str) or not raw.strip():
            raise ToolError("edit needs a 'path' (relative to the checkout root)")
        candidate = Path(raw) if Path(raw).is_absolute() else self.root / raw
        path = candidate.resolve()  # follows symlinks, so a link pointing outside is caught here
        if not path.is_relative_to(self.root):
            raise ToolError(f"{raw} is outside the checkout ({self.root}); only files inside it can be used")
        if write and ".git" in path.relative_to(self.root).parts:
            raise ToolError(f"{raw} is inside .git; the runner owns the repository metadata")
        return path

    def view(self, path: Path, args: dict[str, Any]) -> str:
        """Return a numbered file view or a directory listing."""
        if path.is_dir():
            return self._listing(path)
        lines = _lines(self._read(path))
        start, end = self._range(args.get("view_range"), len(lines))
        return cap_output(numbered(lines[start - 1 : end], start), self.max_chars)

    def create(self, path: Path, args: dict[str, Any]) -> str:
        """Write `file_text` to `path` and say whether it was new."""
        text = _string(args, "file_text")
        if path.is_dir():
            raise ToolError(f"{self._rel(path)} is a directory")
        existed = path.exists()
        self._write(path, text)
        verb = "Overwrote" if existed else "Created"
        return f"{verb} {self._rel(path)} ({len(text.splitlines())} lines)."

    def str_replace(self, path: Path, args: dict[str, Any]) -> str:
        """Replace the one occurrence of `old_str`; fail when it occurs zero or several times."""
        old, new = _string(args, "old_str"), args.get("new_str") or ""
        if not old:
            raise ToolError("'old_str' must not be empty")
        if not isinstance(new, str):
            raise ToolError("'new_str' must be a string")
        text = self._read(path)
        self._check_unique(path, text, old)
        at = text.index(old)
        self._write(path, text[:at] + new + text[at + len(old) :])
        first = text.count("\n", 0, at) + 1
        return self._snippet(path, first, first + new.count("\n"))

    def insert(self, path: Path, args: dict[str, Any]) -> str:
        """Insert `new_str` after line `insert_line`."""
        new, after = _string(args, "new_str"), args.get("insert_line")
        lines = self._read(path).splitlines(keepends=True)
        if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= len(lines):
            raise ToolError(f"'insert_line' must be an integer from 0 to {len(lines)}, not {after!r}")
        if after and not lines[after - 1].endswith("\n"):
            lines[after - 1] += "\n"
        lines.insert(after, new if new.endswith("\n") else new + "\n")
        self._write(path, "".join(lines))
        return self._snippet(path, after + 1, after + max(new.count("\n"), 1))

    def _check_unique(self, path: Path, text: str, old: str) -> None:
        count = text.count(old)
        if count == 1:
            return
        if count == 0:
            raise ToolError(
                f"old_str was not found in {self._rel(path)}; view the file and copy the text exactly "
                "(whitespace and indentation included)"
            )
        starts, at = [], -1
        while (at := text.find(old, at + 1)) != -1:
            starts.append(str(text.count("\n", 0, at) + 1))
        raise ToolError(
            f"old_str occurs {count} times in {self._rel(path)} (lines {', '.join(starts[:10])}); "
            "include more surrounding lines so it occurs exactly once"
        )

    def _snippet(self, path: Path, first: int, last: int) -> str:
        lines = _lines(self._read(path))
        start = max(first - SNIPPET_LINES, 1)
        end = min(last + SNIPPET_LINES, len(lines))
        shown = numbered(lines[start - 1 : end], start)
        return f"Edited {self._rel(path)}. The changed region now reads:\n{shown}"

    def _range(self, raw: Any, n_lines: int) -> tuple[int, int]:
        if raw is None:
            return 1, n_lines
        if not (isinstance(raw, list) and len(raw) == 2 and all(isinstance(x, int) for x in raw)):
            raise ToolError(f"'view_range' must be two integers [start, end], not {raw!r}")
        start, end = raw
        end = n_lines if end == -1 else end
        if not 1 <= start <= max(n_lines, 1) or end < start:
            raise ToolError(f"view_range {raw} does not fit the file's {n_lines} lines")
        return start, min(end, n_lines)

    def _listing(self, folder: Path) -> str:
        entries = []
        for path in _children(folder):
            entries.append(f"{path.name}/" if path.is_dir() else path.name)
            if path.is_dir() and not path.is_symlink():
                entries.extend(f"{path.name}/{child.name}{'/' * child.is_dir()}" for child in _children(path))
        more = f"\n[... {len(entries) - MAX_LISTING} more entries]" if len(entries) > MAX_LISTING else ""
        head = f"{self._rel(folder)}/ (two levels, hidden entries left out):\n"
        return head + "\n".join(entries[:MAX_LISTING]) + more

    def _read(self, path: Path) -> str:
        """Read a regular file of at most MAX_FILE_BYTES; a FIFO or device is refused, never waited on."""
        fd = self._open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if size > MAX_FILE_BYTES:
                raise ToolError(
                    f"{self._rel(path)} is {size} bytes; the edit tool reads files up to {MAX_FILE_BYTES}"
                )
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
        finally:
            os.close(fd)
        if b"\x00" in data[:8192]:
            raise ToolError(f"{self._rel(path)} is a binary file")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ToolError(f"{self._rel(path)} is not UTF-8 text") from exc

    def _write(self, path: Path, text: str) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ToolError(f"cannot write {self._rel(path)}: {exc.strerror}") from exc
        fd = self._open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))

    def _open(self, path: Path, flags: int) -> int:
        """Open without following a link and without blocking; refuse what is not a regular file."""
        try:
            fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise ToolError(
                f"{self._rel(path)} cannot be opened ({exc.strerror}); it must be a regular file"
            ) from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ToolError(f"{self._rel(path)} is not a regular file")
        return fd

    def _rel(self, path: Path) -> str:
        return str(path.relative_to(self.root)) if path != self.root else "."


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError:
        return []


def _lines(text: str) -> list[str]:
    """Split into lines; a final newline does not make an extra empty line."""
    lines = text.split("\n")
    return lines[:-1] if len(lines) > 1 and lines[-1] == "" else lines


def _string(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str):
        raise ToolError(f"'{key}' (a string) is required for this command")
    return value

"""The agent's work as a diff: the working tree staged with `git add -A`, compared to the base commit.

Gates call `git` through subprocess here (GitPython stays in agent_runner/git.py): they only read the
checkout, apart from staging it and listing runner caches in `info/exclude`.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from agent_runner.errors import GitError

RUNNER_EXCLUDES = (
    "__pycache__/",
    "*.py[cod]",
    ".pytest_cache/",
    ".ruff_cache/",
    ".mypy_cache/",
    ".coverage",
    ".coverage.*",
)
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class Line:
    """One added or removed line with its number in the new (added) or old (removed) file."""

    number: int
    text: str


@dataclass
class FileChange:
    """One changed path: status A/M/D, whether git sees it as binary, and its changed lines."""

    path: str
    status: str
    is_binary: bool = False
    added: list[Line] = field(default_factory=list)
    removed: list[Line] = field(default_factory=list)


@dataclass
class WorkDiff:
    """The staged working tree against the base commit."""

    base: str
    files: dict[str, FileChange] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        """Whether nothing changed."""
        return not self.files

    def paths(self, *statuses: str) -> list[str]:
        """Return the changed paths, optionally only those with one of `statuses`."""
        return [p for p, c in self.files.items() if not statuses or c.status in statuses]


def git(checkout: Path, *args: str, check: bool = True) -> str:
    """Run git in the checkout and return stdout; raise GitError when it fails and `check`."""
    argv = ["git", "-c", "core.quotepath=off", *args]
    proc = subprocess.run(argv, cwd=checkout, capture_output=True, text=True, errors="replace")
    if check and proc.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed in {checkout}: {proc.stderr.strip()}")
    return proc.stdout


def ensure_excludes(checkout: Path) -> None:
    """List runner and Python caches in the checkout's info/exclude so staging never picks them up."""
    exclude = Path(checkout, git(checkout, "rev-parse", "--git-path", "info/exclude").strip())
    text = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
    missing = [p for p in RUNNER_EXCLUDES if p not in text.splitlines()]
    if missing:
        exclude.parent.mkdir(parents=True, exist_ok=True)
        exclude.write_text(text.rstrip("\n") + "\n" + "\n".join(missing) + "\n", encoding="utf-8")


def stage(checkout: Path) -> None:
    """Stage the whole working tree (`git add -A`)."""
    ensure_excludes(checkout)
    git(checkout, "add", "-A")


def tree_id(checkout: Path) -> str:
    """Stage the working tree and return the id of its tree: equal ids mean equal content."""
    stage(checkout)
    return git(checkout, "write-tree").strip()


def show_file(checkout: Path, commit: str, path: str) -> str | None:
    """Return a file's text at a commit, or None when it did not exist there."""
    proc = subprocess.run(
        ["git", "show", f"{commit}:{path}"], cwd=checkout, capture_output=True, text=True, errors="replace"
    )
    return proc.stdout if proc.returncode == 0 else None


def work_diff(checkout: Path, base: str) -> WorkDiff:
    """Stage the working tree and return its diff against `base`."""
    stage(checkout)
    diff = WorkDiff(base=base)
    _read_status(diff, git(checkout, "diff", "--cached", "--no-renames", "--name-status", "-z", base))
    for line in git(checkout, "diff", "--cached", "--no-renames", "--numstat", "-z", base).split("\0"):
        parts = line.split("\t")
        if len(parts) == 3 and parts[0] == "-" and parts[2] in diff.files:
            diff.files[parts[2]].is_binary = True
    _read_patch(
        diff, git(checkout, "diff", "--cached", "--no-renames", "-U0", "--no-color", "--no-ext-diff", base)
    )
    return diff


def _read_status(diff: WorkDiff, out: str) -> None:
    parts = out.split("\0")
    for status, path in zip(parts[0::2], parts[1::2], strict=False):
        if status:
            diff.files[path] = FileChange(path=path, status=status[0])


def _read_patch(diff: WorkDiff, patch: str) -> None:
    current: FileChange | None = None
    in_header = False
    old_no = new_no = 0
    for raw in patch.splitlines():
        if raw.startswith("diff --git "):
            current, in_header = None, True
        elif in_header and raw.startswith(("--- ", "+++ ")):
            current = _file_for(diff, raw) or current
        elif match := HUNK.match(raw):
            in_header = False
            old_no, new_no = int(match.group(1)), int(match.group(3))
        elif current is None or in_header:
            continue
        elif raw.startswith("+"):
            current.added.append(Line(new_no, raw[1:]))
            new_no += 1
        elif raw.startswith("-"):
            current.removed.append(Line(old_no, raw[1:]))
            old_no += 1


def _file_for(diff: WorkDiff, header: str) -> FileChange | None:
    name = header[4:].strip().strip('"')
    if name == "/dev/null":
        return None
    return diff.files.get(name[2:] if name[:2] in ("a/", "b/") else name)

"""The agent's work as a diff: the working tree staged with `git add -A`, compared to the base commit.

Gates call git here, always as `git.checkout_git` runs it on an agent's checkout (the runner's git dir
and config only): they only read the checkout, apart from staging it into the runner's index and listing
runner caches in the runner's `info/exclude`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from agent_runner.core.errors import GitError, WorkTreeError
from agent_runner.repo.git import checkout_git_bytes, run_git, runner_git_dir

RUNNER_EXCLUDES = (
    "__pycache__/",
    "*.py[cod]",
    ".pytest_cache/",
    ".ruff_cache/",
    ".mypy_cache/",
    ".coverage",
    ".coverage.*",
)
DIFF_OPTIONS = (
    "--no-renames",
    "-z",
    "--raw",
    "--numstat",
    "-p",
    "-U0",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--ignore-submodules=none",  # between trees (no process in a nested repo): a gitlink shows as one
)
# Never look into a nested repository of the work tree: git would run itself there, with its config.
NO_SUBMODULES = "--ignore-submodules=all"
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class Line:
    """One added or removed line with its number in the new (added) or old (removed) file."""

    number: int
    text: str


@dataclass
class FileChange:
    """One changed path: status A/M/D, its new mode (`120000` a symlink, `160000` a gitlink, `000000`
    deleted), whether git sees it as binary, and its changed lines."""

    path: str
    status: str
    mode: str = "100644"
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
    """Run git on the checkout and return stdout; raise GitError when it fails and `check`."""
    return checkout_git_bytes(Path(checkout), *args, check=check).decode("utf-8", "replace")


def exclude_file(checkout: Path) -> Path:
    """Return the runner's info/exclude file for the checkout."""
    return runner_git_dir(Path(checkout)) / "info" / "exclude"


def ensure_excludes(checkout: Path) -> None:
    """List runner and Python caches in the checkout's info/exclude so staging never picks them up."""
    exclude = exclude_file(checkout)
    text = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
    missing = [p for p in RUNNER_EXCLUDES if p not in text.splitlines()]
    if missing:
        exclude.parent.mkdir(parents=True, exist_ok=True)
        exclude.write_text(text.rstrip("\n") + "\n" + "\n".join(missing) + "\n", encoding="utf-8")


def stage(checkout: Path) -> None:
    """Stage the whole working tree (`git add -A`).

    WorkTreeError (the agent's doing: a task failure) when the tree holds what the runner stages not: a
    nested repository, a changed file over MAX_STAGED_BYTES, or content git refuses.
    """
    ensure_excludes(checkout)
    if problem := work_tree_problem(checkout):
        raise WorkTreeError(f"{problem}; the runner stages no such work tree")
    try:
        git(checkout, "add", "-A")
    except GitError as exc:
        if any(fault in str(exc) for fault in MACHINE_FAULTS):
            raise
        raise WorkTreeError(f"git cannot stage the work tree as the agent left it: {exc}") from exc


MAX_STAGED_BYTES = 64 * 1024 * 1024  # git reads a changed file whole; the diff policy refuses over 1 MB
MACHINE_FAULTS = ("No space left on device", "Disk quota exceeded", "Input/output error")


def work_tree_problem(checkout: Path) -> str | None:
    """Say what in the work tree the runner must not stage (None: nothing), from one `git ls-files`.

    A folder git would stage that holds a `.git` is a repository of its own: once staged (a gitlink), git
    runs itself there with that repository's config (fsmonitor, filters). A new or changed file over
    MAX_STAGED_BYTES would be read whole, however sparse.
    """
    try:
        listed = git(checkout, "ls-files", "-z", "-o", "-m", "--directory", "--exclude-standard")
    except GitError as exc:
        return f"git cannot list the work tree ({exc})"
    for entry in filter(None, set(listed.split("\0"))):
        path = Path(checkout, entry)
        if entry.endswith("/") and os.path.lexists(path / ".git"):
            return f"the work tree holds a git repository at {entry}"
        size = _size(path)
        if size > MAX_STAGED_BYTES:
            return f"{entry} is {size} bytes"
    return None


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:  # deleted: nothing to read
        return 0


def tree_id(checkout: Path) -> str:
    """Stage the working tree and return the id of its tree: equal ids mean equal content.

    Inside `snapshot`, return the snapshot's tree without staging again.
    """
    frozen = _SNAPSHOTS.get(Path(checkout).resolve())
    if frozen is not None:
        return frozen
    stage(checkout)
    return git(checkout, "write-tree").strip()


_SNAPSHOTS: dict[Path, str] = {}  # checkout -> the tree one round of gates looks at (see `snapshot`)
_DIFFS: dict[tuple[Path, str, str], WorkDiff] = {}


@contextmanager
def snapshot(checkout: Path, *, tree: str | None = None) -> Iterator[str]:
    """Stage the working tree once and yield its tree; inside, tree_id and work_diff answer for that tree.

    One round of gates then stages once and diffs once instead of once per gate. The caller checks
    afterwards that the tree did not change meanwhile (tests that write files) before it commits.
    A caller that knows the working tree holds exactly `tree` (a fresh checkout) passes it: no staging.
    """
    key = Path(checkout).resolve()
    if tree is None:
        tree = tree_id(checkout)
    else:
        ensure_excludes(checkout)  # as staging would have: runner and cache files stay out of later trees
    _SNAPSHOTS[key] = tree
    try:
        yield tree
    finally:
        _SNAPSHOTS.pop(key, None)
        for diff_key in [k for k in _DIFFS if k[0] == key]:
            del _DIFFS[diff_key]


def staged_tree(checkout: Path) -> str | None:
    """Return the tree of the current round of gates (see `snapshot`), None outside one (then: the index)."""
    return _SNAPSHOTS.get(Path(checkout).resolve())


IndexStamp = tuple[int, int, int, int, bytes]


def index_stamp(checkout: Path) -> IndexStamp | None:
    """Identify the checkout's index file as written (None when unknown): equal stamps, same index.

    The last 20 bytes are git's checksum of the whole file, so equal stamps mean equal entries.
    """
    index = runner_git_dir(Path(checkout)) / "index"
    try:
        with open(index, "rb") as fh:
            info = os.fstat(fh.fileno())
            fh.seek(max(info.st_size - 20, 0))
            checksum = fh.read(20)
    except OSError:
        return None
    if len(checksum) < 20 or not checksum.strip(b"\0"):  # index.skipHash leaves no checksum
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns, checksum)


def is_unchanged(checkout: Path, tree: str, stamp: IndexStamp | None) -> bool:
    """Whether staging the working tree now would give `tree` again (it was staged as `stamp` shows).

    While the index file is the one staged then, one `git status` tells whether any file differs from it
    or is new; otherwise the tree is staged and compared again.
    """
    if stamp is not None and index_stamp(checkout) == stamp:
        ensure_excludes(checkout)
        argv = ("status", "--porcelain", "-z", "--no-renames", "--untracked-files=normal", NO_SUBMODULES)
        out = git(checkout, *argv)
        return all(entry[1:2] == " " for entry in out.split("\0") if entry)
    return tree_id(checkout) == tree


def show_file(checkout: Path, commit: str, path: str) -> str | None:
    """Return a file's text at a commit, or None when it did not exist there."""
    return show_files(checkout, commit, [path])[path]


def show_files(checkout: Path, commit: str, paths: list[str]) -> dict[str, str | None]:
    """Return the text of several files at a commit (None where missing), read by one `git cat-file`."""
    request = "".join(f"{commit}:{path}\0" for path in paths).encode()
    out, pos = checkout_git_bytes(Path(checkout), "cat-file", "--batch", "-z", data=request), 0
    found: dict[str, str | None] = {}
    for path in paths:
        end = out.index(b"\n", pos)
        header = out[pos:end]
        pos = end + 1
        if header.endswith((b" missing", b" ambiguous")):
            found[path] = None
            continue
        _, kind, size = header.rsplit(b" ", 2)
        text = out[pos : pos + int(size)].decode("utf-8", errors="replace")
        found[path] = text if kind == b"blob" else None  # a folder or submodule there is no file
        pos += int(size) + 1
    return found


def work_diff(checkout: Path, base: str) -> WorkDiff:
    """Stage the working tree and return its diff against `base` (one `git diff` for status and lines).

    Inside `snapshot`, diff the snapshot's tree instead, once per base.
    """
    key = Path(checkout).resolve()
    frozen = _SNAPSHOTS.get(key)
    if frozen is None:
        stage(checkout)
        return _diff(checkout, base, "--cached", base)
    if (key, base, frozen) not in _DIFFS:
        _DIFFS[(key, base, frozen)] = _diff(checkout, base, base, frozen)
    return _DIFFS[(key, base, frozen)]


def _diff(checkout: Path, base: str, *revs: str) -> WorkDiff:
    return read_diff(base, git(checkout, "diff", *DIFF_OPTIONS, *revs))


def commit_diff(repo: Path, base: str, head: str) -> WorkDiff:
    """Return the diff of commit `head` against `base` in the trusted repo `repo` (a bare one will do)."""
    return read_diff(
        base, run_git(repo, "diff", *DIFF_OPTIONS, "--src-prefix=a/", "--dst-prefix=b/", base, head)
    )


def read_diff(base: str, output: str) -> WorkDiff:
    """Read `git diff` output made with DIFF_OPTIONS into a WorkDiff."""
    diff = WorkDiff(base=base)
    # -z output: raw records, numstat records, an empty record, then the patch text (never NUL-separated).
    summary, _, patch = output.partition("\0\0")
    _read_summary(diff, summary)
    _read_patch(diff, patch)
    return diff


def _read_summary(diff: WorkDiff, out: str) -> None:
    """Read `--raw -z` records (`:modes ids STATUS`, path) and `--numstat -z` ones (`add\tdel\tpath`)."""
    parts = out.split("\0")
    i = 0
    while i < len(parts):
        record = parts[i]
        if record.startswith(":") and i + 1 < len(parts):
            path = parts[i + 1]
            fields = record.split()
            diff.files[path] = FileChange(path=path, status=fields[-1][0], mode=fields[1])
            i += 2
            continue
        fields = record.split("\t", 2)
        if len(fields) == 3 and fields[0] == "-" and fields[2] in diff.files:
            diff.files[fields[2]].is_binary = True
        i += 1


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
    name = header[4:].rstrip("\n")
    if name.startswith('"') and name.endswith('"'):  # git C-quotes a name with ", \\, a tab, a newline...
        name = unquote_c(name[1:-1])
    if name == "/dev/null":
        return None
    return diff.files.get(name[2:] if name[:2] in ("a/", "b/") else name)


_C_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def unquote_c(text: str) -> str:
    """Undo git's C-style quoting of a path (`\\"`, `\\t`, `\\ooo` octal bytes), as `-z` output spells it."""
    out, i = bytearray(), 0
    while i < len(text):
        char = text[i]
        if char == "\\" and text[i + 1 : i + 4].isdigit():
            out.append(int(text[i + 1 : i + 4], 8) & 0xFF)
            i += 4
        elif char == "\\" and text[i + 1 : i + 2] in _C_ESCAPES:
            out.append(_C_ESCAPES[text[i + 1]])
            i += 2
        else:
            out += char.encode("utf-8", "surrogateescape")
            i += 1
    return out.decode("utf-8", "replace")

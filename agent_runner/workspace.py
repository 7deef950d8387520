"""The place one attempt works in: paths, checkout, copied files, setup commands and a private HOME."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agent_runner import bundles, checkouts, git
from agent_runner.errors import GitError, SetupError
from agent_runner.result import WorkRequest

SETUP_TIMEOUT_S = 1200.0
TAIL_CHARS = 2000
POOL_SIZE = 8  # finished checkouts kept per repo for re-use: refreshing one beats a new clone on big repos
READY_SIZE = 8  # checkouts made ahead per repo, at most (local workers keep one more than their slots)
STALE_S = 600.0  # a half-made checkout this old was left by a process that died
PARK_MIN_INDEX_BYTES = 50_000  # about 500 tracked files: below that a fresh clone is as fast
log = logging.getLogger(__name__)
# Output of a setup command that failed because the network did: infrastructure, not the task.
NETWORK_ERROR = re.compile(
    r"Could not resolve host|Temporary failure in name resolution|Name or service not known|"
    r"Network is unreachable|Failed to establish a new connection|Connection (?:refused|reset|timed out)|"
    r"ConnectionError|No route to host|TLS handshake timeout|Read timed out",
    re.IGNORECASE,
)


class BaseMissingError(GitError):
    """The task's base branch does not exist in the source repo (a task failure, not infrastructure)."""


class SetupNetworkError(SetupError):
    """A setup command failed on a network error (retry later, no attempt spent)."""


@dataclass(frozen=True)
class AttemptPaths:
    """Where one attempt keeps its files on the worker machine."""

    run_dir: Path
    checkout: Path
    home: Path
    trajectory: Path
    bundle: Path

    @classmethod
    def under(cls, workdir: Path, task_id: str, attempt: int) -> AttemptPaths:
        """Return the paths of attempt `attempt` of `task_id` under the state folder `workdir`."""
        run_dir = workdir / "runs" / task_id / str(attempt)
        return cls(
            run_dir=run_dir,
            checkout=workdir / "checkouts" / f"{task_id}-{attempt}",
            home=run_dir / "home",
            trajectory=run_dir / "trajectory.jsonl",
            bundle=run_dir / "result.bundle",
        )


def init_state_dir(workdir: Path) -> None:
    """Create the state folder, ignored by git so it never shows up in the source repo's status."""
    workdir.mkdir(parents=True, exist_ok=True)
    ignore = workdir / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n", encoding="utf-8")


def open_checkout(request: WorkRequest, paths: AttemptPaths) -> git.Checkout:
    """Take a checkout made ahead at the request's base, else update the bare cache and clone one."""
    pool = pool_dir(paths, request.repo)
    branch = request.task.branch_name
    if request.base_commit:  # one made ahead at that commit came from the cache: no need to look there
        remove_checkout(paths.checkout)  # a leftover of a crashed attempt with this number
        if (checkout := _made_ahead(paths, branch, request.base_commit, pool)) is not None:
            return checkout
    bundle = None
    if request.repo_bundle_b64:
        bundle = bundles.write_b64(request.repo_bundle_b64, paths.run_dir / "source.bundle")
    cache = git.ensure_cache(request.repo, need=request.base_commit, bundle=bundle)
    try:  # a request's base_commit was checked by ensure_cache; a resolved base exists by definition
        base = request.base_commit or git.resolve_base(cache, request.base or request.task.base)
    except GitError as exc:
        raise BaseMissingError(str(exc)) from exc
    checkout = _checkout(cache, paths, branch, base, pool)
    return dataclasses.replace(checkout, base_tree=checkout.base_tree or git.known_tree(cache, base))


def _checkout(cache: Path, paths: AttemptPaths, branch: str, base: str, pool: Path) -> git.Checkout:
    remove_checkout(paths.checkout)  # a leftover of a crashed attempt with this number
    if (checkout := _made_ahead(paths, branch, base, pool)) is not None:
        return checkout
    if take_parked(pool, paths.checkout):
        try:
            return checkouts.refresh_checkout(cache, paths.checkout, branch=branch, base_commit=base)
        except (GitError, OSError):
            remove_checkout(paths.checkout)  # anything odd: start from a fresh clone instead
    return checkouts.make_checkout(cache, paths.checkout, branch=branch, base_commit=base)


def _made_ahead(paths: AttemptPaths, branch: str, base: str, pool: Path) -> git.Checkout | None:
    """Put a checkout made ahead at `base` on `branch` at the attempt's path; None when there is none."""
    name = take_ready(ready_dir(pool), base, paths.checkout)
    if name is None:
        return None
    try:
        checkout = checkouts.adopt(paths.checkout, branch=branch, base_commit=base)
    except (GitError, OSError) as exc:
        log.info("a checkout made ahead could not be used (%s); cloning instead", exc)
        remove_checkout(paths.checkout)
        return None
    log.info("using a checkout made ahead at %s", base[:12])
    return dataclasses.replace(checkout, base_tree=_tree_in(name))


def ready_dir(pool: Path) -> Path:
    """Return the folder of checkouts made ahead for a repo (beside its pool of parked ones)."""
    return pool.parent.parent / "ready" / pool.name


def take_ready(ready: Path, base: str, dest: Path) -> str | None:
    """Move a checkout made ahead at `base` to `dest` (atomic, so never taken twice); return its name."""
    if not ready.is_dir():
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    return _take_first(sorted(ready.glob(f"{base}.*")), dest)


def _ready_name(base: str, tree: str | None) -> str:
    """Name a checkout made ahead: its base commit, the base's tree when known, and a unique suffix."""
    tree_part = f"{tree}." if tree else ""
    return f"{base}.{tree_part}{os.getpid()}.{time.monotonic_ns()}"


def _tree_in(name: str) -> str | None:
    """Return the base tree a checkout made ahead was named with (None for a name without one)."""
    parts = name.split(".")
    return parts[1] if len(parts) == 4 and bundles.OBJECT_ID.fullmatch(parts[1]) else None


def make_ready(
    cache: Path, pool: Path, base: str, *, keep: int = READY_SIZE, tree: str | None = None
) -> Path | None:
    """Make one checkout at `base` for a later attempt (a parked one refreshed, else a clone).

    Checkouts made ahead at other bases, and half-made ones older than STALE_S, are deleted first. Returns
    the new checkout, or None when `keep` (at most READY_SIZE) are waiting already.
    """
    ready = ready_dir(pool)
    ready.mkdir(parents=True, exist_ok=True)
    waiting = 0
    for entry in ready.iterdir():
        is_other_base = not entry.name.startswith(f"{base}.")
        if is_other_base or (entry.name.endswith(".tmp") and time.time() - entry.stat().st_mtime > STALE_S):
            if entry.is_dir():
                remove_checkout(entry)
            else:
                entry.unlink(missing_ok=True)
        elif not entry.name.endswith((".index", ".tmp")):
            waiting += 1
    if waiting >= min(keep, READY_SIZE):
        return None
    tree = tree or git.known_tree(cache, base)
    if tree is None and git.has_commit(cache, base):  # the taker then needs not ask for the base's tree
        tree = git.known_tree(cache, base)
    name = _ready_name(base, tree)
    tmp = ready / f"{name}.tmp"
    if not (take_parked(pool, tmp) and _refreshed(cache, tmp, base)):
        checkouts.make_checkout(cache, tmp, branch=None, base_commit=base)
    _move_index(tmp, ready / name)
    os.replace(tmp, ready / name)
    return ready / name


def _refreshed(cache: Path, checkout: Path, base: str) -> bool:
    try:
        checkouts.refresh_checkout(cache, checkout, branch=None, base_commit=base)
    except (GitError, OSError):
        remove_checkout(checkout)
        return False
    return True


def note_ahead(checkout: git.Checkout, repo: str, paths: AttemptPaths) -> None:
    """Remember to make a checkout like `checkout` for the next attempt here (`make_noted_ahead`)."""
    _AHEAD.append((repo, paths, checkout.base_commit, checkout.base_tree))


def make_noted_ahead(keep: int) -> None:
    """Make one checkout where `note_ahead` asked, unless `keep` wait there (after the result is out).

    One per attempt replaces the one it took; attempts that found none (the first of a run) add one.
    """
    while _AHEAD:
        repo, paths, base, tree = _AHEAD.pop()
        try:
            make_ready(git.cache_path(repo), pool_dir(paths, repo), base, keep=keep, tree=tree)
        except (GitError, OSError) as exc:  # an optimisation only: the next attempt clones instead
            log.info("no checkout made ahead: %s", exc)


_AHEAD: list[tuple[str, AttemptPaths, str, str | None]] = []


def pool_for(workdir: Path, repo: str) -> Path:
    """Return the folder of parked checkouts of `repo` under the state folder `workdir`."""
    return workdir / "pool" / git.cache_path(repo).stem


def pool_dir(paths: AttemptPaths, repo: str) -> Path:
    """Return the folder of finished checkouts of `repo` kept for re-use on this machine."""
    return pool_for(paths.checkout.parent.parent, repo)


def take_parked(pool: Path, dest: Path) -> bool:
    """Move a parked checkout (and the runner's copy of its index) to `dest`; atomic, so never taken twice."""
    if not pool.is_dir():
        return False
    return _take_first(sorted(pool.iterdir()), dest) is not None


def _take_first(entries: list[Path], dest: Path) -> str | None:
    """Move the first checkout among `entries` no one else takes first to `dest` (with its index copy).

    Returns the name it had, or None when every one was taken.
    """
    for entry in entries:
        if entry.name.endswith((".index", ".tmp")):
            continue
        try:
            os.replace(entry, dest)
        except OSError:
            continue  # another worker took it first
        _move_index(entry, dest)
        return entry.name
    return None


def park(checkout: Path, pool: Path) -> bool:
    """Keep a finished checkout of a large repo for re-use (at most POOL_SIZE); return whether it was kept."""
    index = checkout / ".git" / "index"
    if not index.is_file() or index.stat().st_size < PARK_MIN_INDEX_BYTES:
        return False  # a small repo: a fresh clone (two git commands) is as fast as a refresh (three)
    pool.mkdir(parents=True, exist_ok=True)
    if sum(1 for entry in pool.iterdir() if not entry.name.endswith(".index")) >= POOL_SIZE:
        return False
    target = pool / f"{checkout.name}.{os.getpid()}.{time.monotonic_ns()}"
    os.replace(checkout, target)
    _move_index(checkout, target)
    return True


def _move_index(old: Path, new: Path) -> None:
    """Move the runner's copy of a checkout's index along with the checkout (or drop a stale one)."""
    try:
        os.replace(checkouts.trusted_index(old), checkouts.trusted_index(new))
    except FileNotFoundError:
        checkouts.trusted_index(new).unlink(missing_ok=True)  # the refresh then verifies every file instead


def copy_files(source: str, checkout: Path, names: list[str]) -> list[str]:
    """Copy untracked files (such as .env) from a local source repo into the checkout; return those copied."""
    if not names or not git.is_local(source):
        return []
    copied = []
    root = Path(source).resolve()
    for name in names:
        src = (root / name).resolve()
        if not src.is_relative_to(root) or not src.exists():
            continue
        dest = checkout / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True, symlinks=True)
        else:
            shutil.copy2(src, dest)
        copied.append(name)
    return copied


def private_home(paths: AttemptPaths) -> dict[str, str]:
    """Create a HOME and config dirs private to this attempt and return them as environment variables."""
    for sub in ("", ".config", ".cache", "tmp"):
        (paths.home / sub).mkdir(parents=True, exist_ok=True)
    return {
        "HOME": str(paths.home),
        "XDG_CONFIG_HOME": str(paths.home / ".config"),
        "XDG_CACHE_HOME": str(paths.home / ".cache"),
        "TMPDIR": str(paths.home / "tmp"),
    }


def run_setup(commands: list[str], checkout: Path, env: Mapping[str, str]) -> None:
    """Run setup commands in the checkout; raise SetupError with the output tail of the first that fails."""
    for command in commands:
        try:
            proc = subprocess.run(
                command, shell=True, cwd=checkout, env=dict(env), capture_output=True, text=True,
                errors="replace", timeout=SETUP_TIMEOUT_S, start_new_session=True,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise SetupError(f"setup command `{command}` timed out after {SETUP_TIMEOUT_S:.0f} s") from exc
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr)[-TAIL_CHARS:].strip()
            error = SetupNetworkError if NETWORK_ERROR.search(tail) else SetupError
            raise error(f"setup command `{command}` exited with {proc.returncode}:\n{tail}")


def setup_env(base: Mapping[str, str], home: Mapping[str, str]) -> dict[str, str]:
    """Return the environment for setup commands: the allowlisted tool env plus the private HOME."""
    return {**base, **home}


def remove_checkout(path: Path) -> None:
    """Delete a checkout folder and the runner's copy of its index (best effort)."""
    shutil.rmtree(path, ignore_errors=True)
    checkouts.trusted_index(path).unlink(missing_ok=True)


def move_to_trash(path: Path, workdir: Path) -> Path:
    """Move a checkout out of the way at once (a rename); return where it went, for deleting later."""
    trash = workdir / "trash"
    trash.mkdir(parents=True, exist_ok=True)
    target = trash / f"{path.name}.{os.getpid()}.{time.monotonic_ns()}"
    os.replace(path, target)
    checkouts.trusted_index(path).unlink(missing_ok=True)
    return target


def default_env() -> dict[str, str]:
    """Return the allowlisted environment for commands in the checkout (tools' own list when present)."""
    try:
        from agent_runner.tools.shell import tool_env
    except ImportError:
        keep = ("PATH", "LANG", "LC_ALL", "TERM", "TZ", "USER", "LOGNAME", "SHELL")
        return {k: v for k, v in os.environ.items() if k in keep}
    return dict(tool_env())

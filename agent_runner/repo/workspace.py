"""The place one attempt works in: paths, checkout, copied files, setup commands and a private HOME."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

from agent_runner.core.errors import GitError, SetupError
from agent_runner.core.protocols import Sandbox
from agent_runner.core.result import WorkRequest
from agent_runner.repo import bundles, checkouts, git, pools
from agent_runner.repo.layout import AttemptPaths
from agent_runner.tools.capture import run_bounded
from agent_runner.tools.shell import tool_env

SETUP_TIMEOUT_S = 1200.0
TAIL_CHARS = 2000
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


def init_state_dir(workdir: Path) -> None:
    """Create the state folder, ignored by git so it never shows up in the source repo's status."""
    workdir.mkdir(parents=True, exist_ok=True)
    ignore = workdir / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n", encoding="utf-8")


def open_checkout(request: WorkRequest, paths: AttemptPaths) -> git.Checkout:
    """Take a checkout made ahead at the request's base, else update the bare cache and clone one."""
    pool = pools.pool_dir(paths, request.repo)
    branch = request.task.branch_name
    checkouts.remove_checkout(paths.checkout)  # a leftover of a crashed attempt with this number
    # One made ahead at the request's commit came from the cache: no need to look there.
    if request.base_commit and (made := _made_ahead(paths, branch, request.base_commit, pool)):
        return _for_agent(made)
    bundle = None
    if request.repo_bundle_b64:
        bundle = bundles.write_b64(request.repo_bundle_b64, paths.run_dir / "source.bundle")
    cache = git.ensure_cache(request.repo, need=request.base_commit, bundle=bundle)
    try:  # a request's base_commit was checked by ensure_cache; a resolved base exists by definition
        base = request.base_commit or git.resolve_base(cache, request.base or request.task.base)
    except GitError as exc:
        raise BaseMissingError(str(exc)) from exc
    made = None if request.base_commit else _made_ahead(paths, branch, base, pool)  # else tried above
    checkout = made or _parked_or_cloned(cache, paths, branch, base, pool)
    return _for_agent(
        dataclasses.replace(checkout, base_tree=checkout.base_tree or git.known_tree(cache, base))
    )


def _for_agent(checkout: git.Checkout) -> git.Checkout:
    checkouts.give_agent_git(checkout)
    return checkout


def _parked_or_cloned(cache: Path, paths: AttemptPaths, branch: str, base: str, pool: Path) -> git.Checkout:
    if pools.take_parked(pool, paths.checkout):
        try:
            return checkouts.refresh_checkout(cache, paths.checkout, branch=branch, base_commit=base)
        except (GitError, OSError):
            checkouts.remove_checkout(paths.checkout)  # anything odd: start from a fresh clone instead
    return checkouts.make_checkout(cache, paths.checkout, branch=branch, base_commit=base)


def _made_ahead(paths: AttemptPaths, branch: str, base: str, pool: Path) -> git.Checkout | None:
    """Put a checkout made ahead at `base` on `branch` at the attempt's path; None when there is none."""
    name = pools.take_ready(pools.ready_dir(pool), base, paths.checkout)
    if name is None:
        return None
    try:
        checkout = checkouts.adopt(paths.checkout, branch=branch, base_commit=base)
    except (GitError, OSError) as exc:
        log.info("a checkout made ahead could not be used (%s); cloning instead", exc)
        checkouts.remove_checkout(paths.checkout)
        return None
    log.info("using a checkout made ahead at %s", base[:12])
    return dataclasses.replace(checkout, base_tree=pools.tree_in(name))


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


def run_setup(
    commands: list[str], checkout: Path, env: Mapping[str, str], *, sandbox: Sandbox | None = None
) -> None:
    """Run setup commands in the checkout (inside `sandbox` when given); raise SetupError with the output
    tail of the first that fails. Their output is bounded (tools/capture.py): a flood costs no memory."""
    for command in commands:
        argv = ["sh", "-c", command]
        ended = run_bounded(
            sandbox.wrap(argv) if sandbox is not None else argv, cwd=checkout, env=env,
            timeout_s=SETUP_TIMEOUT_S, new_session=True,
        )  # fmt: skip
        if ended.timed_out:
            raise SetupError(f"setup command `{command}` timed out after {SETUP_TIMEOUT_S:.0f} s")
        if ended.exit_code != 0:
            tail = (ended.stdout + ended.stderr)[-TAIL_CHARS:].strip()
            error = SetupNetworkError if NETWORK_ERROR.search(tail) else SetupError
            raise error(f"setup command `{command}` exited with {ended.exit_code}:\n{tail}")


def setup_env(base: Mapping[str, str], home: Mapping[str, str]) -> dict[str, str]:
    """Return the environment for setup commands: the allowlisted tool env plus the private HOME."""
    return {**base, **home}


def move_to_trash(path: Path, workdir: Path) -> list[Path]:
    """Move a checkout and the runner's git dir beside it out of the way at once (renames); return where
    they went, for deleting later."""
    trash = workdir / "trash"
    trash.mkdir(parents=True, exist_ok=True)
    target = trash / f"{path.name}.{os.getpid()}.{time.monotonic_ns()}"
    os.replace(path, target)
    moved = [target]
    with contextlib.suppress(FileNotFoundError):
        os.replace(git.runner_git_dir(path), git.runner_git_dir(target))
        moved.append(git.runner_git_dir(target))
    checkouts.trusted_index(path).unlink(missing_ok=True)
    return moved


def default_env() -> dict[str, str]:
    """Return the allowlisted environment for commands in the checkout (the tools' own list)."""
    return dict(tool_env())

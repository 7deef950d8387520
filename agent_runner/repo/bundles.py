"""Result and source bundles: write a task's commits, fetch them into a repo, carry them as base64."""

from __future__ import annotations

import base64
import functools
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from agent_runner.core.errors import BundleRejectedError, GitError
from agent_runner.repo.git import Checkout, check_branch, checkout_git, run_git


class GitRunner(Protocol):
    """A git runner bound to one repo (`checkout_git` or `run_git` with the repo given)."""

    def __call__(
        self, *args: str, stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None
    ) -> str: ...


def create_bundle(checkout: Checkout, dest: Path, *, head: str | None = None) -> Path | None:
    """Write the commits base..branch as a bundle at `dest`; None when there are none.

    The bundle is what `git bundle create dest ^base branch` writes (a v2 header and a thin pack), made
    with one `git pack-objects` instead of two processes.
    """
    repo, base = checkout.path, checkout.base_commit
    head = head or checkout_git(repo, "rev-parse", checkout.branch)
    if head == base:
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    write_bundle(functools.partial(checkout_git, repo), base, head, checkout.branch, tmp)
    os.replace(tmp, dest)
    return dest


def write_bundle(git: GitRunner, base: str, head: str, branch: str, dest: Path) -> Path:
    """Write the commits base..head as a v2 bundle carrying refs/heads/`branch`, with `git` (the runner for
    the repo: an agent's checkout's, or the runner's own)."""
    with open(dest, "wb") as out, tempfile.TemporaryFile() as revs:
        out.write(f"{SIGNATURES[0].decode()}-{base}\n{head} refs/heads/{branch}\n\n".encode())
        out.flush()
        revs.write(f"{head}\n^{base}\n".encode())
        revs.seek(0)
        pack = ("pack-objects", "--stdout", "--thin", "--delta-base-offset", "--quiet", "--revs")
        git(*pack, stdin=revs, stdout=out)
    return dest


UNPACK_LIMIT = 100  # as git's fetch.unpackLimit: smaller packs become loose objects, larger ones stay packs
OBJECT_ID = re.compile("[0-9a-f]{40}|[0-9a-f]{64}")
SIGNATURES = (b"# v2 git bundle\n", b"# v3 git bundle\n")


@dataclass(frozen=True)
class BundleHeader:
    """A bundle's header: the commits it needs, the refs it carries, and where its pack starts."""

    prerequisites: list[str]
    refs: dict[str, str]  # ref name -> object id
    pack_offset: int


def read_header(bundle: Path) -> BundleHeader:
    """Parse a v2 or v3 bundle's header; raise GitError when `bundle` is not one."""
    prerequisites: list[str] = []
    refs: dict[str, str] = {}
    with open(bundle, "rb") as fh:
        if fh.readline() not in SIGNATURES:
            raise GitError(f"{bundle} is not a git bundle")
        while (line := fh.readline()) not in (b"\n", b""):
            text = line.decode("utf-8", "replace").rstrip("\n")
            if text.startswith("-"):
                prerequisites.append(_object_id(text[1:].split(" ", 1)[0], bundle))
            elif not text.startswith("@"):  # capabilities (v3) need nothing here
                oid, _, name = text.partition(" ")
                refs[name] = _object_id(oid, bundle)
        if line != b"\n":
            raise GitError(f"{bundle} ends before its pack; the bundle is truncated")
        return BundleHeader(prerequisites, refs, fh.tell())


def _object_id(text: str, bundle: Path) -> str:
    """Return `text` if it is an object id; these go on git's command line, so nothing else may pass."""
    if not OBJECT_ID.fullmatch(text):
        raise GitError(f"{bundle} has a malformed header line ({text[:50]!r} is not an object id)")
    return text


def import_bundle(repo: Path, bundle: Path, branch: str) -> str:
    """Add the objects of `branch` in `bundle` to `repo`, checked sound and complete; return its commit.

    No ref moves. Git checks the head itself when the branch moves: it refuses a missing or non-commit
    object for a branch. Objects a stale or rejected attempt brings in stay unreferenced until git's gc.
    """
    check_branch(branch)
    header = read_header(bundle)
    head = header.refs.get(f"refs/heads/{branch}")
    if head is None:
        raise GitError(f"{bundle} has no branch {branch}; the worker sent a bundle for another task")
    try:
        _import_pack(repo, bundle, header.pack_offset)
    except GitError as exc:
        if "fsck error" in str(exc):  # well transported, refused on content: sending it again cannot help
            raise BundleRejectedError(f"git refused the commits in {bundle}: {exc}") from exc
        raise GitError(f"{bundle} is broken or incomplete: {exc}") from exc
    return head


def _import_pack(repo: Path, bundle: Path, offset: int) -> None:
    with open(bundle, "rb", buffering=0) as fh:  # unbuffered: git reads the pack from this fd's offset
        fh.seek(offset)
        pack_head = fh.read(12)
        fh.seek(offset)
        n_objects = int.from_bytes(pack_head[8:12], "big") if pack_head[:4] == b"PACK" else 0
        # The pack is thin (its deltas may use the base's objects): both commands complete it from the repo.
        # --strict checks each object as a host's receive.fsckObjects would (no `.git` in a tree, say), and
        # that every object it links to is in the pack or the repo: what lands is complete, no walk needed.
        if n_objects < UNPACK_LIMIT:
            run_git(repo, "unpack-objects", "-q", "--strict", stdin=fh)
        else:
            run_git(repo, "index-pack", "--stdin", "--fix-thin", "--strict", stdin=fh)


def move_branch(repo: Path, branch: str, head: str) -> None:
    """Point `branch` (agent/ branches only) at `head`, whatever it pointed at before."""
    check_branch(branch)
    run_git(repo, "update-ref", f"refs/heads/{branch}", head)


def fetch_bundle(repo: Path, bundle: Path, branch: str) -> str:
    """Land `branch` from `bundle` in `repo` as that branch (force; agent/ branches only); return its head.

    Git's automatic maintenance does not run after each landing: the caller runs `maintain` now and then.
    """
    head = import_bundle(repo, bundle, branch)
    move_branch(repo, branch, head)
    return head


def maintain(repo: Path) -> None:
    """Run git's automatic maintenance in `repo`, as a fetch would, unless the repo turned it off."""
    enabled = run_git(repo, "config", "--type=bool", "--default=true", "maintenance.auto")
    if enabled == "true":
        run_git(repo, "maintenance", "run", "--auto", "--quiet")


def bundle_repo(repo: Path, dest: Path, *, refs: list[str] | None = None) -> Path:
    """Bundle the branches of `repo` (for workers that cannot reach it)."""
    run_git(repo, "bundle", "create", "-q", str(dest), *(refs or ["--branches"]))
    return dest


def write_b64(data: str, dest: Path) -> Path:
    """Decode base64 `data` into the file `dest`; raise GitError when it is not base64."""
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError as exc:
        raise GitError(f"the bundle for {dest} is not valid base64 ({exc})") from exc
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(raw)
    return dest


def read_b64(path: Path) -> str:
    """Return the file at `path` as base64 text."""
    return base64.b64encode(path.read_bytes()).decode("ascii")

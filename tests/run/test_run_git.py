"""Checkouts, commits and bundles on real git repos."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import pytest
from run_helpers import Project, git

from agent_runner.core.errors import BundleRejectedError, GitError
from agent_runner.repo import bundles, checkouts
from agent_runner.repo import git as agit


def _checkout(project: Project, tmp_path: Path, name: str = "co", branch: str = "agent/t1") -> agit.Checkout:
    cache = agit.ensure_cache(str(project.root))
    base = agit.resolve_base(cache, None)
    return checkouts.make_checkout(cache, tmp_path / name, branch=branch, base_commit=base)


def test_checkout_is_on_task_branch_with_private_hooks(project: Project, tmp_path: Path) -> None:
    """A checkout is its own clone on agent/<id> at the base, its git dir beside the work tree; the agent's
    `.git` is on the same branch, and a hook planted in one is not in another."""
    first = _checkout(project, tmp_path, "one")
    second = _checkout(project, tmp_path, "two", branch="agent/t2")
    assert not (first.path / ".git").exists() and agit.runner_git_dir(first.path).is_dir()
    assert git(first.path, "rev-parse", "--abbrev-ref", "HEAD") == "agent/t1"
    assert first.base_commit == git(project.root, "rev-parse", "HEAD")
    for co in (first, second):
        checkouts.give_agent_git(co)
    assert git(first.path, "rev-parse", "--abbrev-ref", "HEAD", as_agent=True) == "agent/t1"
    assert git(first.path, "status", "--porcelain", as_agent=True) == ""
    (first.path / ".git" / "hooks").mkdir(exist_ok=True)
    (first.path / ".git" / "hooks" / "pre-commit").write_text("#!/bin/sh\nexit 1\n")
    assert not (second.path / ".git" / "hooks" / "pre-commit").exists()
    assert not (agit.runner_git_dir(first.path) / "commondir").exists()  # not a worktree


def _refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


def test_checkout_is_what_git_clone_local_makes(project: Project, tmp_path: Path) -> None:
    """The in-process clone has git clone's refs, remote and default branch, and hard-links the objects."""
    git(project.root, "branch", "feature")
    cache = agit.ensure_cache(str(project.root))
    git(cache, "pack-refs", "--all")
    git(cache, "update-ref", "refs/heads/loose", "HEAD")  # one packed-refs entry, one loose ref
    ours = _checkout(project, tmp_path, "ours")
    git(tmp_path, "clone", "-q", "--local", "--no-checkout", str(cache), "theirs")
    git(tmp_path / "theirs", "checkout", "-q", "-b", "agent/t1", ours.base_commit)
    assert _refs(ours.path) == _refs(tmp_path / "theirs")
    assert "refs/remotes/origin/loose" in _refs(ours.path)
    for key in ("remote.origin.url", "remote.origin.fetch", "branch.main.merge"):
        assert git(ours.path, "config", key) == git(tmp_path / "theirs", "config", key)
    assert not list((cache / "objects").glob("??/*"))  # the cache fetches packs, not loose objects
    pack = next((cache / "objects" / "pack").glob("*.pack"))
    linked = agit.runner_git_dir(ours.path) / "objects" / "pack" / pack.name
    assert linked.stat().st_ino == pack.stat().st_ino
    assert git(ours.path, "status", "--porcelain") == "" and git(ours.path, "fsck", "--no-dangling") == ""


def test_checkout_on_another_file_system_falls_back_to_git_clone(project: Project, tmp_path: Path) -> None:
    """Where objects cannot be hard-linked (another file system), git clone copies them instead."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on a file system of its own")
    cache = agit.ensure_cache(str(project.root))
    dest = Path(tempfile.mkdtemp(dir=shm)) / "co"
    try:
        checkout = checkouts.make_checkout(
            cache, dest, branch="agent/t1", base_commit=agit.resolve_base(cache, None)
        )
        assert git(dest, "rev-parse", "HEAD") == checkout.base_commit
        assert git(dest, "status", "--porcelain") == ""
        assert git(dest, "config", "remote.origin.url") == str(cache)
    finally:
        shutil.rmtree(dest.parent)


def test_commit_ignores_planted_hook_and_bundle_lands_in_source(project: Project, tmp_path: Path) -> None:
    """The runner's commit skips planted hooks; the bundle fetches into the source as agent/<id> only."""
    checkout = _checkout(project, tmp_path)
    checkouts.give_agent_git(checkout)
    hooks = checkout.path / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "pre-commit").write_text("#!/bin/sh\nexit 1\n")
    (hooks / "pre-commit").chmod(0o755)
    (checkout.path / "new.txt").write_text("hello\n")
    head = agit.commit_all(checkout, "agent-runner: t1: add new.txt")
    assert head != checkout.base_commit
    bundle = bundles.create_bundle(checkout, tmp_path / "t1.bundle")
    assert bundle is not None
    main_before = git(project.root, "rev-parse", "main")
    assert git(project.root, "bundle", "list-heads", str(bundle)) == f"{head} refs/heads/agent/t1"
    git(project.root, "bundle", "verify", "-q", str(bundle))  # git itself reads the runner's bundles
    bundles.fetch_bundle(project.root, bundle, "agent/t1")
    assert git(project.root, "rev-parse", "agent/t1") == head
    assert git(project.root, "show", "agent/t1:new.txt") == "hello"
    assert git(project.root, "rev-parse", "main") == main_before
    with pytest.raises(GitError, match="only writes branches under agent/"):
        bundles.fetch_bundle(project.root, bundle, "main")
    with pytest.raises(GitError, match="has no branch agent/other"):
        bundles.fetch_bundle(project.root, bundle, "agent/other")


@pytest.mark.parametrize("n_files", [3, 150])  # loose objects below git's unpack limit, a kept pack above
def test_import_brings_objects_and_only_move_branch_points_at_them(
    project: Project, tmp_path: Path, n_files: int
) -> None:
    """Importing a bundle adds its commits without touching refs; moving the branch is a separate step."""
    checkout = _checkout(project, tmp_path)
    for i in range(n_files):
        (checkout.path / f"f{i}.txt").write_text(f"file {i}\n")
    head = agit.commit_all(checkout, "many files")
    bundle = bundles.create_bundle(checkout, tmp_path / "t1.bundle")
    assert bundle is not None
    packs_before = set((project.root / ".git" / "objects" / "pack").glob("*.pack"))
    assert bundles.import_bundle(project.root, bundle, "agent/t1") == head
    assert git(project.root, "branch", "--list", "agent/*") == ""
    assert git(project.root, "cat-file", "-t", head) == "commit"
    new_packs = set((project.root / ".git" / "objects" / "pack").glob("*.pack")) - packs_before
    assert len(new_packs) == (1 if n_files >= bundles.UNPACK_LIMIT else 0)
    bundles.move_branch(project.root, "agent/t1", head)
    assert git(project.root, "show", f"agent/t1:f{n_files - 1}.txt") == f"file {n_files - 1}"


def test_broken_bundles_are_refused_and_land_nothing(project: Project, tmp_path: Path) -> None:
    """A file that is not a bundle, or one cut short, is a GitError that names it; no branch appears."""
    checkout = _checkout(project, tmp_path)
    (checkout.path / "new.txt").write_text("hello\n" * 1000)
    agit.commit_all(checkout, "one file")
    bundle = bundles.create_bundle(checkout, tmp_path / "t1.bundle")
    assert bundle is not None
    data = bundle.read_bytes()
    header_end = data.index(b"\n\n") + 2
    head_line = data.split(b"\n")[2]  # "<oid> refs/heads/agent/t1", after the signature and the base
    cases = {  # file name -> what the error says
        "zip": (b"PK\x03\x04 a zip file", "is not a git bundle"),
        "no-pack": (data[: header_end - 1], "ends before its pack"),
        "cut-pack": (data[: header_end + (len(data) - header_end) // 2], "is broken or incomplete"),
        "option": (data.replace(head_line, b"--output=x refs/heads/agent/t1"), "is not an object id"),
    }
    for name, (content, message) in cases.items():
        broken = tmp_path / f"{name}.bundle"
        broken.write_bytes(content)
        with pytest.raises(GitError, match=f"{name}.bundle (.*){message}"):
            bundles.fetch_bundle(project.root, broken, "agent/t1")
    assert git(project.root, "branch", "--list", "agent/*") == ""


@pytest.mark.parametrize("n_files", [3, 150])  # unpack-objects below the unpack limit, index-pack above
def test_bundle_whose_base_is_missing_is_refused(project: Project, tmp_path: Path, n_files: int) -> None:
    """Commits that link to objects the repo lacks (here their base) do not land, however they arrive."""
    checkout = _checkout(project, tmp_path)
    for i in range(n_files):
        (checkout.path / f"f{i}.txt").write_text(f"file {i}\n")
    agit.commit_all(checkout, "many files")
    bundle = bundles.create_bundle(checkout, tmp_path / "t1.bundle")
    assert bundle is not None
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", str(other))
    with pytest.raises(GitError, match=r"t1\.bundle is broken or incomplete"):
        bundles.fetch_bundle(other, bundle, "agent/t1")
    assert git(other, "branch", "--list", "agent/*") == ""


def test_bundle_with_unsafe_tree_or_absent_head_does_not_land(project: Project, tmp_path: Path) -> None:
    """A tree git would refuse to receive (a `.git` entry) is refused; so is a head the pack lacks."""
    checkout = _checkout(project, tmp_path)
    blob = git(checkout.path, "hash-object", "-w", "--stdin", input_text="x\n")
    inner = git(checkout.path, "mktree", input_text=f"100644 blob {blob}\tconfig\n")
    tree = git(checkout.path, "mktree", input_text=f"040000 tree {inner}\t.git\n100644 blob {blob}\ta\n")
    evil = git(
        checkout.path,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit-tree",
        tree,
        "-p",
        checkout.base_commit,
        "-m",
        "plant .git/config",
    )
    git(checkout.path, "update-ref", "refs/heads/agent/t1", evil)
    bundle = bundles.create_bundle(checkout, tmp_path / "evil.bundle")
    assert bundle is not None
    with pytest.raises(BundleRejectedError, match=r"refused the commits in .*evil\.bundle: .*hasDotgit"):
        bundles.fetch_bundle(project.root, bundle, "agent/t1")
    # a header naming a commit its pack does not carry: the objects come in, the branch never moves
    git(checkout.path, "reset", "-q", "--hard", checkout.base_commit)
    (checkout.path / "new.txt").write_text("hello\n")
    head = agit.commit_all(checkout, "one file")
    data = bundles.create_bundle(checkout, tmp_path / "t1.bundle")
    assert data is not None
    absent = data.with_name("absent.bundle")
    absent.write_bytes(data.read_bytes().replace(head.encode(), b"1" * 40, 1))
    with pytest.raises(GitError, match="nonexistent object"):
        bundles.fetch_bundle(project.root, absent, "agent/t1")
    assert git(project.root, "branch", "--list", "agent/*") == ""


def test_no_change_means_no_bundle(project: Project, tmp_path: Path) -> None:
    """An attempt that changed nothing produces no bundle."""
    checkout = _checkout(project, tmp_path)
    assert agit.commit_all(checkout, "nothing") == checkout.base_commit
    assert bundles.create_bundle(checkout, tmp_path / "none.bundle") is None


def test_concurrent_cache_creation_is_locked(project: Project) -> None:
    """Four workers asking for the same cache at once get one valid cache, no errors."""
    errors: list[BaseException] = []

    def use() -> None:
        try:
            agit.ensure_cache(str(project.root), force=True)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    cache = agit.cache_path(str(project.root))
    assert agit.resolve_base(cache, "main") == git(project.root, "rev-parse", "main")


def test_cache_from_bundle_when_remote_unreachable(project: Project, tmp_path: Path) -> None:
    """A worker that cannot reach the repo builds its cache from a bundle of the branches."""
    bundle = bundles.bundle_repo(project.root, tmp_path / "src.bundle")
    cache = agit.ensure_cache("https://unreachable.invalid/repo.git", bundle=bundle)
    assert agit.resolve_base(cache, "main") == git(project.root, "rev-parse", "main")
    assert agit.resolve_base(cache, None) == git(project.root, "rev-parse", "main")


def test_setup_output_is_not_committed(project: Project, tmp_path: Path) -> None:
    """Files present before the agent (setup output, copied files) are excluded from the commit."""
    checkout = _checkout(project, tmp_path)
    (checkout.path / ".venv").mkdir()
    (checkout.path / ".venv" / "lib.py").write_text("x = 1\n")
    assert agit.exclude_untracked(checkout.path) == [".venv/"]
    (checkout.path / "calc.py").write_text("def add(a, b):\n    return b + a\n")
    head = agit.commit_all(checkout, "change")
    assert agit.changed_files(checkout.path, checkout.base_commit, head) == ["calc.py"]


def test_unknown_base_is_a_clear_error(project: Project, tmp_path: Path) -> None:
    """A missing base names itself; a folder that is no repo, or a repo with no commit, says so."""
    with pytest.raises(GitError, match="base 'no-such-branch' is not a branch or commit"):
        agit.resolve_base(project.root, "no-such-branch")
    with pytest.raises(GitError, match="is not a git repository: tasks branch off its commits"):
        agit.resolve_base(tmp_path, None)
    git(tmp_path, "init", "-q", "fresh")
    with pytest.raises(GitError, match="fresh has no commits yet"):
        agit.resolve_base(tmp_path / "fresh", None)


def test_run_git_reports_git_errors_and_missing_folders(project: Project, tmp_path: Path) -> None:
    """A failing command's error names it and carries git's message; a missing folder is named as such."""
    with pytest.raises(GitError, match=r"`git rev-parse --verify no-such-rev` failed in .*: fatal: "):
        agit.run_git(project.root, "rev-parse", "--verify", "no-such-rev")
    with pytest.raises(GitError, match=r"no folder .*missing"):
        agit.run_git(tmp_path / "missing", "status")
    assert agit.run_git(project.root, "log", "-1", "--format=%s%n") == "init\n"  # only the last newline goes
    with open(tmp_path / "out", "wb") as out:
        assert agit.run_git(project.root, "cat-file", "-p", "HEAD:calc.py", stdout=out) == ""
    assert (tmp_path / "out").read_text() == (project.root / "calc.py").read_text()

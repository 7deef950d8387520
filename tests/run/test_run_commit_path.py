"""The cheap commit path: known base trees, the check that tests left the tree alone, the tip read back."""

from __future__ import annotations

from pathlib import Path

import pytest
from run_helpers import git

from agent_runner.gates.workdiff import IndexStamp, index_stamp, is_unchanged, snapshot, tree_id
from agent_runner.repo import git as agit


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout with one commit on agent/t (two tracked files), its git dir the runner's beside it."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / "a.py").write_text("A = 1\n")
    (root / "b.txt").write_text("b\n")
    git(tmp_path, "init", "-q", "-b", "agent/t", "--separate-git-dir", str(agit.runner_git_dir(root)), "repo")
    (root / ".git").unlink()  # the gitdir file: the work tree keeps no pointer to the runner's git dir
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return root


def _staged(repo: Path) -> tuple[str, IndexStamp | None]:
    with snapshot(repo) as tree:
        return tree, index_stamp(repo)


def test_unchanged_tree_is_confirmed_without_staging(repo: Path) -> None:
    """After a round's staging, an untouched working tree counts as unchanged, checked on the same index."""
    (repo / "a.py").write_text("A = 2\n")
    tree, stamp = _staged(repo)
    assert stamp is not None and index_stamp(repo) == stamp  # the one-`git status` path applies
    assert is_unchanged(repo, tree, stamp)
    assert git(repo, "write-tree") == tree


@pytest.mark.parametrize(
    "change",
    [
        lambda r: (r / "new.txt").write_text("written by the tests\n"),
        lambda r: (r / "b.txt").write_text("changed by the tests\n"),
        lambda r: (r / "b.txt").unlink(),
        # the tests staged a new file themselves: the index is no longer the one the gates saw
        lambda r: ((r / "c.txt").write_text("c\n"), git(r, "add", "c.txt")),
    ],
    ids=["new-file", "modified", "deleted", "staged-by-tests"],
)
def test_any_change_after_the_round_is_seen(repo: Path, change: object) -> None:
    """A file written, changed, deleted or staged after the round's staging counts as a change."""
    tree, stamp = _staged(repo)
    change(repo)  # type: ignore[operator]
    assert not is_unchanged(repo, tree, stamp)
    assert tree_id(repo) != tree


def test_has_commit_learns_the_base_tree(repo: Path) -> None:
    """has_commit remembers the commit's tree, so a fresh checkout's tree is known without staging."""
    head = git(repo, "rev-parse", "HEAD")
    git_dir = agit.runner_git_dir(repo)
    assert agit.has_commit(git_dir, head)
    assert agit.known_tree(git_dir, head) == git(repo, "rev-parse", "HEAD^{tree}")
    assert not agit.has_commit(git_dir, "0" * 40)
    assert agit.known_tree(git_dir, "0" * 40) is None


def test_commit_returns_the_new_tip(repo: Path) -> None:
    """commit_all returns the commit it made on the task branch, as git reports it."""
    base = git(repo, "rev-parse", "HEAD")
    (repo / "a.py").write_text("A = 3\n")
    head = agit.commit_all(agit.Checkout(repo, "agent/t", base), "change a")
    assert head == git(repo, "rev-parse", "agent/t") != base

"""Re-using a parked checkout: fast, and nothing of the previous attempt leaks into the next."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from run_helpers import Project, git

from agent_runner.config.runner import load_config
from agent_runner.core.result import WorkRequest
from agent_runner.core.task import load_task_file
from agent_runner.repo import checkouts, layout, pools, workspace
from agent_runner.repo import git as agit


def _used_checkout(project: Project, tmp_path: Path) -> tuple[Path, agit.Checkout]:
    """A checkout of a repo with an ignored folder, then everything an attempt could leave behind in it."""
    (project.root / ".gitignore").write_text("build/\n*.log\n")
    (project.root / "pkg").mkdir()
    (project.root / "pkg" / "mod.py").write_text("VALUE = 1\n")
    git(project.root, "add", "-A")
    git(project.root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "more")
    cache = agit.ensure_cache(str(project.root), force=True)
    base = agit.resolve_base(cache, None)
    co = checkouts.make_checkout(
        cache, tmp_path / "checkouts" / "first-1", branch="agent/first", base_commit=base
    )
    checkouts.give_agent_git(co)
    path = co.path
    (path / "calc.py").write_text("def add(a, b):\n    return a - b\n")  # edited
    (path / "pyproject.toml").unlink()  # deleted
    (path / "pkg" / "mod.py").write_text("VALUE = 22\n")
    (path / "stray.txt").write_text("untracked\n")
    (path / "build").mkdir()
    (path / "build" / "out.o").write_text("ignored\n")
    (path / "debug.log").write_text("ignored\n")
    nested = path / "vendor"
    nested.mkdir()
    git(nested, "init", "-q")  # a nested repository: `clean -ffdx` removes it too
    (path / ".git" / "hooks").mkdir(exist_ok=True)
    (path / ".git" / "hooks" / "post-checkout").write_text("#!/bin/sh\ntouch pwned\n")
    (path / ".git" / "hooks" / "post-checkout").chmod(0o755)
    git(path, "config", "core.hooksPath", ".git/hooks", as_agent=True)
    git(path, "config", "alias.st", "status", as_agent=True)
    git(path, "-c", "user.name=a", "-c", "user.email=a@a", "commit", "-qam", "agent work", as_agent=True)
    git(path, "branch", "agent/stale", as_agent=True)
    (path / "calc.py").write_text("def add(a, b):\n    return a * b\n")  # dirty again after the commit
    return cache, co


@pytest.mark.parametrize("has_index_copy", [True, False])
def test_refresh_leaves_nothing_of_the_last_attempt(
    project: Project, tmp_path: Path, has_index_copy: bool
) -> None:
    """Edits, deletions, untracked, ignored and nested-repo files, hooks, config and branches are all gone."""
    cache, co = _used_checkout(project, tmp_path)
    if not has_index_copy:  # e.g. parked by an older runner: every file is verified by content instead
        checkouts.trusted_index(co.path).unlink()
    base = co.base_commit
    fresh = checkouts.refresh_checkout(cache, co.path, branch="agent/second", base_commit=base)
    path = fresh.path
    assert git(path, "status", "--porcelain", "--ignored", "--untracked-files=all") == ""
    assert git(path, "rev-parse", "HEAD") == base
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD") == "agent/second"
    assert (path / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert (path / "pkg" / "mod.py").read_text() == "VALUE = 1\n"
    assert (path / "pyproject.toml").exists()
    assert not any((path / name).exists() for name in ("stray.txt", "build", "debug.log", "vendor", "pwned"))
    assert not (path / ".git").exists()  # the agent's copy goes; the next attempt gets a new one
    assert git(path, "config", "--local", "--list").find("alias.st") == -1
    branches = git(path, "branch", "--format=%(refname:short)").split()
    assert "agent/second" in branches and not {"agent/first", "agent/stale"} & set(branches)
    assert checkouts.trusted_index(path).read_bytes() == (agit.runner_git_dir(path) / "index").read_bytes()


def test_same_size_edit_in_the_same_second_is_restored(project: Project, tmp_path: Path) -> None:
    """An in-place edit right after the checkout, keeping size and mtime, is still found and undone."""
    cache = agit.ensure_cache(str(project.root))
    base = agit.resolve_base(cache, None)
    co = checkouts.make_checkout(
        cache, tmp_path / "checkouts" / "one-1", branch="agent/one", base_commit=base
    )
    target = co.path / "calc.py"
    os.utime(target, ns=(10**18, 10**18))  # an old file (not racily clean), as in any checkout of size
    git(co.path, "update-index", "-q", "--refresh")
    shutil.copy2(agit.runner_git_dir(co.path) / "index", checkouts.trusted_index(co.path))
    before = target.stat()
    target.write_text(target.read_text().replace("a + b", "a - b"))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert target.stat().st_size == before.st_size and target.stat().st_ino == before.st_ino
    checkouts.refresh_checkout(cache, co.path, branch="agent/two", base_commit=base)
    assert "a + b" in target.read_text()


def test_refresh_moves_to_a_newer_base(project: Project, tmp_path: Path) -> None:
    """A parked checkout refreshed onto a later base commit has exactly that commit's files."""
    cache, co = _used_checkout(project, tmp_path)
    (project.root / "new.py").write_text("NEW = True\n")
    git(project.root, "add", "-A")
    git(project.root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "later")
    newer = git(project.root, "rev-parse", "HEAD")
    agit.ensure_cache(str(project.root), need=newer)
    fresh = checkouts.refresh_checkout(cache, co.path, branch="agent/later", base_commit=newer)
    assert git(fresh.path, "status", "--porcelain", "--ignored") == ""
    assert (fresh.path / "new.py").read_text() == "NEW = True\n"
    assert git(fresh.path, "diff", "--stat", newer) == ""


def test_park_and_take_carry_the_index_copy(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parking moves the runner's index copy with the checkout; taking it brings it back, and only once."""
    monkeypatch.setattr(pools, "PARK_MIN_INDEX_BYTES", 0)
    _, co = _used_checkout(project, tmp_path)
    pool = tmp_path / "pool" / "repo"
    assert pools.park(co.path, pool)
    assert not checkouts.trusted_index(co.path).exists()
    (parked,) = [p for p in pool.iterdir() if p.is_dir() and not p.name.endswith(".git")]
    assert agit.runner_git_dir(parked).is_dir()
    assert checkouts.trusted_index(parked).is_file()
    dest = tmp_path / "checkouts" / "second-1"
    checkouts.trusted_index(dest).write_text("stale copy of a crashed attempt")
    assert pools.take_parked(pool, dest)
    assert agit.runner_git_dir(dest).is_dir() and checkouts.trusted_index(dest).read_bytes()[:4] == b"DIRC"
    assert not pools.take_parked(pool, tmp_path / "checkouts" / "third-1")
    checkouts.remove_checkout(dest)
    assert not dest.exists() and not checkouts.trusted_index(dest).exists()
    assert not agit.runner_git_dir(dest).exists()


def test_checkouts_made_ahead_are_taken_once_at_their_base_and_dropped_when_it_moves(
    project: Project, tmp_path: Path
) -> None:
    """A checkout made ahead is clean, detached at its base, taken once, and replaced when the base moves."""
    pool = tmp_path / "pool" / "repo"
    cache, old, made = _made_ahead(project, pool)
    assert git(made, "status", "--porcelain") == ""
    assert (agit.runner_git_dir(made) / "HEAD").read_text().strip() == old
    assert checkouts.trusted_index(made).is_file()
    (project.root / "more.py").write_text("MORE = 1\n")
    git(project.root, "add", "-A")
    git(project.root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "more")
    new = git(project.root, "rev-parse", "HEAD")
    agit.ensure_cache(str(project.root), need=new)
    assert pools.make_ready(cache, pool, new) is not None
    ready = pools.ready_dir(pool)
    assert all(entry.name.startswith(new) for entry in ready.iterdir())  # the old base's went, index too
    dest = tmp_path / "checkouts" / "t-1"
    assert not pools.take_ready(ready, old, dest)
    assert pools.take_ready(ready, new, dest) and not pools.take_ready(ready, new, tmp_path / "x")
    co = checkouts.adopt(dest, branch="agent/t", base_commit=new)
    assert git(co.path, "rev-parse", "--abbrev-ref", "HEAD") == "agent/t"
    assert (co.path / "more.py").exists() and git(co.path, "status", "--porcelain") == ""
    with pytest.raises(agit.GitError, match="not at"):
        checkouts.adopt(dest, branch="agent/u", base_commit=old)  # refuses one at another commit


def test_made_ahead_pool_is_capped_and_prefers_a_parked_checkout(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parked checkout is refreshed into the made-ahead pool (nothing of its attempt left); it is capped."""
    monkeypatch.setattr(pools, "PARK_MIN_INDEX_BYTES", 0)
    monkeypatch.setattr(pools, "READY_SIZE", 2)
    cache, co = _used_checkout(project, tmp_path)
    base = agit.resolve_base(cache, None)
    pool = tmp_path / "pool" / "repo"
    assert pools.park(co.path, pool)
    made = pools.make_ready(cache, pool, base)
    assert made is not None and not list(pool.iterdir())  # the parked one was used
    assert git(made, "status", "--porcelain", "--ignored") == ""
    assert pools.make_ready(cache, pool, base) is not None
    assert pools.make_ready(cache, pool, base) is None  # two are waiting already


def test_a_checkout_made_ahead_is_taken_without_looking_at_the_cache(
    project: Project, tmp_path: Path
) -> None:
    """With the request's base commit, a made-ahead checkout is used as is, its base tree from its name."""
    project.task("fast", project.edit_script("fast", "f.py", "f = 1\n"))
    paths = layout.AttemptPaths.under(tmp_path / "state", "fast", 1)
    cache, base, _ = _made_ahead(project, pools.pool_dir(paths, str(project.root)))
    settings = load_config(project.root).model_dump(mode="json", by_alias=True)
    task = load_task_file(project.tasks / "fast.md")
    request = WorkRequest(task=task, repo=str(project.root), base_commit=base, config=settings)
    os.replace(cache, cache.with_name("moved-away"))  # a look at the cache would now fail or rebuild it
    checkout = workspace.open_checkout(request, paths)
    assert not cache.exists()
    assert checkout.path == paths.checkout and checkout.branch == "agent/fast"
    assert checkout.base_tree == git(project.root, "rev-parse", f"{base}^{{tree}}")
    assert git(checkout.path, "rev-parse", "--abbrev-ref", "HEAD") == "agent/fast"


def test_a_checkout_made_ahead_without_a_tree_in_its_name_is_still_taken(
    project: Project, tmp_path: Path
) -> None:
    """A made-ahead checkout named the old way (no tree) is adopted; its base tree is then unknown."""
    pool = tmp_path / "pool" / "repo"
    _, base, made = _made_ahead(project, pool)
    assert made.name.split(".")[1] == git(project.root, "rev-parse", "HEAD^{tree}")
    old_style = made.with_name(f"{base}.{os.getpid()}.1")
    os.replace(made, old_style)
    os.replace(agit.runner_git_dir(made), agit.runner_git_dir(old_style))
    dest = tmp_path / "checkouts" / "t-1"
    name = pools.take_ready(pools.ready_dir(pool), base, dest)
    assert name == old_style.name and pools.tree_in(name) is None
    assert checkouts.adopt(dest, branch="agent/t", base_commit=base).path == dest


def _made_ahead(project: Project, pool: Path) -> tuple[Path, str, Path]:
    """Return the project's cache, its base commit, and a checkout made ahead there into `pool`."""
    cache = agit.ensure_cache(str(project.root))
    base = agit.resolve_base(cache, None)
    made = pools.make_ready(cache, pool, base)
    assert made is not None
    return cache, base, made

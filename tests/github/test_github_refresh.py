"""`refresh` after a merge to main: rebase, re-verify, push with a lease, update PRs, re-queue what broke."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from github_helpers import agent_commit, git, make_result, make_task
from refresh_helpers import GitVerifier, accept_with_pr, person_merges

from agent_runner.config.github import GitHubConfig
from agent_runner.config.runner import RunnerConfig
from agent_runner.core.errors import GitHubError
from agent_runner.core.task import TaskStatus
from agent_runner.core.train import TrainStep
from agent_runner.github.push import push_branch
from agent_runner.github.records import PullInfo, trailing_task_ids
from agent_runner.github.refresh.refresher import RefreshOutcome
from agent_runner.github.refresh.scope import open_pulls, refresh_all
from agent_runner.github.refresh.train import TrainRequeuer
from agent_runner.github.sections import section
from agent_runner.queue.intake import open_queue
from agent_runner.testing.fake_github import FakeGitHub


@pytest.fixture
def config(gh_config: GitHubConfig, tmp_path: Path) -> RunnerConfig:
    """The runner's config with GitHub pointed at the fake, its queue file outside the repo."""
    return RunnerConfig(github=gh_config, queue=str(tmp_path / "queue.jsonl"))


def test_refresh_after_a_merge_rebases_the_green_and_requeues_the_conflicting_and_the_red(
    source: Path, origin: Path, fake: FakeGitHub, config: RunnerConfig, token_env: dict[str, str]
) -> None:
    """A person merges a PR to main: one branch is rebased, re-verified, pushed and its PR updated; a
    conflicting one and one red only with the new main are queued again with the reason on their PRs."""
    old = {t: accept_with_pr(source, config, token_env, t, files) for t, files in [
        ("aa", {"aa.py": "a = 1\n"}), ("bb", {"app.py": "def add(a, b):\n    return a + b + 0\n"}),
        ("cc", {"cc.py": "c = 1\n"})]}  # fmt: skip
    main = person_merges(source, fake, {"app.py": "def add(a, b):\n    return b + a\n"})
    verifier, requeuer = (
        GitVerifier(red={"cc": "FAILED test_cc.py::test_with_new_add"}),
        TrainRequeuer(open_queue(source, config)),
    )
    rows = refresh_all(source, config, verifier=verifier, requeuer=requeuer, environ=token_env)
    assert [(r.task, r.pr, r.outcome) for r in rows] == [
        ("aa", 1, RefreshOutcome.REBASED),
        ("bb", 2, RefreshOutcome.REQUEUED),
        ("cc", 3, RefreshOutcome.REQUEUED),
    ]
    new_aa = git(origin, "rev-parse", "refs/heads/agent/aa").strip()
    assert new_aa == rows[0].head != old["aa"] and git(origin, "rev-parse", f"{new_aa}^").strip() == main
    assert git(source, "rev-parse", "refs/heads/agent/aa").strip() == new_aa  # the local branch agrees
    refreshed = section(fake.store.pulls[1]["body"], "refresh") or ""
    assert f"`{main[:12]}`" in refreshed and "| tests |" in refreshed
    assert trailing_task_ids(fake.store.pulls[1]["body"]) == ["aa"]
    assert git(origin, "rev-parse", "refs/heads/agent/bb").strip() == old["bb"]  # not pushed
    assert "No longer applies" in (section(fake.store.pulls[2]["body"], "refresh") or "")
    states = open_queue(source, config).refresh()
    assert [states[t].status for t in ("aa", "bb", "cc")] == [TaskStatus.FINISHED, TaskStatus.QUEUED,
                                                              TaskStatus.QUEUED]  # fmt: skip
    bb, cc = states["bb"], states["cc"]
    assert (bb.spent, bb.attempt) == (0, 1)  # a new attempt, not a spent one
    assert "app.py" in bb.reason and "test_with_new_add" in cc.reason
    assert bb.task is not None and "app.py" in bb.task.instructions.split("Why this task runs again")[1]


def test_a_second_refresh_with_nothing_moved_does_nothing(
    source: Path, origin: Path, fake: FakeGitHub, config: RunnerConfig, token_env: dict[str, str]
) -> None:
    """Branches already on main's head are left alone: no verify job, no push, no PR edit."""
    accept_with_pr(source, config, token_env, "aa", {"aa.py": "a = 1\n"})
    person_merges(source, fake, {"app.py": "x = 2\n"})
    verifier, requeuer = GitVerifier(), TrainRequeuer(open_queue(source, config))
    first = refresh_all(source, config, verifier=verifier, requeuer=requeuer, environ=token_env)
    assert [r.outcome for r in first] == [RefreshOutcome.REBASED]
    edits, head = len(fake.calls("PATCH", r"/pulls/\d+$")), git(origin, "rev-parse", "refs/heads/agent/aa")
    again = refresh_all(source, config, verifier=verifier, requeuer=requeuer, environ=token_env)
    assert [(r.outcome, r.head) for r in again] == [(RefreshOutcome.UNCHANGED, first[0].head)]
    assert len(verifier.calls) == 1 and len(fake.calls("PATCH", r"/pulls/\d+$")) == edits
    assert git(origin, "rev-parse", "refs/heads/agent/aa") == head


def test_closed_prs_are_left_out_and_a_verify_failure_is_skipped_not_requeued(
    source: Path, fake: FakeGitHub, config: RunnerConfig, token_env: dict[str, str]
) -> None:
    """A PR someone closed is not refreshed; a verify job that cannot run re-queues nothing."""
    accept_with_pr(source, config, token_env, "aa", {"aa.py": "a = 1\n"})
    accept_with_pr(source, config, token_env, "bb", {"bb.py": "b = 1\n"})
    fake.store.pulls[2]["state"] = "closed"
    person_merges(source, fake, {"app.py": "x = 2\n"})

    class Down:
        def verify(self, *args: object, **kwargs: object) -> object:
            raise GitHubError("no machine free")

    requeuer = TrainRequeuer(open_queue(source, config))
    rows = refresh_all(source, config, verifier=Down(), requeuer=requeuer, environ=token_env)  # type: ignore[arg-type]
    assert [(r.task, r.outcome) for r in rows] == [("aa", RefreshOutcome.SKIPPED)]
    assert "no machine free" in rows[0].reason
    assert open_queue(source, config).refresh()["aa"].status == TaskStatus.FINISHED


def test_push_with_a_lease_never_overwrites_someone_elses_push(source: Path, origin: Path) -> None:
    """A lease on the commit refresh read refuses the push when the branch moved on the remote since."""
    base = git(source, "rev-parse", "main").strip()
    git(source, "push", "-q", "origin", f"{base}:refs/heads/agent/aa")
    (source / "theirs.py").write_text("t = 1\n")
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "theirs")
    theirs = git(source, "rev-parse", "HEAD").strip()
    git(source, "push", "-q", "origin", f"{theirs}:refs/heads/agent/aa")  # someone pushed meanwhile
    with pytest.raises(GitHubError, match="git push agent/aa"):
        push_branch(source, remote="origin", branch="agent/aa", commit=base, token=None, lease=base)
    assert git(origin, "rev-parse", "refs/heads/agent/aa").strip() == theirs


def test_a_change_that_reached_main_another_way_is_in_base_and_its_pr_says_so(
    source: Path, fake: FakeGitHub, config: RunnerConfig, token_env: dict[str, str]
) -> None:
    """The same change merged through another PR (an integration PR): no verify job, no re-queue, the PR
    is told it can close."""
    accept_with_pr(source, config, token_env, "aa", {"aa.py": "a = 1\n"})
    person_merges(source, fake, {"aa.py": "a = 1\n"})
    verifier = GitVerifier()
    rows = refresh_all(source, config, verifier=verifier, requeuer=TrainRequeuer(open_queue(source, config)),
                       environ=token_env)  # fmt: skip
    assert [(r.task, r.outcome) for r in rows] == [("aa", RefreshOutcome.IN_BASE)] and verifier.calls == []
    assert "Already in `main`" in (section(fake.store.pulls[1]["body"], "refresh") or "")
    assert open_queue(source, config).refresh()["aa"].status == TaskStatus.FINISHED


@pytest.mark.parametrize(
    ("head", "base", "why"),
    [
        ("agent/aa", "main:refs/heads/agent/x", "not a branch name"),
        ("agent/aa", "-upload-pack=x", "not a branch name"),
        ("agent/other", "main", "not the task's branch"),
        ("agent/aa", "agent/bb", "another agent branch"),
    ],
)
def test_a_pr_whose_refs_refresh_would_not_trust_is_skipped(head: str, base: str, why: str) -> None:
    """What GitHub says a PR's head and base are is re-checked before any git command sees them."""
    pull = PullInfo(number=1, url="u", title="t", body="", state="open", draft=False, merged=False,
                    head_ref=head, head_sha="", base_ref=base)  # fmt: skip
    task = make_task(id="aa")
    found, skipped = open_pulls(
        [(task, make_result("0" * 40, task_id="aa"), "https://x/pull/1")], lambda n: pull
    )
    assert found == [] and why in skipped[0].reason


def test_someone_pushing_to_the_branch_during_the_verify_job_is_never_overwritten(
    source: Path, origin: Path, fake: FakeGitHub, config: RunnerConfig, token_env: dict[str, str]
) -> None:
    """The push carries a lease on the head refresh read: a push made meanwhile stays, the row is skipped."""
    accept_with_pr(source, config, token_env, "aa", {"aa.py": "a = 1\n"})
    person_merges(source, fake, {"app.py": "x = 2\n"})
    theirs = agent_commit(source, "theirs", {"aa.py": "a = 2\n"})

    class PushedMeanwhile(GitVerifier):
        def verify(self, *args: Any, **kwargs: Any) -> TrainStep:
            git(source, "push", "-q", "-f", "origin", f"{theirs}:refs/heads/agent/aa")
            return super().verify(*args, **kwargs)

    rows = refresh_all(source, config, verifier=PushedMeanwhile(),
                       requeuer=TrainRequeuer(open_queue(source, config)), environ=token_env)  # fmt: skip
    assert [r.outcome for r in rows] == [RefreshOutcome.SKIPPED] and "not pushed" in rows[0].reason
    assert git(origin, "rev-parse", "refs/heads/agent/aa").strip() == theirs
    assert section(fake.store.pulls[1]["body"], "refresh") is None

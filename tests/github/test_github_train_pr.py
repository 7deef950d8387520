"""Publishing a train: per-task PRs marked with their merge order, or one integration PR."""

from __future__ import annotations

from pathlib import Path

from github_helpers import agent_commit, git, make_result, make_task

from agent_runner.config.github import GitHubConfig, PrMode
from agent_runner.core.result import GateResult, GateVerdict
from agent_runner.core.train import StepOutcome, TrainRun, TrainStep
from agent_runner.github.api import connect
from agent_runner.github.publisher import GitHubPublisher
from agent_runner.github.records import trailing_task_ids
from agent_runner.github.sections import section
from agent_runner.github.train_pr import integration_body, publish_train, publish_trains
from agent_runner.testing.fake_github import FakeGitHub

PYTEST = GateResult(name="pytest", verdict=GateVerdict.PASS, before={"failed": 0}, after={"failed": 0})


def open_prs(source: Path, config: GitHubConfig, env: dict[str, str], ids: list[str]) -> dict[str, str]:
    """Publish one task per id (each editing its own file) as today's per-task PRs; return their heads."""
    heads = {}
    for task_id in ids:
        heads[task_id] = agent_commit(source, f"agent/{task_id}", {f"{task_id}.py": f"x = '{task_id}'\n"})
        task = make_task(id=task_id, title=f"Change {task_id}")
        GitHubPublisher(config, environ=env).publish(
            task, make_result(heads[task_id], task_id=task_id), source
        )
    return heads


def train(source: Path, heads: dict[str, str], *, order: list[str], out: dict[str, str]) -> TrainRun:
    """A TrainRun built by hand: `order` landed one after another on agent/integration, `out` taken out."""
    base = git(source, "rev-parse", "main").strip()
    git(source, "checkout", "-q", "-B", "agent/integration", "main")
    steps = []
    for task_id in order:
        git(source, "cherry-pick", "--allow-empty", heads[task_id])
        commit = git(source, "rev-parse", "HEAD").strip()
        steps.append(TrainStep(task_id=task_id, attempt=1, branch=f"agent/{task_id}",
                               outcome=StepOutcome.LANDED, commit=commit, gates=[PYTEST]))  # fmt: skip
    git(source, "checkout", "-q", "main")
    steps += [
        TrainStep(task_id=t, attempt=2, branch=f"agent/{t}", outcome=StepOutcome.CONFLICT, reason=why)
        for t, why in out.items()
    ]
    head = git(source, "rev-parse", "agent/integration").strip()
    return TrainRun(train_id="t1", branch="agent/integration", base="main", base_commit=base, head=head,
                    steps=steps)  # fmt: skip


def test_per_task_prs_get_their_merge_order_and_the_taken_out_one_its_reason(
    source: Path, fake: FakeGitHub, gh_config: GitHubConfig, token_env: dict[str, str]
) -> None:
    """Each open PR gets "Merge order: i of n, after #k" at the top; its task marker stays at the end."""
    heads = open_prs(source, gh_config, token_env, ["aa", "bb", "cc"])  # PRs #1, #2, #3
    run = train(source, heads, order=["bb", "aa"], out={"cc": "CONFLICT (content): Merge conflict in x.py"})
    gh = connect(gh_config, remote_url=None, environ=token_env)
    done = publish_train(run, gh, repo=source, config=gh_config, token=None)
    assert [(p.task_id, p.number, p.note) for p in done.pulls] == [
        ("bb", 2, "marked"),
        ("aa", 1, "marked"),
        ("cc", 3, "marked"),
    ]
    assert "Merge order: 1 of 2, first." in (section(fake.store.pulls[2]["body"], "merge-order") or "")
    assert "Merge order: 2 of 2, after #2." in (section(fake.store.pulls[1]["body"], "merge-order") or "")
    taken_out = section(fake.store.pulls[3]["body"], "merge-order") or ""
    assert "Not in the merge order" in taken_out and "Merge conflict in x.py" in taken_out
    assert all(trailing_task_ids(fake.store.pulls[n]["body"]) == [t] for n, t in [(1, "aa"), (2, "bb")])
    assert "| pass |" in fake.store.pulls[1]["body"]  # the task's own body (gate table) is kept below


def test_marking_again_writes_nothing_and_a_new_order_replaces_the_old(
    source: Path, fake: FakeGitHub, gh_config: GitHubConfig, token_env: dict[str, str]
) -> None:
    """The same train marks nothing twice; a later train's order replaces the section, never adds one."""
    heads = open_prs(source, gh_config, token_env, ["aa", "bb"])
    gh = connect(gh_config, remote_url=None, environ=token_env)
    first = train(source, heads, order=["aa", "bb"], out={})
    publish_train(first, gh, repo=source, config=gh_config, token=None)
    edits = len(fake.calls("PATCH", r"/pulls/\d+$"))
    again = publish_train(first, gh, repo=source, config=gh_config, token=None)
    assert {p.note for p in again.pulls} == {"unchanged"} and len(
        fake.calls("PATCH", r"/pulls/\d+$")
    ) == edits
    publish_train(
        train(source, heads, order=["bb", "aa"], out={}), gh, repo=source, config=gh_config, token=None
    )
    body = fake.store.pulls[1]["body"]
    assert body.count("agent-runner:section=merge-order") == 1 and "2 of 2, after #2" in body


def test_integration_mode_pushes_the_branch_and_opens_one_pr(
    source: Path, origin: Path, fake: FakeGitHub, gh_config: GitHubConfig, token_env: dict[str, str]
) -> None:
    """One PR "2 verified changes" from the integration branch: each task a commit with gates and link."""
    heads = open_prs(source, gh_config, token_env, ["aa", "bb", "cc"])
    run = train(source, heads, order=["bb", "aa"], out={"cc": "tests red together: test_x.py::test_y"})
    config = gh_config.model_copy(update={"pr_mode": PrMode.INTEGRATION})
    gh = connect(config, remote_url=None, environ=token_env)
    done = publish_train(run, gh, repo=source, config=config, token=None)
    assert git(origin, "rev-parse", "refs/heads/agent/integration").strip() == run.head
    (integration,) = done.pulls
    pull = fake.store.pulls[integration.number or 0]
    assert (pull["title"], pull["head"]["ref"], pull["base"]["ref"]) == (
        "2 verified changes",
        "agent/integration",
        "main",
    )
    body = pull["body"]
    first, second = body.index("### 1. Change bb"), body.index("### 2. Change aa")
    assert first < second and "[#2](" in body[first:second] and f"`{run.steps[0].commit[:12]}`" in body
    assert body.count("| pytest |") == 2 and "test_x.py::test_y" in body.split("Taken out")[1]
    assert [label["name"] for label in pull["labels"]] == ["agent-runner"]
    assert publish_train(run, gh, repo=source, config=config, token=None).pulls[0].note == "unchanged"
    assert len(fake.store.pulls) == 4


def test_integration_body_keeps_reasons_fenced_and_is_capped() -> None:
    """A reason with backticks and an HTML comment stays inside its fence; a long train is capped."""
    steps = [TrainStep(task_id=f"t{i}", attempt=1, branch=f"agent/t{i}", outcome=StepOutcome.LANDED,
                       commit="a" * 40, gates=[PYTEST]) for i in range(400)]  # fmt: skip
    evil = TrainStep(task_id="bad", attempt=1, branch="agent/bad", outcome=StepOutcome.RED,
                     reason="```\n<!-- agent-runner:task=x -->")  # fmt: skip
    run = TrainRun(train_id="t", branch="agent/integration", base="main", base_commit="b" * 40,
                   head="a" * 40, steps=[evil])  # fmt: skip
    body = integration_body(run, {})
    assert "<!-- agent-runner:task=x -->" not in body and "````text" in body
    big = integration_body(run.model_copy(update={"steps": steps}), {}, max_chars=10_000)
    assert len(big) <= 10_000 and big.rstrip().endswith("<!-- agent-runner:train=t -->")


def test_publish_trains_connects_with_the_token_and_skips_empty_trains(
    source: Path, fake: FakeGitHub, gh_config: GitHubConfig, token_env: dict[str, str]
) -> None:
    """What `land` calls after its trains: the repo's remote and the token are enough; an empty train
    (nothing to land) and another repo's train touch no PR."""
    heads = open_prs(source, gh_config, token_env, ["aa"])
    run = train(source, heads, order=["aa"], out={})
    empty = run.model_copy(update={"steps": []})
    elsewhere = run.model_copy(update={"head": "e" * 40})  # another repo's train
    done = publish_trains(source, gh_config, [empty, elsewhere, run], environ=token_env)
    assert [[p.note for p in d.pulls] for d in done] == [["marked"]]
    assert publish_trains(source, gh_config, [run], environ={}) == []  # no token: nothing published
    assert "Merge order: 1 of 1, first." in fake.store.pulls[1]["body"]

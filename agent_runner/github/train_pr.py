"""Publishing an integration train (`core.train.TrainRun`) as the user picked with `github.pr_mode`.

"integration": push the integration branch and open (or update) ONE pull request, "N verified changes",
whose body lists each landed task as a commit with its gate table and a link to the task's own PR (else its
branch). "per-task": each task keeps its own PR; the open ones get a "Merge order: 2 of 5, after #12"
section at the top of their body (a PR taken out of the train says why instead). Both are safe to repeat:
an unchanged body is not written again.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agent_runner.config.github import GitHubConfig, PrMode
from agent_runner.core.errors import GitHubError
from agent_runner.core.redact import Redactor
from agent_runner.core.train import TrainRun, TrainStep
from agent_runner.github.api import GitHubRepo, connect
from agent_runner.github.body import defuse, fenced, gate_table
from agent_runner.github.publisher import GitHubPublisher
from agent_runner.github.push import push_branch, remote_url, resolve
from agent_runner.github.records import PullInfo
from agent_runner.github.sections import set_section

ORDER_SECTION = "merge-order"
TRAIN_MARKER = "<!-- agent-runner:train={train_id} -->"


@dataclass(frozen=True)
class TrainPull:
    """What publishing a train did to one pull request (`task_id` None: the integration PR)."""

    task_id: str | None
    number: int | None
    url: str | None
    note: str


@dataclass(frozen=True)
class TrainPublication:
    """The pull requests one train touched, in merge order."""

    mode: PrMode
    pulls: list[TrainPull] = field(default_factory=list)


def publish_trains(
    repo: Path, config: GitHubConfig, runs: list[TrainRun], *, environ: Mapping[str, str] | None = None
) -> list[TrainPublication]:
    """Publish each train of `repo` (after `run-agents land`) with the token in `environ`, if there is one.

    Trains with no step, or whose head is not in `repo` (another repo's train), are left out.
    """
    env = dict(os.environ if environ is None else environ)
    runs = [run for run in runs if run.steps and resolve(repo, run.head) == run.head]
    token = env.get("GITHUB_TOKEN") or env.get("GH_TOKEN")
    if not runs or not token:  # no token: the trains stay local, as results do
        return []
    gh = connect(config, remote_url=remote_url(repo, config.remote), environ=env)
    redactor = Redactor.from_env(env)
    return [publish_train(run, gh, repo=repo, config=config, token=token, redactor=redactor) for run in runs]


def publish_train(
    run: TrainRun,
    gh: GitHubRepo,
    *,
    repo: Path,
    config: GitHubConfig,
    token: str | None,
    redactor: Redactor | None = None,
) -> TrainPublication:
    """Publish `run` as `config.pr_mode` says; return what happened to each pull request."""
    redactor = redactor or Redactor()
    pulls = find_task_pulls(run, gh, config)
    if config.pr_mode is PrMode.INTEGRATION:
        push_branch(repo, remote=config.remote, branch=run.branch, commit=run.head, token=token)
        return TrainPublication(PrMode.INTEGRATION, [upsert_integration(run, gh, pulls, config, redactor)])
    return TrainPublication(PrMode.PER_TASK, mark_merge_order(run, gh, pulls, redactor))


def find_task_pulls(run: TrainRun, gh: GitHubRepo, config: GitHubConfig) -> dict[str, PullInfo]:
    """Return each step's own pull request by task id (steps without one are left out)."""
    finder = GitHubPublisher(config, environ={})
    found = {step.task_id: finder.find_pull(gh, step.task_id, step.branch) for step in run.steps}
    return {task_id: pull for task_id, pull in found.items() if pull is not None}


# -- one integration PR -------------------------------------------------------------------------------------
def upsert_integration(
    run: TrainRun, gh: GitHubRepo, pulls: dict[str, PullInfo], config: GitHubConfig, redactor: Redactor
) -> TrainPull:
    """Open or update the integration branch's PR; return it."""
    if not run.landed:
        return TrainPull(None, None, None, "nothing landed: no integration PR")
    title = integration_title(len(run.landed))
    body = redactor.text(integration_body(run, pulls, max_chars=config.body_max_chars))
    existing = [p for p in gh.pulls_for_branch(run.branch) if p.state == "open"]
    if existing and (existing[0].title, existing[0].body) == (title, body):
        return TrainPull(None, existing[0].number, existing[0].url, "unchanged")
    if existing:
        pull, note = gh.edit_pull(existing[0].number, title=title, body=body), "updated"
    else:
        pull = gh.create_pull(title=title, body=body, head=run.branch, base=run.base, draft=False)
        note = "opened"
    missing = [label for label in config.labels if label not in pull.labels]
    if missing:
        gh.add_labels(pull.number, missing)
    return TrainPull(None, pull.number, pull.url, note)


def integration_title(n_landed: int) -> str:
    """Return the integration PR's title: "N verified changes"."""
    return f"{n_landed} verified change{'' if n_landed == 1 else 's'}"


def integration_body(run: TrainRun, pulls: dict[str, PullInfo], *, max_chars: int = 60_000) -> str:
    """Return the integration PR's body: each landed task as a commit with its gates, then those taken out."""
    head = [
        f"The integration branch `{run.branch}`: {integration_title(len(run.landed))} on `{run.base}` "
        f"(from `{run.base_commit[:12]}`), applied one at a time by **agent-runner**. Every commit passed "
        "the gates with all the earlier ones in: merging this PR merges them all.",
        "",
    ]
    steps = [_landed_entry(i, step, pulls.get(step.task_id)) for i, step in enumerate(run.landed, 1)]
    out = _taken_out(run.taken_out, pulls)
    marker = TRAIN_MARKER.format(train_id=run.train_id)
    text = "\n".join([*head, *steps, *out]).rstrip()
    budget = max_chars - len(marker) - 40
    if len(text) > budget:
        text = text[:budget] + "\n\n…(truncated)"
    return f"{text}\n\n{marker}\n"


def _landed_entry(index: int, step: TrainStep, pull: PullInfo | None) -> str:
    title = _one_line(pull.title) if pull is not None else step.task_id
    return "\n".join(
        [
            f"### {index}. {title}",
            f"Task `{step.task_id}` (attempt {step.attempt}), commit `{(step.commit or '?')[:12]}`; "
            f"{_link(step, pull)}.",
            "",
            gate_table(step.gates),
            "",
        ]
    )


def _taken_out(steps: list[TrainStep], pulls: dict[str, PullInfo]) -> list[str]:
    if not steps:
        return []
    lines = ["### Taken out and queued again", ""]
    for step in steps:
        lines += [f"- `{step.task_id}` ({step.outcome.value}; {_link(step, pulls.get(step.task_id))}):", ""]
        lines += [fenced(step.reason or "(no reason given)"), ""]
    return lines


def _link(step: TrainStep, pull: PullInfo | None) -> str:
    if pull is not None:
        return f"its own PR [#{pull.number}]({pull.url})"
    return f"branch `{step.branch}` (no PR; `run-agents show {step.task_id}`)"


def _one_line(text: str) -> str:
    return defuse(" ".join(text.split()))[:200] or "(untitled)"


# -- per-task PRs, marked with their merge order ----------------------------------------------------------
def mark_merge_order(
    run: TrainRun, gh: GitHubRepo, pulls: dict[str, PullInfo], redactor: Redactor
) -> list[TrainPull]:
    """Put the merge-order section on each step's open PR; return what happened to each step."""
    marks = {step.task_id: order_text(run, step, pulls) for step in run.steps}
    return [
        _mark(gh, step, pulls.get(step.task_id), redactor.text(marks[step.task_id])) for step in run.steps
    ]


def order_text(run: TrainRun, step: TrainStep, pulls: dict[str, PullInfo]) -> str:
    """Return the merge-order section for one step: its place, and the PR to merge before it."""
    landed = run.landed
    if step not in landed:
        return (
            f"**Not in the merge order** of train `{run.train_id}` ({step.outcome.value} with the earlier "
            f"changes in): queued again as a new attempt.\n\n{fenced(step.reason or '(no reason given)')}"
        )
    index = landed.index(step)
    before = landed[index - 1] if index else None
    after = "first" if before is None else f"after {_ref(before, pulls.get(before.task_id))}"
    where = f"integration branch `{run.branch}`, commit `{(step.commit or '?')[:12]}`"
    return (
        f"**Merge order: {index + 1} of {len(landed)}, {after}.** Verified with every earlier change of "
        f"train `{run.train_id}` in ({where})."
    )


def _ref(step: TrainStep, pull: PullInfo | None) -> str:
    return f"#{pull.number}" if pull is not None else f"`{step.branch}`"


def _mark(gh: GitHubRepo, step: TrainStep, pull: PullInfo | None, text: str) -> TrainPull:
    if pull is None:
        return TrainPull(step.task_id, None, None, "no PR")
    if pull.state != "open":
        return TrainPull(step.task_id, pull.number, pull.url, f"PR is {pull.state}: left as it is")
    body = set_section(pull.body, ORDER_SECTION, text)
    if body == pull.body:
        return TrainPull(step.task_id, pull.number, pull.url, "unchanged")
    try:
        gh.edit_pull(pull.number, title=pull.title, body=body)
    except GitHubError as exc:
        return TrainPull(step.task_id, pull.number, pull.url, f"not marked: {exc}")
    return TrainPull(step.task_id, pull.number, pull.url, "marked")

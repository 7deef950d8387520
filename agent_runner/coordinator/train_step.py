"""One step of the integration train: results applied onto a head by git alone, then verified by a worker.

`apply_picks` makes the commits on the coordinator with git only (a three-way merge of each result onto
the head, as a cherry-pick; nothing from the results runs). `verify` sends them to a worker as a verify
job (core/verify.py): the gates run the agents' code there, in the attempt's sandbox, never here.
`check_verified` re-checks the answer like any landing (`check_landing` per commit, plus the train's own
gate records) before a branch moves. `apply_and_verify` does the three: a train step, or a refresh of
one branch onto a new base.
"""

from __future__ import annotations

import functools
import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_runner.config.runner import RunnerConfig
from agent_runner.coordinator.landing import Landing, LandingRules, check_landing
from agent_runner.core.errors import BundleRejectedError, ExecutorError
from agent_runner.core.protocols import Executor, Slot
from agent_runner.core.result import GateResult, GateVerdict, Outcome, TaskResult, WorkRequest
from agent_runner.core.task import Task
from agent_runner.core.verify import VERIFY_BRANCH, VerifySpec
from agent_runner.repo import bundles, git
from agent_runner.worker.verify import TRAIN_GATES


@dataclass(frozen=True)
class Pick:
    """One accepted result to apply: its task and result (made on `result.base_commit`)."""

    task: Task
    result: TaskResult

    @property
    def parent(self) -> str:
        """The commit the result was made on."""
        return str(self.result.base_commit)

    @property
    def commit(self) -> str:
        """The result's commit."""
        return str(self.result.head_commit)


@dataclass(frozen=True)
class Applied:
    """A result applied onto the commit before it: `commit` is new, its parent the head it went onto."""

    pick: Pick
    parent: str
    commit: str


@dataclass(frozen=True)
class Conflict:
    """A result that does not apply onto the head: the files in conflict."""

    pick: Pick
    files: list[str]

    @property
    def reason(self) -> str:
        """What the next attempt is told."""
        shown = ", ".join(self.files[:20]) or "(no file named)"
        return f"its change conflicts with results landed before it, in: {shown}"


@dataclass(frozen=True)
class Prepared:
    """Results applied one after another onto `onto` (the conflicting ones left out)."""

    onto: str
    applied: list[Applied] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def head(self) -> str:
        """The last applied commit (`onto` when none applied)."""
        return self.applied[-1].commit if self.applied else self.onto


@dataclass(frozen=True)
class Verdict:
    """What the worker's gates said about a prepared head: green or not, with the records."""

    is_green: bool
    gates: list[GateResult]
    reason: str = ""


@dataclass(frozen=True)
class VerifyContext:
    """What every verify job of a train (or refresh) shares: where, with which config and landing rules."""

    executor: Executor
    slot: Slot
    repo: Path  # the landing repo: holds the head and the results' commits
    base_name: str  # the branch the head is on (agent/...: setup then runs sandboxed)
    config: RunnerConfig
    rules: LandingRules


def apply_picks(repo: Path, onto: str, picks: list[Pick]) -> Prepared:
    """Apply each pick onto the head so far (git only); conflicting ones are left out and listed."""
    head, applied, conflicts = onto, [], []
    for pick in picks:
        tree, files = _picked_tree(repo, head, pick)
        if files:
            conflicts.append(Conflict(pick, files))
            continue
        message = git.run_git(repo, "log", "-1", "--format=%B", pick.commit)
        commit = git.run_git(repo, "commit-tree", "--no-gpg-sign", tree, "-p", head, "-m", message)
        applied.append(Applied(pick, head, commit))
        head = commit
    return Prepared(onto, applied, conflicts)


def _picked_tree(repo: Path, head: str, pick: Pick) -> tuple[str, list[str]]:
    """Return the tree of `pick` applied onto `head` (a cherry-pick: base, the commit it was made on)."""
    if pick.parent == head:
        return git.run_git(repo, "rev-parse", f"{pick.commit}^{{tree}}"), []
    # merge-tree takes the merge base from history: a scratch commit of head's tree on the pick's parent
    # makes that parent the base, whatever the two histories are.
    tree = git.run_git(repo, "rev-parse", f"{head}^{{tree}}")
    ours = git.run_git(repo, "commit-tree", "--no-gpg-sign", tree, "-p", pick.parent, "-m", "train scratch")
    return git.merge_trees(repo, ours, pick.commit)


def verify(ctx: VerifyContext, prepared: Prepared) -> TaskResult:
    """Run the verify job of `prepared` on the context's worker and return its (untrusted) result.

    The request carries no secrets (a verify job calls no model), and its task is named for the job, so
    its run folder and checkout are its own, never an attempt's.
    """
    key = "verify-" + hashlib.sha256(f"{prepared.onto}{prepared.head}".encode()).hexdigest()[:12]
    with tempfile.TemporaryDirectory(prefix="verify-") as tmp:
        run = functools.partial(git.run_git, ctx.repo)  # the runner's own repo: trusted
        bundle = bundles.write_bundle(
            run, prepared.onto, prepared.head, VERIFY_BRANCH, Path(tmp) / "v.bundle"
        )
        data = bundles.read_b64(bundle)
    spec = VerifySpec(head=prepared.head, n_commits=len(prepared.applied), bundle_b64=data)
    update = {"id": key, "branch": None, **confinement(ctx.config, [a.pick.task for a in prepared.applied])}
    task = prepared.applied[-1].pick.task.model_copy(update=update)
    request = WorkRequest(
        task=task, attempt=1, repo=str(ctx.repo), base=ctx.base_name, base_commit=prepared.onto,
        config=ctx.config.model_dump(mode="json", by_alias=True), worker=ctx.slot.name, verify=spec,
    )  # fmt: skip
    return ctx.executor.run(request, ctx.slot)


SANDBOX_RANK = {"none": 0, "auto": 1, "bwrap": 2}  # how confined each sandbox mode keeps the code it runs


def confinement(config: RunnerConfig, tasks: list[Task]) -> dict[str, Any]:
    """Return the sandbox and network of a job that runs the code of all `tasks`' results: the strictest
    of theirs (a task allowed no sandbox or the network never lifts them for another task's code)."""
    modes = [task.sandbox or config.sandbox for task in tasks]
    networks = [config.network if task.network is None else task.network for task in tasks]
    return {"sandbox": max(modes, key=SANDBOX_RANK.__getitem__), "network": all(networks)}


def check_verified(ctx: VerifyContext, prepared: Prepared, result: TaskResult) -> Verdict:
    """Return the verdict on a verify job's result, re-checked as a landing; raise when it cannot be used.

    ExecutorError: the job did not run to a verdict (infrastructure: try again later). A green answer must
    name the head sent, carry passing records of the train's gates, and let every commit land as its
    task's own result would (`check_landing`); otherwise BundleRejectedError.
    """
    if result.outcome not in (Outcome.ACCEPTED, Outcome.REJECTED):
        raise ExecutorError(f"the verify job of {prepared.head[:12]} did not finish: {result.reason}")
    if result.outcome == Outcome.REJECTED:
        return Verdict(False, result.gates, result.reason)
    if (result.base_commit, result.head_commit) != (prepared.onto, prepared.head):
        raise BundleRejectedError(f"the verify job checked {result.head_commit}, not {prepared.head}")
    _check_train_gates(result.gates)
    for applied in prepared.applied:
        check_landing(*_as_landing(ctx, applied, result.gates), rules=ctx.rules, base=applied.parent)
    return Verdict(True, result.gates)


def _check_train_gates(gates: list[GateResult]) -> None:
    verdicts = {gate.name: gate.verdict for gate in gates}
    ok = (GateVerdict.PASS, GateVerdict.SKIP)
    if bad := [name for name in TRAIN_GATES if verdicts.get(name) not in ok]:
        raise BundleRejectedError(f"the verify job has no passing record of {', '.join(bad)}")


def _as_landing(ctx: VerifyContext, applied: Applied, gates: list[GateResult]) -> tuple[Any, ...]:
    """Return check_landing's arguments for one applied commit: its result, with the train's gate records
    in place of its own of the same name."""
    pick = applied.pick
    train = {gate.name: gate for gate in gates}
    merged = [train.pop(gate.name, gate) for gate in pick.result.gates] + list(train.values())
    update = {"base_commit": applied.parent, "head_commit": applied.commit, "gates": merged}
    return (
        Landing(ctx.repo, pick.task.branch_name, applied.commit),
        pick.task,
        pick.result.model_copy(update=update),
    )


def apply_and_verify(ctx: VerifyContext, onto: str, picks: list[Pick]) -> tuple[Prepared, Verdict | None]:
    """Apply `picks` onto `onto` and verify the combination on a worker; None: nothing applied.

    `onto` must be on a branch of `ctx.repo` (workers fetch it from there): the train moves the integration
    branch to it first; a refresh passes the tip of the new base.
    """
    prepared = apply_picks(ctx.repo, onto, picks)
    if not prepared.applied:
        return prepared, None
    result = verify(ctx, prepared)
    try:
        return prepared, check_verified(ctx, prepared, result)
    except BundleRejectedError as exc:
        return prepared, Verdict(False, result.gates, str(exc))

"""The worker side of a verify job: the gates of commits the coordinator made, with no agent (core/verify.py).

Steps: a checkout at the request's base (the integration head), setup, the gates' baseline there, the
bundle's commits brought into the runner's git dir, the work tree moved to the verified head, one gate
round. The tests run in the attempt's sandbox, as in any attempt. The result names the head it checked
and carries the gate records; the coordinator re-checks both before any branch moves.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from agent_runner.config.runner import RunnerConfig, gate_settings
from agent_runner.core.errors import GitError
from agent_runner.core.gate_settings import GateSettings
from agent_runner.core.protocols import Gate, GateContext
from agent_runner.core.redact import SecretValues
from agent_runner.core.result import GateResult, Outcome, TaskResult, WorkRequest
from agent_runner.core.verify import VERIFY_BRANCH, VerifySpec
from agent_runner.gates import baseline as baseline_cache
from agent_runner.gates import workdiff
from agent_runner.gates.pytest import SuiteRunner, TestsGate, report_to_json
from agent_runner.gates.ruff import LintRunner, TouchedLintGate
from agent_runner.repo import bundles, git, ownership, workspace
from agent_runner.repo.layout import AttemptPaths
from agent_runner.worker import deadline, job_agent, tidy
from agent_runner.worker.attempt import Attempt
from agent_runner.worker.failure import ENDINGS, JobFailed, failure_of
from agent_runner.worker.gate_round import GateRound, gate_report, is_green
from agent_runner.worker.request import request_config

TRAIN_GATES = ("lint-touched", "tests")  # what a combination is held to: the test and lint gates
log = logging.getLogger(__name__)


def train_gates(suite: SuiteRunner) -> list[Gate]:
    """Return the gates a combination of results must pass (named as TRAIN_GATES)."""
    return [TouchedLintGate(LintRunner()), TestsGate(suite)]


def run_verify(request: WorkRequest, *, workdir: Path, trash: list[Path] | None = None) -> TaskResult:
    """Run the verify job `request.verify` under the state folder `workdir` and return its result."""
    return VerifyJob(request, workdir=workdir, trash=trash).run()


class VerifyJob:
    """One verify job while it runs."""

    def __init__(self, request: WorkRequest, *, workdir: Path, trash: list[Path] | None = None) -> None:
        assert request.verify is not None
        self.request, self.spec, self.trash = request, request.verify, trash
        self.config = request_config(request)
        self.workdir = Path(workdir).resolve()
        self.paths = AttemptPaths.under(self.workdir, request.task.id, request.attempt)
        task = request.task
        limits = self.config.limits_for(task.kind, task.limits)
        self.attempt = Attempt(request, self.config, self.workdir, self.paths, "", limits)
        self.started = time.time()
        self.checkout: git.Checkout | None = None
        self.result = TaskResult(
            task_id=task.id, attempt=request.attempt, outcome=Outcome.REJECTED, branch=VERIFY_BRANCH,
            machine=request.worker, started_at=round(self.started, 3), head_commit=self.spec.head,
        )  # fmt: skip

    def run(self) -> TaskResult:
        """Check out, measure, verify; classify any failure; return the result."""
        workspace.init_state_dir(self.workdir)
        self.paths.run_dir.mkdir(parents=True, exist_ok=True)
        minutes = deadline.attempt_minutes(self.attempt.limits)
        with ownership.owning(self.paths.checkout):
            try:
                with deadline.alarm(minutes):
                    self._steps()
            except ENDINGS as exc:
                failure = failure_of(exc, minutes=minutes, workdir=self.workdir)
                self._set(outcome=failure.outcome, reason=failure.reason)
            self._set(duration_s=round(time.time() - self.started, 3))
            self._tidy()
        log.info("verify %s of %s: %s", self.spec.head[:12], self.request.task.id, self.result.outcome)
        return self.result

    def _steps(self) -> None:
        checkout = self.checkout = workspace.open_checkout(self.request, self.paths)
        self._set(base_commit=checkout.base_commit, checkout_path=str(checkout.path))
        self._setup(checkout)
        ctx = self._context(checkout)
        suite = SuiteRunner()
        gates = train_gates(suite)
        baselines = {gate.name: gate.baseline(ctx) for gate in gates}
        self._move_to_head(checkout)
        gate_round = GateRound(gates, baselines, ctx)
        results = gate_round()
        self._set(gates=results)
        if not is_green(results):
            raise JobFailed(
                Outcome.REJECTED, f"gates failed with the earlier results in:\n{gate_report(results)}"
            )
        tree = gate_round.checked_tree(self._require_green)
        if tree != _tree_of(checkout.path, self.spec.head):
            raise JobFailed(
                Outcome.REJECTED,
                "the tests changed tracked files: the tree the gates passed is not the one verified",
            )
        self._set(outcome=Outcome.ACCEPTED)
        hand_over_baseline(ctx, suite, tree)

    def _require_green(self, results: list[GateResult]) -> None:
        self._set(gates=results)
        if not is_green(results):
            raise JobFailed(Outcome.REJECTED, f"gates failed when checked again:\n{gate_report(results)}")

    def _setup(self, checkout: git.Checkout) -> None:
        """Copied files, a private HOME and the setup commands, sandboxed (the base holds agents' code)."""
        workspace.copy_files(self.request.repo, checkout.path, self.config.copy_files)
        env = workspace.setup_env(workspace.default_env(), workspace.private_home(self.paths))
        sandbox = job_agent.setup_sandbox(self.attempt)
        workspace.run_setup(self.config.setup, checkout.path, env, sandbox=sandbox)
        if self.config.setup or self.config.copy_files:
            git.exclude_untracked(checkout.path)

    def _context(self, checkout: git.Checkout) -> GateContext:
        sandbox = job_agent.sandbox_for(self.attempt)
        self._set(sandbox=sandbox.name)
        secrets = SecretValues(self.request.secrets.values())
        return GateContext(
            checkout.path, self.request.task, checkout.base_commit, self.config.test,
            verify_settings(self.config), sandbox=sandbox, secrets=secrets,
        )  # fmt: skip

    def _move_to_head(self, checkout: git.Checkout) -> None:
        """Bring the bundle's commits in (runner's git dir) and put the work tree at the verified head."""
        head = _import(checkout, self.spec, self.paths.run_dir / "verify.bundle")
        path = checkout.path
        out = git.checkout_git(path, "rev-list", "--first-parent", f"{checkout.base_commit}..{head}")
        if len(out.split()) != self.spec.n_commits:
            raise JobFailed(Outcome.REJECTED, f"{head} is not {self.spec.n_commits} commit(s) on the base")
        git.checkout_git(path, "checkout", "-q", "-f", "-B", checkout.branch or VERIFY_BRANCH, head)

    def _set(self, **fields: Any) -> None:
        self.result = self.result.model_copy(update=fields)

    def _tidy(self) -> None:
        if self.checkout is None:
            return
        is_ok = self.result.outcome == Outcome.ACCEPTED
        if not tidy.put_away(
            self.checkout.path, self.attempt, is_ok=is_ok, filled_disk=False, trash=self.trash
        ):
            self._set(checkout_path=None)


def verify_settings(config: RunnerConfig) -> GateSettings:
    """The gate settings of a verify job: the baseline cache on (in the runner's home unless set), so the
    next job of a train, whose baseline is this job's head, takes this job's test run as it."""
    settings = gate_settings(config)
    folder = settings.baseline_cache_dir or str(git.home_dir() / "baselines")
    return settings.model_copy(update={"baseline_cache": True, "baseline_cache_dir": folder})


def hand_over_baseline(ctx: GateContext, suite: SuiteRunner, tree: str) -> None:
    """Keep the green test run of `tree` (the verified head) as the baseline of a job starting there."""
    folder = baseline_cache.cache_dir(ctx)
    with workdiff.snapshot(ctx.checkout, tree=tree):  # the tree the suite ran on: its report, no new run
        report = suite.report(ctx)
    if folder is not None and report.has_ids and not report.is_cached:
        baseline_cache.store(
            folder, baseline_cache.cache_key(ctx, tree, coverage_of=None), report_to_json(report)
        )


def _import(checkout: git.Checkout, spec: VerifySpec, dest: Path) -> str:
    """Add the bundle's commits to the checkout's runner git dir (when it lacks the head); return the head."""
    if git.has_commit(git.runner_git_dir(checkout.path), spec.head) or spec.bundle_b64 is None:
        return spec.head
    bundle = bundles.write_b64(spec.bundle_b64, dest)
    head = bundles.import_bundle(git.runner_git_dir(checkout.path), bundle, VERIFY_BRANCH)
    if head != spec.head:
        raise GitError(f"the verify bundle holds {head}, not the head to verify {spec.head}")
    return head


def _tree_of(checkout: Path, commit: str) -> str:
    return git.checkout_git(checkout, "rev-parse", f"{commit}^{{tree}}")

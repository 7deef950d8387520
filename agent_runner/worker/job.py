"""One attempt of one task: checkout, setup, baselines, prestep, agent, gates, commit, bundle."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from agent_runner.config import prompts
from agent_runner.config.runner import RunnerConfig, gate_settings
from agent_runner.core.errors import RunnerError
from agent_runner.core.findings import review_fields
from agent_runner.core.messages import Usage
from agent_runner.core.protocols import GateContext, Sandbox
from agent_runner.core.redact import Redactor, SecretValues
from agent_runner.core.result import (
    ExitStatus,
    GateResult,
    Outcome,
    TaskResult,
    WorkRequest,
)
from agent_runner.core.task import Limits, TaskKind, model_spec_for
from agent_runner.gates import workdiff
from agent_runner.gates.kinds import JobKind, get_job_kind
from agent_runner.repo import bundles, diskspace, git, ownership, pools, workspace
from agent_runner.repo.layout import AttemptPaths
from agent_runner.worker import deadline, disk, job_agent, tidy
from agent_runner.worker.agent import Agent, AgentOutcome
from agent_runner.worker.attempt import Attempt
from agent_runner.worker.failure import ENDINGS, Failure, JobFailed, agent_stopped, failure_of
from agent_runner.worker.gate_round import GateCheck, GateRound, gate_report, is_green
from agent_runner.worker.phase import shown as shown_phase
from agent_runner.worker.request import request_config

log = logging.getLogger(__name__)


def run_job(
    request: WorkRequest,
    *,
    workdir: Path,
    inline_bundle: bool = False,
    trash: list[Path] | None = None,
    ahead: bool = False,
) -> TaskResult:
    """Run one attempt of `request.task` under the state folder `workdir` and return its result.

    With `trash`, a checkout to delete is moved aside and appended there, so the caller can report the
    result first and delete it afterwards. With `ahead`, the caller makes a checkout for the next attempt
    on this machine once the result is out (`pools.make_noted_ahead`).
    """
    return Job(request, workdir=workdir, inline_bundle=inline_bundle, trash=trash, ahead=ahead).run()


class Job:
    """The state of one attempt while it runs."""

    def __init__(
        self,
        request: WorkRequest,
        *,
        workdir: Path,
        inline_bundle: bool = False,
        trash: list[Path] | None = None,
        ahead: bool = False,
    ) -> None:
        self.request = request
        self.ahead = ahead
        self.inline_bundle = inline_bundle
        self.trash = trash
        self.task = request.task
        self.config: RunnerConfig = request_config(request)
        self.workdir = Path(workdir).resolve()
        self.paths = AttemptPaths.under(self.workdir, self.task.id, request.attempt)
        self.model_spec = model_spec_for(self.task, override=request.model, default=self.config.model)
        self.started = time.time()
        self.result = TaskResult(
            task_id=self.task.id, attempt=request.attempt, outcome=Outcome.REJECTED, model=self.model_spec,
            branch=self.task.branch_name, machine=request.worker, started_at=round(self.started, 3),
        )  # fmt: skip
        self.checkout: git.Checkout | None = None
        self.limits: Limits = self.config.limits_for(self.task.kind, self.task.limits)
        self.attempt = Attempt(request, self.config, self.workdir, self.paths, self.model_spec, self.limits)
        self.free_mb = 0.0  # free on the state folder's disk when the attempt started
        self.timings: dict[str, float] = {}
        self.home_env: dict[str, str] = {}
        self.templates: dict[str, str] = {}  # the project's prompt templates, as checked out
        self._sandbox: Sandbox | None = None
        self._agent: Agent | None = None  # once built: its spend counts however the attempt ends

    def run(self) -> TaskResult:
        """Run every step, classify any failure, and return the finished result.

        The attempt owns its checkout's lock while it runs; checkouts of dead attempts on this machine go.
        """
        workspace.init_state_dir(self.workdir)
        self.paths.run_dir.mkdir(parents=True, exist_ok=True)
        with ownership.owning(self.paths.checkout):
            for path in ownership.sweep_unowned(self.workdir):
                log.info("removed the checkout %s of an attempt that no longer runs", path)
            return self._run_owned()

    def _run_owned(self) -> TaskResult:
        minutes = deadline.attempt_minutes(self.limits)
        try:
            with deadline.alarm(minutes):
                self._steps_on_disk()
            self.result = self.result.model_copy(update={"outcome": Outcome.ACCEPTED})
        except ENDINGS as exc:
            self._fail(failure_of(exc, minutes=minutes, workdir=self.workdir))
        self._count_spend()
        self._set(duration_s=round(time.time() - self.started, 3))
        self._tidy()
        self.result = _redacted(self.result, self.request.secrets)
        timings = " ".join(f"{k}={v * 1000:.0f}ms" for k, v in self.timings.items())
        log.info("%s#%d %s: %s", self.task.id, self.request.attempt, self.result.outcome, timings)
        return self.result

    def _steps_on_disk(self) -> None:
        """Run the steps on a machine with room for them; a full disk is the task's fault or the machine's."""
        disk.refuse_low_space(self.attempt)
        self.free_mb = diskspace.free_mb(self.workdir)
        try:
            self._steps()
        except (RunnerError, OSError) as exc:  # git's "No space left" comes as GitError or WorkTreeError
            if not diskspace.is_no_space(exc):
                raise
            raise disk.no_space(exc, self.attempt, self.checkout, free_mb=self.free_mb) from exc

    def _check_disk(self) -> None:
        disk.check_size(self.limits.max_disk_mb, self.checkout)

    def _steps(self) -> None:
        with self._phase("checkout"):
            checkout = self._open()
        if self.ahead:
            pools.note_ahead(checkout, self.request.repo, self.paths)
        with self._phase("setup"):
            self._setup(checkout)
        ctx = self._gate_context(checkout)
        with self._phase("baseline"):
            kind = get_job_kind(self.task.kind)
            gates = kind.gates(ctx)
            with self._as_checked_out(checkout):
                baselines = {gate.name: gate.baseline(ctx) for gate in gates}
            prestep = kind.prestep(ctx)
        gate_round = GateRound(gates, baselines, ctx)
        check = self._timed(gate_round)
        with self._phase("agent"):
            if prestep.needs_agent:
                self._agent_rounds(kind, dict(prestep.prompt_vars), check, gate_names=[g.name for g in gates])
            else:  # the deterministic pre-step did it all: no model is called (nor needs a key)
                self._set(summary=prestep.summary, exit_status=ExitStatus.FINISHED)
                self._require_green(check(), rounds_used=0)
        self.timings["agent"] -= self.timings.get("gates", 0.0)
        if self.task.kind == TaskKind.REVIEW:  # the answer is the summary: keep it as fields too
            self._set(**review_fields(self.result.summary))
        if kind.commits:
            self._check_disk()
            with self._phase("commit"):
                self._commit_and_bundle(checkout, tree=self._checked_tree(gate_round))

    def _as_checked_out(self, checkout: git.Checkout) -> AbstractContextManager[Any]:
        """Baselines see the base tree as it was checked out: no staging when nothing can have changed it."""
        if checkout.base_tree is None or self.config.setup or self.config.copy_files:
            return nullcontext()
        return workdiff.snapshot(checkout.path, tree=checkout.base_tree)

    def _checked_tree(self, gate_round: GateRound) -> str:
        return gate_round.checked_tree(lambda results: self._require_green(results, rounds_used=0))

    @contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            with shown_phase(self.paths.run_dir, name):  # for the live table of `run` on this machine
                yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - started

    def _timed(self, check: GateCheck) -> GateCheck:
        def timed() -> list[GateResult]:
            self._check_disk()
            with self._phase("gates"):
                return check()

        return timed

    def _gate_context(self, checkout: git.Checkout) -> GateContext:
        # Gates run tests the agent wrote: the same sandbox as its shell. The secrets this worker holds are
        # refused in the diff by value (the coordinator checks the ones it alone holds when the result lands).
        secrets = SecretValues(self.request.secrets.values())
        settings = gate_settings(self.config)
        return GateContext(
            checkout.path, self.task, checkout.base_commit, self.config.test, settings,
            sandbox=self.sandbox(), secrets=secrets,
        )  # fmt: skip

    def sandbox(self) -> Sandbox:
        """Return the one sandbox of this attempt (its shell and the test gates), recording which it is."""
        if self._sandbox is None:  # "auto" resolves here, to bwrap or none: the result says which ran
            self._sandbox = job_agent.sandbox_for(self.attempt)
            self._set(sandbox=self._sandbox.name)
        return self._sandbox

    def _open(self) -> git.Checkout:
        checkout = self.checkout = workspace.open_checkout(self.request, self.paths)
        self._set(base_commit=checkout.base_commit, checkout_path=str(checkout.path))
        return checkout

    def _setup(self, checkout: git.Checkout) -> None:
        workspace.copy_files(self.request.repo, checkout.path, self.config.copy_files)
        self.home_env = workspace.private_home(self.paths)
        env = workspace.setup_env(workspace.default_env(), self.home_env)
        workspace.run_setup(
            self.config.setup, checkout.path, env, sandbox=job_agent.setup_sandbox(self.attempt)
        )
        if self.config.setup or self.config.copy_files:
            git.exclude_untracked(checkout.path)

    # -- the agent and its gate rounds ----------------------------------------------------------------
    def _agent_rounds(
        self, kind: JobKind, prompt_vars: dict[str, Any], check: GateCheck, gate_names: list[str]
    ) -> None:
        self.templates = prompts.project_templates(self.paths.checkout)  # before the agent can change them
        agent = self._agent = job_agent.build_agent(
            self.attempt, sandbox=self.sandbox(), home_env=self.home_env, templates=self.templates,
            gate_names=gate_names, started=self.started,
        )  # fmt: skip
        variables = job_agent.prompt_vars(self.attempt, gate_names, prompt_vars)
        template = kind.template or f"{self.task.kind.value}.md.j2"
        outcome = agent.run(job_agent.render(template, self.templates, variables))
        rounds = (
            self.task.reflection_rounds
            if self.task.reflection_rounds is not None
            else self.config.reflection_rounds
        )
        for round_no in range(rounds + 1):
            self._record_outcome(outcome)
            if outcome.exit_status != ExitStatus.FINISHED:
                raise agent_stopped(outcome)
            results = check()
            if is_green(results) or round_no == rounds:
                self._require_green(results, rounds_used=round_no)
                return
            report = gate_report(results)
            message = job_agent.render(
                "reflection.md.j2", self.templates,
                {**variables, "report": report, "gates": results, "round": round_no + 1, "rounds": rounds},
            )  # fmt: skip
            outcome = agent.resume(message)

    def _count_spend(self) -> None:
        """Record every billed call, also of an attempt a model error ended mid-run (an outage, a key)."""
        agent = self._agent
        if agent is not None and agent.n_model_calls > self.result.model_calls:
            self._set(model_calls=agent.n_model_calls, usage=agent.usage, cost_usd=agent.cost)

    def _record_outcome(self, outcome: AgentOutcome) -> None:
        self._set(
            exit_status=outcome.exit_status, summary=outcome.summary, steps=outcome.steps,
            model_calls=outcome.model_calls, usage=outcome.usage or Usage(), cost_usd=outcome.cost_usd,
        )  # fmt: skip

    def _require_green(self, results: list[GateResult], *, rounds_used: int) -> None:
        self._set(gates=results)
        if not is_green(results):
            after = f" after {rounds_used} reflection round(s)" if rounds_used else ""
            raise JobFailed(Outcome.REJECTED, f"gates failed{after}:\n{gate_report(results)}")

    # -- results ----------------------------------------------------------------------------------------
    def _commit_and_bundle(self, checkout: git.Checkout, *, tree: str) -> None:
        task = self.task
        message = f"agent-runner: {task.id}: {task.display_title}\n\nTask {task.id} ({task.kind})"
        head = git.commit_tree(checkout, tree, f"{message}, attempt {self.request.attempt}.")
        self._set(head_commit=head)
        if (
            head == checkout.base_commit and task.kind == TaskKind.CHANGE
        ):  # never a success, whatever gates say
            raise JobFailed(Outcome.REJECTED, "the agent finished without changing any file")
        bundle = bundles.create_bundle(checkout, self.paths.bundle, head=head)
        if bundle is not None and self.inline_bundle:
            self._set(bundle_b64=bundles.read_b64(bundle))
        elif bundle is not None:
            self._set(bundle_path=str(bundle))

    def _fail(self, failure: Failure) -> None:
        exit_status = failure.exit_status or self.result.exit_status
        self._set(outcome=failure.outcome, reason=failure.reason, exit_status=exit_status)
        self._set(limit=failure.limit, machine_problem=failure.machine_problem)

    def _set(self, **fields: Any) -> None:
        self.result = self.result.model_copy(update=fields)

    def _tidy(self) -> None:
        if self.paths.trajectory.exists():
            self._set(trajectory_path=str(self.paths.trajectory))
        if self.checkout is None:
            return
        is_ok, filled_disk = self.result.outcome == Outcome.ACCEPTED, self.result.limit == "disk"
        if not tidy.put_away(
            self.checkout.path, self.attempt, is_ok=is_ok, filled_disk=filled_disk, trash=self.trash
        ):
            self._set(checkout_path=None)


def _redacted(result: TaskResult, secrets: dict[str, str]) -> TaskResult:
    """Mask the worker's secrets and token patterns in the result (its text comes from the model)."""
    return result.redacted(Redactor(secrets.values()))

"""One attempt of one task: checkout, setup, baselines, prestep, agent, gates, commit, bundle."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from agent_runner.config import prompts
from agent_runner.config.runner import RunnerConfig, config_from_dict
from agent_runner.core.errors import (
    GitError,
    ModelAuthError,
    ModelNotFoundError,
    ModelSpecError,
    ModelUnavailableError,
    RunnerError,
    SetupError,
)
from agent_runner.core.findings import review_fields
from agent_runner.core.messages import Usage
from agent_runner.core.protocols import GateContext, Sandbox
from agent_runner.core.redact import SecretValues
from agent_runner.core.result import (
    LIMIT_OF_EXIT,
    ExitStatus,
    GateResult,
    GateVerdict,
    Outcome,
    TaskResult,
    WorkRequest,
)
from agent_runner.core.task import BRANCH_PREFIX, Limits, TaskKind, model_spec_for
from agent_runner.gates import JobKind, gate_settings, get_job_kind, render_report, workdiff
from agent_runner.repo import bundles, checkouts, diskspace, git, ownership, pools, workspace
from agent_runner.repo.workspace import AttemptPaths, BaseMissingError, SetupNetworkError
from agent_runner.worker import deadline
from agent_runner.worker.phase import shown as shown_phase
from agent_runner.worker.sandbox import get_sandbox

log = logging.getLogger(__name__)


class JobFailed(Exception):
    """Ends a job early with an outcome and a reason (control flow inside this module)."""

    def __init__(
        self,
        outcome: Outcome,
        reason: str,
        exit_status: ExitStatus | None = None,
        *,
        limit: str | None = None,
        machine_problem: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.exit_status = exit_status
        self.limit = limit
        self.machine_problem = machine_problem


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
        self.config: RunnerConfig = config_from_dict(request.config) if request.config else RunnerConfig()
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
        self.free_mb = 0.0  # free on the state folder's disk when the attempt started
        self.timings: dict[str, float] = {}
        self.home_env: dict[str, str] = {}
        self.templates: dict[str, str] = {}  # the project's prompt templates, as checked out
        self._sandbox: Sandbox | None = None
        self._agent: Any = None  # once built: its spend counts however the attempt ends

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
        except deadline.AttemptTimeout:
            self._set(outcome=Outcome.REJECTED, reason=deadline.timeout_reason(minutes))
            self._set(limit=deadline.ATTEMPT_LIMIT)
        except JobFailed as exc:
            self._set(
                outcome=exc.outcome, reason=exc.reason, exit_status=exc.exit_status or self.result.exit_status
            )
            self._set(limit=exc.limit, machine_problem=exc.machine_problem)
        except (ModelAuthError, ModelNotFoundError, ModelSpecError) as exc:  # no attempt on it can do better
            self._set(outcome=Outcome.MODEL_AUTH, reason=str(exc))
        except ModelUnavailableError as exc:
            self._set(outcome=Outcome.INFRA, reason=f"model unavailable: {exc}")
        except SetupNetworkError as exc:
            self._set(outcome=Outcome.INFRA, reason=f"setup failed on a network error: {exc}")
        except SetupError as exc:
            self._set(outcome=Outcome.REJECTED, reason=str(exc))
        except BaseMissingError as exc:
            self._set(outcome=Outcome.REJECTED, reason=str(exc))
        except GitError as exc:
            self._set(outcome=Outcome.INFRA, reason=f"git: {exc}")
        except RunnerError as exc:
            self._set(outcome=Outcome.REJECTED, reason=f"{type(exc).__name__}: {exc}")
        except OSError as exc:  # the checkout or state folder vanished or filled up under the job
            self._set(outcome=Outcome.INFRA, reason=f"file system error under {self.workdir}: {exc}")
        self._count_spend()
        self._set(duration_s=round(time.time() - self.started, 3))
        self._tidy()
        self.result = _redacted(self.result, self.request.secrets)
        timings = " ".join(f"{k}={v * 1000:.0f}ms" for k, v in self.timings.items())
        log.info("%s#%d %s: %s", self.task.id, self.request.attempt, self.result.outcome, timings)
        return self.result

    def _steps_on_disk(self) -> None:
        """Run the steps on a machine with room for them; a full disk is the task's fault or the machine's."""
        if problem := diskspace.low_space(self.workdir, self.config.min_free_mb):
            raise JobFailed(Outcome.INFRA, f"{self.request.worker}: {problem}", machine_problem=problem)
        self.free_mb = diskspace.free_mb(self.workdir)
        try:
            self._steps()
        except (RunnerError, OSError) as exc:  # git's "No space left" comes as GitError or WorkTreeError
            if not diskspace.is_no_space(exc):
                raise
            raise self._no_space(exc) from exc

    def _no_space(self, exc: BaseException) -> JobFailed:
        """Return how an attempt that met a full disk ends: failed if it filled it, else released."""
        checkout = self.checkout
        grew = diskspace.growth(checkout.path, checkout.base_commit) if checkout is not None else None
        if grew is not None and grew.grown_mb >= diskspace.FILLED_SHARE * self.free_mb:
            return JobFailed(Outcome.REJECTED, diskspace.filled_reason(grew, self.free_mb), limit="disk")
        problem = diskspace.machine_full_reason(self.workdir, grew, exc)
        return JobFailed(Outcome.INFRA, f"{self.request.worker}: {problem}", machine_problem=problem)

    def _check_disk(self) -> None:
        """Fail the attempt when its checkout grew past the task's `max_disk_mb`."""
        limit, checkout = self.limits.max_disk_mb, self.checkout
        if limit is None or checkout is None:
            return
        grew = diskspace.growth(checkout.path, checkout.base_commit)
        if grew.size_mb > limit:
            raise JobFailed(Outcome.REJECTED, diskspace.over_limit_reason(grew, limit), limit="max_disk_mb")

    def _steps(self) -> None:
        with self._phase("checkout"):
            checkout = self._open()
        if self.ahead:
            pools.note_ahead(checkout, self.request.repo, self.paths)
        with self._phase("setup"):
            self._setup(checkout)
        ctx = GateContext(
            checkout.path, self.task, checkout.base_commit, self.config.test, self._gate_settings()
        )
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
        """Return the tree the last green gate round checked, as the work tree still holds it.

        When the tests changed the tree, the gates check it once more (a staged snapshot again); when that
        round's tests change it again, no tree the gates passed is left to commit: the attempt is refused.
        """
        checkout, tree = gate_round.ctx.checkout, gate_round.tree
        if tree is not None and workdiff.is_unchanged(checkout, tree, gate_round.stamp):
            return tree
        log.info("%s: the tree changed while the gates ran; checking it again", self.task.id)
        self._require_green(gate_round(), rounds_used=0)
        tree = gate_round.tree
        if tree is None or not workdiff.is_unchanged(checkout, tree, gate_round.stamp):
            raise JobFailed(
                Outcome.REJECTED,
                "the work tree changed while the gates ran (the tests rewrote files again when the gates "
                "checked it once more): no tree the gates passed is left to commit",
            )
        return tree

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

    def _gate_settings(self) -> dict[str, Any]:
        # Gates run tests the agent wrote: the same sandbox as its shell. The secrets this worker holds are
        # refused in the diff by value (the coordinator checks the ones it alone holds when the result lands).
        secrets = SecretValues(self.request.secrets.values())
        return {**gate_settings(self.config, secrets=secrets), "sandbox": self.sandbox()}

    def sandbox(self) -> Sandbox:
        """Return the one sandbox of this attempt (its shell and the test gates), recording which it is."""
        from agent_runner.worker import job_agent

        if self._sandbox is None:  # "auto" resolves here, to bwrap or none: the result says which ran
            self._sandbox = job_agent.sandbox_for(self)
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
        workspace.run_setup(self.config.setup, checkout.path, env, sandbox=self._setup_sandbox())
        if self.config.setup or self.config.copy_files:
            git.exclude_untracked(checkout.path)

    def _setup_sandbox(self) -> Sandbox | None:
        """The sandbox of setup when its base may hold code an agent wrote (an agent branch, as in a review's
        fix round): the attempt's sandbox with network (setup installs packages). None on a trusted base."""
        from agent_runner.worker import job_agent

        base = self.request.base or self.task.base or ""
        if not self.config.setup or not base.startswith(BRANCH_PREFIX):
            return None
        mode = self.task.sandbox or self.config.sandbox
        paths = job_agent.sandbox_paths(self)
        return get_sandbox(mode, checkout=self.paths.checkout, network=True, paths=paths)

    # -- the agent and its gate rounds ----------------------------------------------------------------
    def _agent_rounds(
        self, kind: JobKind, prompt_vars: dict[str, Any], check: GateCheck, gate_names: list[str]
    ) -> None:
        from agent_runner.worker import job_agent

        self.templates = prompts.project_templates(self.paths.checkout)  # before the agent can change them
        agent = self._agent = job_agent.build_agent(self, gate_names=gate_names)
        variables = self._prompt_vars(gate_names, prompt_vars)
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
                limit = LIMIT_OF_EXIT.get(outcome.exit_status)
                raise JobFailed(Outcome.REJECTED, _stopped_reason(outcome), outcome.exit_status, limit=limit)
            results = check()
            if _green(results) or round_no == rounds:
                self._require_green(results, rounds_used=round_no)
                return
            report = gate_report(results)
            message = job_agent.render(
                "reflection.md.j2", self.templates,
                {**variables, "report": report, "gates": results, "round": round_no + 1, "rounds": rounds},
            )  # fmt: skip
            outcome = agent.resume(message)

    def _prompt_vars(self, gate_names: list[str], extra: dict[str, Any]) -> dict[str, Any]:
        task = self.task
        return {
            "task": task, "kind": task.kind.value, "title": task.display_title,
            "instructions": task.instructions, "paths": task.paths, "limits": self.limits,
            "test_command": self.config.test, "gates": gate_names, "gate_names": gate_names,
            "checkout": str(self.paths.checkout), **extra,
        }  # fmt: skip

    def _count_spend(self) -> None:
        """Record every billed call, also of an attempt a model error ended mid-run (an outage, a key)."""
        agent = self._agent
        if agent is not None and agent.n_model_calls > self.result.model_calls:
            self._set(model_calls=agent.n_model_calls, usage=agent.usage, cost_usd=agent.cost)

    def _record_outcome(self, outcome: Any) -> None:
        self._set(
            exit_status=outcome.exit_status, summary=outcome.summary, steps=outcome.steps,
            model_calls=outcome.model_calls, usage=outcome.usage or Usage(), cost_usd=outcome.cost_usd,
        )  # fmt: skip

    def _require_green(self, results: list[GateResult], *, rounds_used: int) -> None:
        self._set(gates=results)
        if not _green(results):
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

    def _set(self, **fields: Any) -> None:
        self.result = self.result.model_copy(update=fields)

    def _tidy(self) -> None:
        if self.paths.trajectory.exists():
            self._set(trajectory_path=str(self.paths.trajectory))
        keep = self.config.keep_checkouts
        is_ok = self.result.outcome == Outcome.ACCEPTED
        if self.checkout is None:
            return
        if self.result.limit == "disk":  # it filled the disk: free it now, before the result is written
            self._set(checkout_path=None)
            checkouts.remove_checkout(self.checkout.path)
            return
        if keep == "always" or (keep == "failed" and not is_ok):  # kept for people, never re-used
            checkouts.trusted_index(self.checkout.path).unlink(missing_ok=True)
            ownership.kept_marker(self.checkout.path).touch()
        else:
            self._set(checkout_path=None)
            pool = pools.pool_dir(self.paths, self.request.repo)
            if is_ok and pools.park(self.checkout.path, pool):
                return  # the next attempt on this machine refreshes it instead of cloning
            if self.trash is None:
                checkouts.remove_checkout(self.checkout.path)
            else:
                self.trash.extend(workspace.move_to_trash(self.checkout.path, self.workdir))


GateCheck = Callable[[], list[GateResult]]


class GateRound:
    """Checks every gate against one staged snapshot of the working tree and remembers that tree."""

    def __init__(self, gates: list[Any], baselines: dict[str, Any], ctx: GateContext) -> None:
        self.gates, self.baselines, self.ctx = gates, baselines, ctx
        self.tree: str | None = None
        self.stamp: workdiff.IndexStamp | None = None

    def __call__(self) -> list[GateResult]:
        """Run one round: the working tree is staged and diffed once for all gates."""
        with workdiff.snapshot(self.ctx.checkout) as tree:
            stamp = workdiff.index_stamp(self.ctx.checkout)  # before the gates run the tests
            results = self.unfrozen()
        self.tree, self.stamp = tree, stamp
        return results

    def unfrozen(self) -> list[GateResult]:
        """Run one round with each gate staging the working tree itself (as it is at that moment)."""
        self.tree = None
        return [gate.check(self.ctx, self.baselines[gate.name]) for gate in self.gates]


def _green(results: list[GateResult]) -> bool:
    return all(r.verdict in (GateVerdict.PASS, GateVerdict.SKIP) for r in results)


def gate_report(results: list[GateResult]) -> str:
    """Return the gate report (table and failures) for the agent and the failure reason."""
    return str(render_report(results))


def _stopped_reason(outcome: Any) -> str:
    detail = f": {outcome.error}" if getattr(outcome, "error", "") else ""
    return f"agent stopped ({outcome.exit_status}){detail}"


def _redacted(result: TaskResult, secrets: dict[str, str]) -> TaskResult:
    """Mask the worker's secrets and token patterns in the result (its text comes from the model)."""
    from agent_runner.core.redact import Redactor

    data = Redactor(secrets.values()).obj(result.model_dump(mode="json", exclude={"bundle_b64"}))
    return TaskResult.model_validate({**data, "bundle_b64": result.bundle_b64})

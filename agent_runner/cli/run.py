"""Commands: run, watch, clean."""

from __future__ import annotations

import functools
import importlib
import json
import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agent_runner.cli.app import app, check_model, console, get_config, repo_root, warn_skipped
from agent_runner.cli.run_budget import BudgetOpt, ForOpt, UntilOpt, budget_overrides
from agent_runner.cli.train_view import land_after_run, print_result, publish_trains_view
from agent_runner.config.runner import RunnerConfig
from agent_runner.core.errors import ConfigError
from agent_runner.core.protocols import Executor, Publisher
from agent_runner.executors.local import LocalExecutor
from agent_runner.queue.intake import open_queue
from agent_runner.queue.sources import require_repo

if TYPE_CHECKING:  # imported where used: the scheduler and the views are not needed by `--help`
    from agent_runner.cli.run_view import JsonView, LiveView
    from agent_runner.coordinator.scheduler import Scheduler

EXECUTORS = ("local", "ssh", "ray")


# -- run and watch --------------------------------------------------------------------------------------
WorkersOpt = Annotated[int | None, typer.Option("--workers", "-w", help="Parallel local workers.")]


def _split_ids(values: list[str] | None) -> list[str] | None:
    """Accept `--only a --only b` and `--only a,b` alike, as `plan --only` does."""
    return [i for item in values for i in item.replace(",", " ").split()] if values else values


OnlyOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--only", help="Run only this task id (repeatable, or a,b).", callback=_split_ids, metavar="ID"
    ),
]
ModelOpt = Annotated[
    str | None, typer.Option("--model", help="Model spec for every task of this run.", callback=check_model)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Stream events as JSON lines.")]
ExecutorOpt = Annotated[str | None, typer.Option("--executor", help="local | ssh | ray.")]
RayAddressOpt = Annotated[
    str | None, typer.Option("--ray-address", help="Ray cluster for --executor ray: auto, ray://host:10001.")
]
LandOpt = Annotated[
    bool | None,
    typer.Option(
        "--land/--no-land",
        help="Land the accepted results on the integration branch at the end (default: [train] at_end).",
    ),
]
PublishOpt = Annotated[
    bool | None,
    typer.Option("--publish/--no-publish", help="Push and open PRs (default: when a GitHub token is set)."),
]


@app.command()
def run(
    workers: WorkersOpt = None,
    only: OnlyOpt = None,
    model: ModelOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would run where; change nothing.")
    ] = False,
    json_out: JsonOpt = False,
    executor: ExecutorOpt = None,
    ray_address: RayAddressOpt = None,
    publish: PublishOpt = None,
    budget: BudgetOpt = None,
    run_for: ForOpt = None,
    run_until: UntilOpt = None,
    land: LandOpt = None,
) -> None:
    """Run every runnable task of the queue, then print a summary (exit 0 all finished, 1 any failed)."""
    config = get_config(
        workers=workers, executor=executor, ray={"address": ray_address} if ray_address else None,
        **budget_overrides(budget, run_for, run_until),
    )  # fmt: skip
    if dry_run:
        _dry_run(config, only=only, model=model, json_out=json_out)
        return
    code = _run(config, only=only, model=model, json_out=json_out, publish=publish, watch=False, land=land)
    raise typer.Exit(code)


@app.command()
def watch(
    workers: WorkersOpt = None,
    only: OnlyOpt = None,
    model: ModelOpt = None,
    json_out: JsonOpt = False,
    executor: ExecutorOpt = None,
    ray_address: RayAddressOpt = None,
    publish: PublishOpt = None,
    budget: BudgetOpt = None,
    run_for: ForOpt = None,
    run_until: UntilOpt = None,
) -> None:
    """Keep running: task files dropped into tasks/ are validated, queued and dispatched at once."""
    config = get_config(
        workers=workers, executor=executor, ray={"address": ray_address} if ray_address else None,
        **budget_overrides(budget, run_for, run_until),
    )  # fmt: skip
    raise typer.Exit(_run(config, only=only, model=model, json_out=json_out, publish=publish, watch=True))


def _run(
    config: RunnerConfig,
    *,
    only: list[str] | None,
    model: str | None,
    json_out: bool,
    publish: bool | None,
    watch: bool,
    land: bool | None = None,
) -> int:
    # ~20-35 ms (the live view) and ~20-40 ms (the scheduler) that every other command would pay at start
    from agent_runner.cli.run_view import make_view, print_summary
    from agent_runner.coordinator.scheduler import Scheduler

    root = repo_root()
    _require_project(root, config)
    queue = open_queue(root, config)
    queue.check()
    warn_skipped(queue)
    with queue.coordinator():  # another run on this queue: say so now, before the live table starts
        pass
    executor = make_executor(config, root=root)
    view = make_view(console, config.path(root, "state_dir"), json_out=json_out)
    publisher = _publisher(config, publish)
    scheduler = Scheduler(
        queue, executor, config=config, root=root, publisher=publisher, only=only or (), model=model,
        on_event=view.handle,
    )  # fmt: skip

    def rerun() -> object:  # `run --land`: the tasks the train queued again, run without the live table
        return Scheduler(queue, executor, config=config, root=root, publisher=publisher, model=model).run()

    try:
        with (
            _interrupts(scheduler, view),
            view,
            _watching(scheduler, config.path(root, "tasks_dir"), enabled=watch),
        ):
            summary = scheduler.run(watch=watch)
            queued = view.settle(queue.refresh())  # the last frame agrees with the queue file
        trains = None
        if config.train.at_end if land is None else land:
            trains = land_after_run(queue, executor, config=config, root=root, rerun=rerun, json_out=json_out)
    finally:
        executor.close()
    if json_out:
        sys.stdout.write(json.dumps({"event": "summary", **summary.to_json()}) + "\n")
    else:
        print_summary(console, summary, queued=queued)
    if trains is not None:
        print_result(trains, json_out=json_out)
        if publisher is not None:  # the same token and --publish/--no-publish as the run's own PRs
            publish_trains_view(root, config, trains, quiet=json_out)
    return summary.exit_code


def make_executor(config: RunnerConfig, *, root: Path) -> Executor:
    """Return the executor named in the config (ssh and ray are imported only when chosen)."""
    if config.executor == "local":
        state = config.path(root, "state_dir")
        return LocalExecutor(workdir=state, workers=config.workers, forward_env=config.forward_env, cwd=root)
    if config.executor not in EXECUTORS:
        raise ConfigError(f"unknown executor '{config.executor}'; choose one of {', '.join(EXECUTORS)}")
    module = importlib.import_module(f"agent_runner.executors.{config.executor}")
    cls = getattr(module, "SshExecutor" if config.executor == "ssh" else "RayExecutor")
    factory = getattr(cls, "from_config", None)
    return factory(config, root=root) if factory else cls(config=config, root=root)


def _publisher(config: RunnerConfig, publish: bool | None) -> Publisher | None:
    if publish is None:
        publish = bool(os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN"))
    if not publish:
        return None
    from agent_runner.core.redact import runner_redactor  # ~1.3 ms at every CLI start
    from agent_runner.github.publisher import GitHubPublisher  # ~11 ms at every CLI start

    return GitHubPublisher(config.github, redactor=runner_redactor(config, os.environ))


@contextmanager
def _interrupts(scheduler: Scheduler, view: JsonView | LiveView) -> Iterator[None]:
    """First Ctrl-C: stop claiming, let running tasks finish. Second: cancel them and release their leases.

    Each press is acknowledged at once by the view, with what happens next."""
    from agent_runner.cli.run_view import interrupt_notice  # ~20-35 ms, as in _run: loaded by then

    presses = 0

    def handler(signum: int, frame: object) -> None:
        nonlocal presses
        presses += 1
        view.notice(interrupt_notice(presses, list(scheduler.running)))  # this thread's own dict: no race
        if presses == 1:
            scheduler.stop()
        else:
            scheduler.cancel()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _watching(scheduler: Scheduler, folder: Path, *, enabled: bool) -> Iterator[None]:
    """In watch mode, ask the scheduler to re-sync whenever a task file appears or changes."""
    if not enabled:
        yield
        return
    import watchfiles  # ~4-7 ms at every CLI start: only `watch` needs it

    stop = threading.Event()
    folder.mkdir(parents=True, exist_ok=True)

    def loop() -> None:
        for _changes in watchfiles.watch(
            folder, stop_event=stop, debounce=200, step=50, raise_interrupt=False
        ):
            scheduler.request_sync()

    thread = threading.Thread(target=loop, daemon=True, name="watch-tasks")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def _require_project(root: Path, config: RunnerConfig) -> None:
    """Refuse to run (and to create or spend anything) outside a git repo or without a task folder."""
    require_repo(root)
    tasks = config.path(root, "tasks_dir")
    if not tasks.is_dir():
        raise ConfigError(
            f"no task folder at {tasks}: run from your repo (or pass --root), or start one: `run-agents init`"
        )


def _dry_run(config: RunnerConfig, *, only: list[str] | None, model: str | None, json_out: bool) -> None:
    # ~20-35 ms (the views) that every other command would pay at start
    from agent_runner.cli.run_view import plan_json, plan_table
    from agent_runner.coordinator.holds import model_problem  # ~2 ms, and planning imports it
    from agent_runner.coordinator.planning import invalid_rows, plan, preview_states  # ~13-25 ms

    root = repo_root()
    _require_project(root, config)
    states, invalid = preview_states(root, config, open_queue(root, config))
    slots = make_executor(config, root=root).slots()
    ids = frozenset(only or ())
    problem = functools.partial(model_problem, config=config, environ=os.environ)
    rows = plan(states, slots, config=config, only=ids, model=model, model_problem=problem, root=root)
    rows += invalid_rows(invalid, only=ids)
    if json_out:
        sys.stdout.write(json.dumps(plan_json(rows)) + "\n")
    else:
        console.print(plan_table(rows))


@app.command()
def clean(
    runs: Annotated[bool, typer.Option("--runs", help="Also delete run logs and trajectories.")] = False,
) -> None:
    """Remove kept, parked and made-ahead checkouts (and with --runs, the run logs and trajectories)."""
    config = get_config()
    state = config.path(repo_root(), "state_dir")
    folders = ("checkouts", "pool", "ready", "trash")
    targets = [state / name for name in folders] + ([state / "runs"] if runs else [])
    n_removed = 0
    for folder in targets:
        if folder.is_dir():
            n_removed += sum(1 for _ in folder.iterdir())
            shutil.rmtree(folder)
    console.print(f"removed {n_removed} folder(s) under {state}", markup=False)

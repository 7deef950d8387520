"""`run-agents init`: set up a repo for agent-runner (tasks/, prompts/, config), keeping what exists."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from agent_runner.config.prompts import builtin_templates
from agent_runner.config.runner import RunnerConfig, read_pyproject
from agent_runner.core.errors import ConfigError
from agent_runner.core.task_io import write_new_file
from agent_runner.queue.log import side_files

EXAMPLE_NAME = "_example.md"  # a leading '_' keeps it out of the queue: it is a template to copy
EXAMPLE_TASK = """\
---
# An example task. Files starting with '_' are not queued: copy this file to a new name
# (or use `run-agents add`) to make a real task. Every field is described in docs/tasks.md.
kind: fix-lint
title: Clean lint in src
paths: [src/]
priority: 0
max_attempts: 3
limits: {steps: 30, cost_usd: 0.5, minutes: 15}
pr: draft
---
Fix the ruff violations under src/ without changing behaviour.
"""
CONFIG_TABLE = """
[tool.agent-runner]
# Every setting and its default: docs/configuration.md.
# model = "{model}"
# workers = 2
# test = "python -m pytest -q"
# setup = ["pip install -e ."]
tasks_dir = "{tasks_dir}"
queue = "{queue}"
"""


@dataclass
class InitReport:
    """What `init` created and what it left alone because it existed."""

    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def init_project(root: Path, config: RunnerConfig) -> InitReport:
    """Create tasks/ with an example, prompts/ with the built-in templates, and the pyproject table."""
    if not (root / ".git").exists():
        raise ConfigError(f"{root} is not a git repository; run `git init` there first (or pass --root)")
    report = InitReport()
    tasks = config.path(root, "tasks_dir")
    tasks.mkdir(parents=True, exist_ok=True)
    _write_new(root, tasks / EXAMPLE_NAME, EXAMPLE_TASK, report)
    _copy_prompts(root, builtin_prompts(), root / "prompts", report)
    _add_config_table(root, config, report)
    state = f"/{config.state_dir.strip('/')}/"
    queue_files = [f"/{name}" for name in side_files(config.queue)]
    _ignore(root, [state, *queue_files], report)
    return report


def builtin_prompts() -> list[Path]:
    """Return the built-in prompt templates that `init` copies for editing."""
    return builtin_templates()


def _write_new(root: Path, path: Path, text: str, report: InitReport) -> None:
    name = str(path.relative_to(root))
    try:
        write_new_file(path, text)  # whole or not at all, and never over a file that is there
    except FileExistsError:
        report.kept.append(name)
        return
    report.created.append(name)


def _copy_prompts(root: Path, templates: Iterable[Path], dest: Path, report: InitReport) -> None:
    dest.mkdir(exist_ok=True)
    for template in templates:
        target = dest / template.name
        if target.exists():
            report.kept.append(str(target.relative_to(root)))
            continue
        shutil.copyfile(template, target)
        report.created.append(str(target.relative_to(root)))


def _add_config_table(root: Path, config: RunnerConfig, report: InitReport) -> None:
    path = root / "pyproject.toml"
    if read_pyproject(root) or (path.exists() and "[tool.agent-runner" in path.read_text(encoding="utf-8")):
        report.kept.append("pyproject.toml [tool.agent-runner]")
        return
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    table = CONFIG_TABLE.format(tasks_dir=config.tasks_dir, queue=config.queue, model=config.model)
    path.write_text(text + table, encoding="utf-8")
    read_pyproject(root)  # fails loudly if the result is not valid TOML
    report.created.append("pyproject.toml [tool.agent-runner]")


def _ignore(root: Path, patterns: list[str], report: InitReport) -> None:
    path = root / ".gitignore"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    missing = [p for p in patterns if p not in text.splitlines()]
    if not missing:
        return
    prefix = "" if not text or text.endswith("\n") else "\n"
    path.write_text(text + prefix + "\n".join(missing) + "\n", encoding="utf-8")
    report.created.append(".gitignore entries")

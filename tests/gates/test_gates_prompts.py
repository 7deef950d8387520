"""The built-in prompts render with each kind's prestep variables and name the gates the agent faces."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runner.config.prompts import render


def _job_vars(ctx) -> dict:
    task = ctx.task
    names = {"gates": [], "gate_names": [], "checkout": ".", "test_command": ctx.test_command}
    return {"task": task, "kind": task.kind.value, "title": task.display_title, "paths": task.paths, **names}


@pytest.mark.parametrize(
    ("kind", "paths", "expected"),
    [
        ("fix-lint", ["calc/geometry.py"], ["calc/geometry.py:4:32: B006", "no new ruff violation", "noqa"]),
        ("write-tests", ["calc/stats.py"], ["calc/stats.py: 0.0%", "mutation check", "at least 5"]),
        ("change", [], ["ruff on the files you touch", "every test that passed before"]),
        ("review", [], ["Do not modify any file"]),
    ],
)
def test_prompt_names_the_gates(
    kind: str, paths: list[str], expected: list[str], calc_repo: Path, make_ctx, gate_run
) -> None:
    """Each kind's template renders with its prestep's variables and tells the agent its gates."""
    run = gate_run(make_ctx(calc_repo, kind=kind, paths=paths, instructions="do it"))
    text = render(run.kind.template, **_job_vars(run.ctx), **run.prestep.prompt_vars)
    for snippet in expected:
        assert snippet in text


def test_reflection_prompt_shows_the_report(calc_repo: Path, make_ctx, gate_run) -> None:
    """The reflection prompt carries the gate report with the offending lines."""
    from agent_runner.gates.report import render_report

    run = gate_run(make_ctx(calc_repo, kind="fix-lint", paths=["calc/geometry.py"]))
    report = render_report(list(run.check().values()))
    text = render(
        "reflection.md.j2", **_job_vars(run.ctx), **run.prestep.prompt_vars, report=report, round=1, rounds=3
    )
    assert "| lint-targets | violations 2 | violations 2 | **fail** |" in text
    assert "calc/geometry.py:13:9: E741" in text

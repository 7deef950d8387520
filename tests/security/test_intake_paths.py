"""Task `paths` stay inside the repo: refused at intake, and dropped by the worker if one gets through."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_runner.cli import get_app
from agent_runner.core.errors import TaskFileError
from agent_runner.core.protocols import GateContext
from agent_runner.core.task import Task, TaskKind, load_task_file
from agent_runner.gates.kinds import FixLintKind
from agent_runner.gates.ruff import is_inside, targets_of

UNUSED_IMPORT = "import os\n"  # F401, which `ruff check --fix` removes


def write_task(folder: Path, paths: str) -> Path:
    """Write a fix-lint task file whose front matter has `paths: <paths>` (YAML text)."""
    path = folder / "bad.md"
    path.write_text(f"---\nkind: fix-lint\npaths: {paths}\n---\nClean.\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("paths", "needle"),
    [
        ("[/abs/elsewhere/bad.py]", "is absolute"),
        ("[../../x/bad.py]", "'..'"),
        ("[src/../../x/bad.py]", "'..'"),
        ("[src/ok.py, ~/bad.py]", "home folder"),
        ('["src/a\\0b.py"]', "control character"),
        ('["src/a\\x1bb.py"]', "control character"),
        ('["src/a\\nb.py"]', "control character"),
    ],
)
def test_paths_outside_the_repo_are_task_file_errors(tmp_path: Path, paths: str, needle: str) -> None:
    """Absolute paths, '..', '~' and control characters in `paths` are errors naming file and field."""
    path = write_task(tmp_path, paths)
    with pytest.raises(TaskFileError) as info:
        load_task_file(path)
    err = info.value
    assert err.path == str(path) and err.field == "paths"
    assert str(err).startswith(f"{path}: field 'paths': ") and needle in str(err)


def test_relative_paths_inside_the_repo_are_kept(tmp_path: Path) -> None:
    """Ordinary relative targets (files, folders, './', '.') load unchanged."""
    task = load_task_file(write_task(tmp_path, "[src/, ./src/a.py, ., pkg/..hidden.py]"))
    assert task.paths == ["src/", "./src/a.py", ".", "pkg/..hidden.py"]


def test_add_refuses_a_path_outside_the_repo(tmp_path: Path) -> None:
    """`run-agents add fix-lint --path /abs/x.py` exits 1 naming the field, and writes no task file."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    args = ["--root", str(tmp_path), "add", "fix-lint", "--path", "/abs/x.py", "--title", "Clean x"]
    result = CliRunner().invoke(get_app(), args)
    assert result.exit_code == 1 and isinstance(result.exception, TaskFileError)
    assert result.exception.field == "paths" and "is absolute" in str(result.exception)
    assert not (tmp_path / "tasks" / "clean-x.md").exists()


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A checkout with one dirty file and a symlink out, and a dirty file outside it."""
    checkout, outside = tmp_path / "checkout", tmp_path / "outside"
    checkout.mkdir()
    outside.mkdir()
    (checkout / "inside.py").write_text(UNUSED_IMPORT)
    (outside / "bad.py").write_text(UNUSED_IMPORT)
    (checkout / "link").symlink_to(outside, target_is_directory=True)
    return checkout, outside


def smuggled(checkout: Path, paths: list[str]) -> GateContext:
    """A gate context whose task skipped validation (as a tampered request would)."""
    task = Task.model_construct(
        id="t1", kind=TaskKind.FIX_LINT, paths=paths, format=True, allow_partial=False
    )
    return GateContext(checkout, task, "HEAD", "true")


def test_worker_drops_targets_outside_the_checkout(layout: tuple[Path, Path]) -> None:
    """targets_of keeps only paths that resolve inside the checkout, symlinks followed."""
    checkout, outside = layout
    bad = [str(outside / "bad.py"), "../outside/bad.py", "link/bad.py", "a\x00b.py"]
    assert targets_of(smuggled(checkout, ["inside.py", *bad])) == ["inside.py"]
    assert targets_of(smuggled(checkout, bad)) == []  # not '.': the task named targets, none usable
    assert targets_of(smuggled(checkout, [])) == ["."]
    assert is_inside(checkout, ".") and not is_inside(checkout, "link")


def test_fix_lint_prestep_never_rewrites_files_outside(layout: tuple[Path, Path]) -> None:
    """The deterministic `ruff --fix` pre-step leaves files outside the checkout alone."""
    checkout, outside = layout
    bad = [str(outside / "bad.py"), "../outside/bad.py", "link/bad.py"]
    FixLintKind().prestep(smuggled(checkout, ["inside.py", *bad]))
    assert (outside / "bad.py").read_text() == UNUSED_IMPORT
    assert (checkout / "inside.py").read_text() == ""  # the target inside was fixed
    step = FixLintKind().prestep(smuggled(checkout, bad))
    assert (outside / "bad.py").read_text() == UNUSED_IMPORT
    assert "inside the checkout" in step.prompt_vars["lint_error"]


def test_a_queued_task_with_a_path_outside_fails_without_stopping_the_run(tmp_path: Path) -> None:
    """A queue line written by an older version (or by hand) names '../x': that task fails with the reason,
    spending nothing, and the run goes on to the next task, which finishes."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "faults"))
    from faults_helpers import Project, json_events

    from agent_runner.queue.store import Queue
    from agent_runner.testing.scripts import bash_turn, finish_turn

    project = Project.create(tmp_path)
    bad = Task(id="sneaky", kind=TaskKind.FIX_LINT).model_copy(update={"paths": ["../x.py"]})  # unvalidated
    Queue(project.queue_file).add(bad)
    turns = [bash_turn("echo 'x = 1' > new.py"), finish_turn("done")]
    project.task("fine", project.script("fine", turns), kind="change")
    out = project.cli("run", "--json", timeout=120)
    ended = {e["task"]: e for e in json_events(out.stdout) if e.get("event") in ("finished", "failed")}
    assert set(ended) == {"sneaky", "fine"}, out.stdout + out.stderr
    assert ended["fine"]["event"] == "finished"
    assert ended["sneaky"]["event"] == "failed" and "'..'" in ended["sneaky"]["message"], ended["sneaky"]
    assert "Traceback" not in out.stderr

"""Every `run-agents` command of README.md and docs/*.md runs as written, in a prepared repo, with fakes.

So do the `git diff` / `git merge` lines that look at and take a task's branch. A command in the docs
without a step here (or a step whose command left the docs) fails `test_every_docs_command_is_checked`,
so the docs and this test stay in sync. The other checks keep the generated parts of the docs current.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from docs_flow import (
    DOCS,
    README,
    REVIEW_SCRIPT,
    REVIEW_TASK,
    ROOT,
    Ctx,
    Step,
    base_env,
    docs_commands,
    fenced_blocks,
    git,
    make_repo,
    queue_events,
    shell,
)

from agent_runner.core.task import Task
from agent_runner.testing.fake_github import FakeGitHub
from agent_runner.testing.fake_llm import FakeLLMServer
from agent_runner.testing.fake_llm_wire import turn

TOKEN = {"GITHUB_TOKEN": "ghp_readmetesttoken000000000000000000"}


def _review_task(name: str, extra: str = "") -> object:
    def write(ctx: Ctx) -> None:
        (ctx.repo / "tasks" / f"{name}.md").write_text(REVIEW_TASK.format(extra=extra))

    return write


def _results_json(ctx: Ctx, out: str) -> None:
    result = json.loads((ctx.repo / "results" / "clean-lint-in-src.json").read_text())
    assert result["outcome"] == "accepted", result


def _two_prs(ctx: Ctx, out: str) -> None:
    heads = sorted(p["head"]["ref"] for p in ctx.github.store.pulls.values())
    assert heads == ["agent/clean-lint-in-src", "agent/pathlib-utils"]


def _merged(ctx: Ctx, out: str) -> None:
    assert "from pathlib import Path" in (ctx.repo / "src" / "widgets" / "utils.py").read_text()
    assert git(ctx.repo, "rev-parse", "main") == git(ctx.repo, "rev-parse", "agent/pathlib-utils")


def _llm_saw(protocol: str) -> object:
    def verify(ctx: Ctx, out: str) -> None:
        assert any(r.protocol == protocol for r in ctx.llm.requests), (
            f"no {protocol} request reached the fake"
        )

    return verify


MACHINES = {  # one machine whose ssh port refuses at once: a real check, a real "down" answer
    "AGENT_RUNNER_MACHINES": json.dumps(
        [{"name": "laptop-a", "ssh": "nobody@127.0.0.1", "connect_timeout_s": 2}]
    ),
    "AGENT_RUNNER_SSH": json.dumps({"options": ["Port=1"]}),
}
FLOW = [
    Step("run-agents init", "created  tasks/_example.md"),
    Step('run-agents add fix-lint --path src/ --title "Clean lint in src"', "Queued clean-lint-in-src"),
    Step(
        'run-agents add change -m "Replace os.path with pathlib in utils.py" --id pathlib-utils',
        "Queued pathlib-utils",
    ),
    Step("run-agents list", "pathlib-utils"),
    Step("run-agents list --json", '"id": "pathlib-utils"'),
    Step("run-agents run --dry-run", "would start now"),
    Step("run-agents sweep lint --dry-run", "1 without a model"),  # legacy.py's unused import
    Step("run-agents sweep tests --below 90 --dry-run", "tests-src-widgets-legacy"),
    Step(
        "run-agents sweep issues --label agent --dry-run", "sweep issues would write", env=lambda ctx: TOKEN
    ),
    Step("AGENT_RUNNER_WORKERS=4 AGENT_RUNNER_MODEL=openai:gpt-5 run-agents run --dry-run", "openai:gpt-5"),
    Step("run-agents plan", "clean-lint-in-src  tasks/clean-lint-in-src.md"),
    Step("run-agents plan --matrix", '"id":"clean-lint-in-src"'),
    Step(
        "run-agents exec tasks/clean-lint-in-src.md --json --inline-bundle > results/clean-lint-in-src.json",
        "",
        before=lambda ctx: (ctx.repo / "results").mkdir(),  # docs/github.md's `mkdir -p results`
        verify=_results_json,
    ),
    Step("run-agents ingest results", "unpublished: no GitHub token"),
    Step("run-agents publish clean-lint-in-src", "published clean-lint-in-src", env=lambda ctx: TOKEN),
    Step("run-agents run", "1 finished", env=lambda ctx: TOKEN, verify=_two_prs),
    Step("run-agents land", "agent/integration: 2 verified result(s) on main"),
    Step("run-agents run --land", "agent/integration: 2 verified result(s) on main"),  # nothing new lands
    Step("git diff main agent/integration", "+from pathlib import Path"),
    Step("run-agents show pathlib-utils", "utils.py uses pathlib"),
    Step("git diff main agent/pathlib-utils", "+from pathlib import Path"),
    Step("run-agents show pathlib-utils --trajectory", "run started"),
    Step(
        "run-agents exec tasks/pathlib-utils.md --model scripted:$PWD/script.yaml --json",
        '"outcome":"accepted"',
    ),
    Step("run-agents prs", "pathlib-utils", env=lambda ctx: TOKEN),
    Step("run-agents prs --json", '"task": "pathlib-utils"', env=lambda ctx: TOKEN),
    Step("run-agents refresh", "Nothing to refresh", env=lambda ctx: TOKEN),
    Step("run-agents refresh --json", '"outcome": "unchanged"', env=lambda ctx: TOKEN),
    Step("run-agents review 2", "request_changes", env=lambda ctx: TOKEN),
    Step(
        "run-agents review https://github.com/acme/widgets/pull/2 --json",
        '"verdict": "request_changes"',
        env=lambda ctx: TOKEN,
    ),
    Step("run-agents review --all --post", "review posted (1 inline)", env=lambda ctx: TOKEN),
    Step(
        "run-agents run --model anthropic:claude-sonnet-5-5",
        "1 finished",
        env=lambda ctx: {
            "ANTHROPIC_API_KEY": "sk-ant-readme-test",
            "ANTHROPIC_BASE_URL": ctx.llm.anthropic_base_url,
        },
        before=_review_task("review-a"),
        verify=_llm_saw("anthropic"),
    ),
    Step(
        "OPENAI_BASE_URL=http://localhost:8000/v1 run-agents run --model openai:qwen3-coder",
        "1 finished",
        rewrite=lambda ctx, cmd: cmd.replace("http://localhost:8000/v1", ctx.llm.openai_base_url),
        before=_review_task("review-b"),
        verify=_llm_saw("openai"),
    ),
    Step(
        "run-agents watch",
        "1 finished",
        code=130,
        before=lambda ctx: _review_task("review-c", f"model: scripted:{ctx.review_script}\n")(ctx),
        stop_when=lambda ctx: bool(queue_events(ctx, "review-c", "finished")),
        timeout=60,
    ),
    Step("run-agents status", "finished"),
    Step("run-agents status --json", '"finished"'),
    Step("run-agents stats", "League table"),
    Step("run-agents stats --json", '"rows"'),
    Step("run-agents report", "report.html"),
    Step("run-agents report --open", "report.html"),
    Step(
        "run-agents report --out run.html",
        "run.html",
        verify=lambda ctx, out: (ctx.repo / "run.html").read_text().startswith("<!"),
    ),
    Step("run-agents list --status failed", "No tasks"),
    Step("run-agents requeue pathlib-utils", "Requeued pathlib-utils"),
    Step("run-agents cancel pathlib-utils", "Cancelled pathlib-utils (was queued"),
    Step("run-agents compact", "Compacted"),
    Step("run-agents clean", ""),
    Step("run-agents init --github", ".github/workflows/run-agents.yml"),
    Step("run-agents machines", "Connection refused", code=1, env=lambda ctx: MACHINES),
    Step("run-agents machines check --json", '"is_reachable": false', code=1, env=lambda ctx: MACHINES),
    Step(
        "run-agents models check anthropic:claude-sonnet-5-5 --json",
        '"message": "no key: set ANTHROPIC_API_KEY"',
        code=1,
        env=lambda ctx: {"ANTHROPIC_API_KEY": ""},  # keyless: the check names the variable, sends nothing
    ),
    Step("run-agents --debug show no-such-task", "QueueError", code=1),
    Step("run-agents review 2 --fix", "pathlib-utils-fix1", env=lambda ctx: TOKEN),
    Step("git merge agent/pathlib-utils", "", verify=_merged),  # last: main then holds the change
]
DEMO = "run-agents demo"
NEEDS_INFRA = {  # command -> why it only gets `--help` here, and the test that runs it for real
    "run-agents run --executor ssh": (
        "needs an SSH fleet: root, network namespaces and sshd per machine",
        "tests/fleet/test_fleet_ssh.py",
    ),
    'AGENT_RUNNER_RAY=\'{"address": "auto"}\' run-agents run --executor ray': (
        "needs a running Ray cluster (address auto)",
        "tests/fleet/test_fleet_ray.py",
    ),
}


def test_every_docs_command_is_checked() -> None:
    """The docs' commands are exactly the ones this test runs (or checks with --help), wherever they live."""
    in_docs = docs_commands()
    checked = {step.command for step in FLOW} | set(NEEDS_INFRA) | {DEMO}
    unchecked = {command: pages for command, pages in in_docs.items() if command not in checked}
    assert not unchecked, f"commands in the docs without a check: {unchecked}"
    gone = sorted(checked - set(in_docs))
    assert not gone, f"checks for commands no longer in the docs: {gone}"


def test_quickstart_starts_with_the_ci_test_command_then_the_demo() -> None:
    """Quickstart's first command sets up and runs .ci/run's test command; its second runs the demo."""
    quickstart = README.read_text(encoding="utf-8").split("## Quickstart", 1)[1]
    (_, first), (_, second) = fenced_blocks(quickstart)[:2]
    parts = [p.strip() for p in first[0].split("&&")]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = ci.split("# The README's test command:\n", 1)[1].splitlines()[0].strip()
    assert parts[-1] == test_command
    extras = re.search(r"pip install (?:-q )?-e ('[^']+')", ci)
    assert extras and f"pip install -e {extras.group(1)}" in parts
    assert second[0] == DEMO


def test_readme_is_the_pitch_with_the_user_install_first() -> None:
    """The README stays under 15 KB and its Install section gives the user install (pipx, uv tool)."""
    text = README.read_text(encoding="utf-8")
    assert len(text.encode()) < 15_000, "the reference belongs in docs/, not the README"
    install = text.split("## Install", 1)[1].split("\n## ", 1)[0]
    assert "pipx install agent-runner" in install and "uv tool install agent-runner" in install
    assert text.index("## Install") < text.index("## Quickstart")


def test_task_table_names_every_task_field() -> None:
    """The field table of docs/tasks.md lists exactly the Task model's fields."""
    text = (DOCS / "tasks.md").read_text(encoding="utf-8").split("\n## Fields\n", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.MULTILINE))
    assert rows == set(Task.model_fields)


def test_config_reference_is_generated_from_the_models() -> None:
    """docs/configuration.md's reference equals what docs/gen_config_table.py generates now."""
    spec = importlib.util.spec_from_file_location("gen_config_table", DOCS / "gen_config_table.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.TARGET == DOCS / "configuration.md"
    page = gen.TARGET.read_text(encoding="utf-8")
    for name, body in gen.generated().items():
        assert gen.current(page, name) == body, "run: python docs/gen_config_table.py --write"


@pytest.mark.timeout(300)
def test_docs_commands_run_as_written(tmp_path: Path) -> None:
    """Each docs command exits as expected and prints its key phrase; the demo runs meanwhile."""
    env = base_env(tmp_path)
    (tmp_path / "demo-cwd").mkdir()
    demo = subprocess.Popen(
        ["bash", "-c", DEMO], cwd=tmp_path / "demo-cwd", env={**env, "TMPDIR": str(tmp_path)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    repo, origin = make_repo(tmp_path, env)
    review_script = tmp_path / "review.json"
    review_script.write_text(json.dumps(REVIEW_SCRIPT))
    reply = turn(tool_calls=[("finish", {"summary": json.dumps({"verdict": "approve", "findings": []})})])
    failures = []
    with FakeGitHub(origin=origin) as github, FakeLLMServer(default=reply) as llm:
        gh_config = {"api_url": github.base_url, "repository": github.full_name}
        env |= {
            "AGENT_RUNNER_MODEL": f"scripted:{repo / 'script.yaml'}",
            "AGENT_RUNNER_REVIEW_MODEL": f"scripted:{review_script}",
            "AGENT_RUNNER_GITHUB": json.dumps(gh_config | {"request_interval_s": 0, "write_interval_s": 0}),
        }
        ctx = Ctx(repo=repo, env=env, github=github, llm=llm, review_script=review_script)
        for step in FLOW:
            failures += _run_step(ctx, step)
        for command, (_why, test_file) in NEEDS_INFRA.items():
            code, out = shell(ctx, Step(f"{command} --help", ""))
            if code != 0 or "--executor" not in out or not (ROOT / test_file).is_file():
                failures.append(f"{command} --help: exit {code}, or {test_file} is missing\n{out[-1500:]}")
    out, _ = demo.communicate(timeout=240)
    if demo.returncode != 0 or "Branches made" not in out or "[recorded]" not in out:
        failures.append(f"{DEMO}: exit {demo.returncode}\n{out[-3000:]}")
    assert not failures, "\n\n".join(failures)


def _run_step(ctx: Ctx, step: Step) -> list[str]:
    """Run one step; return a failure description, or nothing."""
    if step.before and step.stop_when is None:
        step.before(ctx)
    started = time.monotonic()
    code, out = shell(ctx, step)
    if os.environ.get("DOCS_TEST_TIMES"):
        print(f"{time.monotonic() - started:6.1f} s  {step.command}")
    problem = ""
    if code != step.code:
        problem = f"exit {code}, expected {step.code}"
    elif step.phrase not in out:
        problem = f"output lacks {step.phrase!r}"
    elif step.verify:
        try:
            step.verify(ctx, out)
        except (AssertionError, OSError, ValueError) as exc:
            problem = f"check failed: {exc!r}"
    shown = out if len(out) < 4000 else f"{out[:1500]}\n[...]\n{out[-2500:]}"
    return [f"{step.command}: {problem}\n{shown}"] if problem else []

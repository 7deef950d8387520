"""Secret hygiene end to end: planted keys reach no output, a committed key is refused, tasks untrusted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from faults_helpers import Project, Scenario, finish_call, git, json_events

from agent_runner.testing.fake_github import FakeGitHub
from agent_runner.testing.scripts import bash_turn

SECRETS = {
    "ANTHROPIC_API_KEY": "sk-ant-api03-FAKEfaultsuite0123456789abcdefXYZ-0123456789abcdef",
    "OPENAI_API_KEY": "sk-proj-FAKEfaultsuite0123456789abcdefXYZ0123456789abcdef",
    "GITHUB_TOKEN": "ghp_FAKEfaultsuite0123456789abcdefXYZ01",
    "COORD_DB_PASSWORD": "hunter2-plain-secret-no-pattern",
}
# Every ancestor's environment, from the agent's shell up to pid 1.
ANCESTORS = (
    "p=$PPID; while [ \"$p\" -gt 0 ] 2>/dev/null; do echo \"== $p\"; tr '\\0' '\\n' < /proc/$p/environ; "
    "p=$(awk '{print $4}' /proc/$p/stat 2>/dev/null || echo 0); done; cat /proc/1/environ"
)
PROBES = [
    bash_turn("echo A=$ANTHROPIC_API_KEY O=$OPENAI_API_KEY G=$GITHUB_TOKEN D=$COORD_DB_PASSWORD"),
    bash_turn("env"),
    bash_turn(ANCESTORS),
    bash_turn("cat /proc/$PPID/environ; ls /proc"),
]


def _leaks(text: str) -> list[str]:
    return [name for name, value in SECRETS.items() if value in text]


def _output_files(project: Project) -> list[Path]:
    """Every file the runner wrote, except the agent's own checkouts, the git caches and the scripts."""
    skip = {"checkouts", "cache", "caches", "home", "homes"}
    files = [
        p
        for p in project.state.rglob("*")
        if p.is_file() and not (skip & set(p.relative_to(project.state).parts))
    ]
    return [*files, project.queue_file]


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (installed by .ci/run)")
def test_planted_secrets_leak_nowhere_and_a_committed_key_is_refused(
    project: Project, scenario: Scenario, tmp_path: Path
) -> None:
    """The agent echoes, envs and reads every ancestor's environ, commits a key: no output holds a secret."""
    project.configure('sandbox = "bwrap"\n')
    leaky = project.script(
        "leaky",
        [
            *PROBES,
            bash_turn(f"printf 'TOKEN = \"%s\"\\n' {SECRETS['GITHUB_TOKEN']} > settings.py"),
            finish_call(f"stored the token {SECRETS['GITHUB_TOKEN']} and {SECRETS['ANTHROPIC_API_KEY']}"),
        ],
    )
    echoer = project.script(
        "echoer",
        [
            *PROBES,
            bash_turn("echo 'x = 1' > harmless.py"),
            finish_call(f"done; saw {SECRETS['OPENAI_API_KEY']}"),
        ],
    )
    project.task("leaky", leaky, max_attempts=1, reflection_rounds=0)
    project.task("echoer", echoer, max_attempts=1, reflection_rounds=0)
    with FakeGitHub(origin=project.origin) as fake:
        project.configure(
            f'[tool.agent-runner.github]\napi_url = "{fake.base_url}"\nrepository = "{fake.full_name}"\n'
            "request_interval_s = 0\nwrite_interval_s = 0\n"
        )
        out = project.cli("run", "--json", env=SECRETS, timeout=120)
        pr_bodies = [str(p.get("body", "")) for p in fake.store.pulls.values()]
        requests = [
            r.body.decode("utf-8", "replace") if isinstance(r.body, bytes) else str(r.body)
            for r in fake.requests
        ]
    events = {e.get("task"): e for e in json_events(out.stdout) if e.get("event") in ("finished", "failed")}
    assert "echoer" in events, out.stdout + out.stderr
    assert events["echoer"]["event"] == "finished", out.stdout + out.stderr
    assert events["leaky"]["event"] == "failed"
    reason = events["leaky"].get("message", "")
    assert "secret" in reason.lower(), reason
    assert pr_bodies, "the accepted task should have a PR on the fake GitHub"
    leaks = {}
    for path in _output_files(project):
        found = _leaks(path.read_text(encoding="utf-8", errors="replace"))
        if found:
            leaks[str(path.relative_to(project.root.parent))] = found
    for index, text in enumerate([out.stdout, out.stderr, *pr_bodies, *requests]):
        if _leaks(text):
            leaks[f"coordinator/github output {index}"] = _leaks(text)
    assert git(project.origin, "branch", "--list", "agent/leaky") == ""
    scenario.outcome = "no secret in any output; committed key refused" if not leaks else f"LEAKS {leaks}"
    assert not leaks, f"secrets leaked into: {leaks}"


def test_task_file_cannot_name_a_branch_outside_agent(project: Project, scenario: Scenario) -> None:
    """A task whose `branch` is main is invalid (named by file) and nothing is pushed there."""
    project.task("sneaky", project.edit_script("s", "s.py", "x = 1\n"), branch="main")
    out = project.cli("run", "--json")
    invalid = [e for e in json_events(out.stdout) if e.get("event") == "invalid"]
    assert invalid and invalid[0]["task"] == "sneaky"
    assert "agent/" in invalid[0]["message"] and "sneaky.md" in invalid[0]["message"]
    assert git(project.root, "log", "--oneline", "main").count("\n") == 0  # main untouched
    scenario.outcome = "invalid: " + invalid[0]["message"][:70]


def test_task_file_cannot_turn_off_gates_unless_config_permits(project: Project, scenario: Scenario) -> None:
    """A task listing `allow: [noqa]` still has its `# noqa` refused while the runner config does not."""
    model = project.edit_script("nq", "calc.py", "import os  # noqa\n\ndef add(a, b):\n    return a + b\n")
    project.task("noqa", model, allow=["noqa"], max_attempts=1, reflection_rounds=0)
    out = project.cli("run", "--json")
    ended = [
        e
        for e in json_events(out.stdout)
        if e.get("task") == "noqa" and e.get("event") in ("finished", "failed")
    ]
    assert ended and ended[-1]["event"] == "failed", out.stdout
    assert "noqa" in ended[-1]["message"]
    scenario.outcome = "gate kept: " + ended[-1]["message"].splitlines()[0][:60]


def test_review_comments_posted_to_github_carry_no_secret(project: Project, scenario: Scenario) -> None:
    """`review --post` with a model that quotes a planted token: the review and its comments are redacted."""
    project.task("pub", project.edit_script("pub", "pub.py", "x = 1\n"), paths=["pub.py"])
    token = SECRETS["GITHUB_TOKEN"]
    finding = {"file": "pub.py", "line": 1, "severity": "blocking", "explanation": f"leaks {token} here"}
    summary = json.dumps({"verdict": "request_changes", "findings": [finding]})
    reviewer = project.script("reviewer", [finish_call(summary)])
    with FakeGitHub(origin=project.origin) as fake:
        project.configure(
            f'[tool.agent-runner.github]\napi_url = "{fake.base_url}"\nrepository = "{fake.full_name}"\n'
            "request_interval_s = 0\nwrite_interval_s = 0\n"
        )
        assert project.cli("run", "--json", env=SECRETS).returncode == 0
        out = project.cli("review", "1", "--post", "--model", reviewer, env=SECRETS)
        posted = [str(r.body) for r in fake.requests if r.method in ("POST", "PATCH", "PUT")]
    assert out.returncode == 0, out.stdout + out.stderr
    assert any("request_changes" in body.lower() or "blocking" in body for body in posted), posted[-3:]
    leaked = [body[:200] for body in posted if _leaks(body)]
    scenario.outcome = "review posted, no secret" if not leaked else f"LEAK in {len(leaked)} GitHub writes"
    assert not leaked, leaked
    assert not _leaks(out.stdout + out.stderr)

"""The commands of the README and the docs pages as steps, run in order in one prepared repo.

See test_docs_commands.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
SKIP_LANGS = {"toml", "yaml", "yml", "json", "markdown", "md"}
ENV_PREFIX = r"(?:[A-Z_][A-Z0-9_]*=(?:'[^']*'|\"[^\"]*\"|\S+)\s+)*"
COMMAND = re.compile(rf"^{ENV_PREFIX}run-agents(?:\s|$)")
RESULT_GIT = re.compile(r"^git (?:diff|merge) .*\bagent/")  # looking at and merging a task's branch
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing listens, so no model key is ever spent


def fenced_blocks(text: str) -> list[tuple[str, list[str]]]:
    """Return (language, lines) of every fenced code block in Markdown text."""
    blocks, lang, lines, inside = [], "", [], False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            if inside:
                blocks.append((lang, lines))
            inside, lang, lines = not inside, stripped[3:].strip().lower(), []
        elif inside:
            lines.append(stripped)
    return blocks


def command_of(line: str) -> str:
    """Return a code line without its prompt and trailing comment."""
    line = line.removeprefix("$ ").strip()
    return re.sub(r"\s+#\s.*$", "", line).strip()


def doc_pages() -> list[Path]:
    """Return the README and every page of docs/."""
    return [README, *sorted(DOCS.glob("*.md"))]


def page_commands(text: str) -> list[str]:
    """Return each `run-agents ...` (or `git diff/merge ... agent/...`) line of a page's code blocks, once."""
    found: list[str] = []
    for lang, lines in fenced_blocks(text):
        if lang in SKIP_LANGS:
            continue
        for line in map(command_of, lines):
            if (COMMAND.match(line) or RESULT_GIT.match(line)) and line not in found:
                found.append(line)
    return found


def docs_commands() -> dict[str, list[str]]:
    """Return each command of the README and the docs pages with the pages (relative paths) that show it."""
    where: dict[str, list[str]] = {}
    for page in doc_pages():
        for command in page_commands(page.read_text(encoding="utf-8")):
            where.setdefault(command, []).append(str(page.relative_to(ROOT)))
    return where


@dataclass
class Ctx:
    """What the steps share: the repo, the environment and the fake servers."""

    repo: Path
    env: dict[str, str]
    github: object  # FakeGitHub
    llm: object  # FakeLLMServer
    review_script: Path


@dataclass
class Step:
    """One docs command: how to run it and what must come out."""

    command: str
    phrase: str
    code: int = 0
    env: Callable[[Ctx], dict[str, str]] | None = None
    before: Callable[[Ctx], None] | None = None
    verify: Callable[[Ctx, str], None] | None = None
    rewrite: Callable[[Ctx, str], str] | None = None
    stop_when: Callable[[Ctx], bool] | None = None
    timeout: float = 120.0
    notes: list[str] = field(default_factory=list)


def shell(ctx: Ctx, step: Step) -> tuple[int, str]:
    """Run the step's command line with bash in the repo; return (exit code, stdout + stderr)."""
    command = step.rewrite(ctx, step.command) if step.rewrite else step.command
    env = {**ctx.env, **(step.env(ctx) if step.env else {})}
    if step.stop_when is None:
        proc = subprocess.run(
            ["bash", "-c", command],
            cwd=ctx.repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=step.timeout,
        )
        return proc.returncode, proc.stdout + proc.stderr
    return _until(ctx, step, command, env)


def _until(ctx: Ctx, step: Step, command: str, env: dict[str, str]) -> tuple[int, str]:
    """Run a long-lived command until `stop_when` holds, then press Ctrl-C (SIGINT) once."""
    proc = subprocess.Popen(
        ["bash", "-c", f"exec {command}"], cwd=ctx.repo, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    if step.before:
        time.sleep(0.5)
        step.before(ctx)
    deadline = time.monotonic() + step.timeout
    while time.monotonic() < deadline and proc.poll() is None and not step.stop_when(ctx):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out


def base_env(tmp: Path) -> dict[str, str]:
    """The environment every step starts from: the installed entry point first on PATH, no real keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_RUNNER_")}
    for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GITHUB_TOKEN", "GH_TOKEN"):
        env.pop(key, None)
    return env | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "AGENT_RUNNER_HOME": str(tmp / "runner-home"),
        "ANTHROPIC_BASE_URL": NOWHERE,
        "OPENAI_BASE_URL": NOWHERE + "/v1",
        "COLUMNS": "250",
        "BROWSER": "true",  # `report --open` runs `true URL` instead of a browser
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
    }  # fmt: skip


# -- the prepared repo ---------------------------------------------------------------------------------------
FILES = {
    "src/widgets/__init__.py": "",
    "src/widgets/utils.py": (
        "import os\n\n\ndef data_file(folder, name):\n    return os.path.join(folder, name)\n"
    ),
    "src/widgets/legacy.py": 'import sys\n\n\ndef version():\n    return "1.0"\n',
    "tests/test_utils.py": (
        "from widgets.utils import data_file\n\n\n"
        'def test_data_file():\n    assert data_file("a", "b").endswith("b")\n'
    ),
    "pyproject.toml": (
        '[project]\nname = "widgets"\nversion = "0.1.0"\n\n[tool.pytest.ini_options]\npythonpath = ["src"]\n'
    ),
}
PATHLIB_EDIT = (
    "sed -i 's/^import os$/from pathlib import Path/; "
    "s/os.path.join(folder, name)/str(Path(folder) \\/ name)/' src/widgets/utils.py"
)
CHANGE_SCRIPT = {
    "turns": [
        {"tool_calls": [{"name": "bash", "arguments": {"command": PATHLIB_EDIT}}]},
        {"tool_calls": [{"name": "finish", "arguments": {"summary": "utils.py uses pathlib"}}]},
    ]
}
FINDING = {
    "file": "src/widgets/utils.py",
    "line": 5,
    "severity": "blocking",
    "explanation": "data_file needs a docstring",
}
REVIEW_JSON = json.dumps({"verdict": "request_changes", "findings": [FINDING]})
REVIEW_SCRIPT = {"turns": [{"tool_calls": [{"name": "finish", "arguments": {"summary": REVIEW_JSON}}]}]}
REVIEW_TASK = "---\nkind: review\npaths: [src/widgets/legacy.py]\n{extra}---\nReview legacy.py.\n"


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` and return stdout."""
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def make_repo(tmp: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """Create `widgets` (src/ with lint and os.path, a test) pushed to a bare `origin.git`; return both."""
    origin, repo = tmp / "origin.git", tmp / "widgets"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    for name, text in FILES.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    for args in (("add", "-A"), ("commit", "-q", "-m", "init"), ("remote", "add", "origin", str(origin))):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True)
    git(repo, "push", "-q", "origin", "main")
    (repo / "script.yaml").write_text(json.dumps(CHANGE_SCRIPT))  # JSON is YAML: docs/models.md's script.yaml
    return repo, origin


def queue_events(ctx: Ctx, task: str, kind: str) -> list[dict[str, object]]:
    """Return the queue file's events of one type for one task."""
    path = ctx.repo / "tasks" / "queue.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    events = [json.loads(line) for line in lines if line.strip().startswith("{")]
    return [e for e in events if e.get("task") == task and e.get("type") == kind]

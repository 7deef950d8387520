"""GitHub Actions workflow templates, written into a user's repo by `run-agents init --github`."""

from __future__ import annotations

from importlib import metadata, resources
from pathlib import Path

WORKFLOWS = ("run-agents.yml", "agent-review.yml", "agent-issue.yml", "agent-refresh.yml")
PIP_LINE = "  AGENT_RUNNER_PIP: agent-runner\n"


def template(name: str) -> str:
    """Return the text of a shipped workflow template."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def pinned_spec() -> str:
    """Return the pip requirement for the agent-runner version running now (workflows install the same)."""
    try:
        return f"agent-runner=={metadata.version('agent-runner')}"
    except metadata.PackageNotFoundError:
        return "agent-runner"


def install_workflows(root: Path, *, overwrite: bool = False, pip_spec: str | None = None) -> list[Path]:
    """Write the workflows into root/.github/workflows (kept if present unless `overwrite`); return them."""
    folder = root / ".github" / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in WORKFLOWS:
        path = folder / name
        if path.exists() and not overwrite:
            continue
        text = template(name)
        text = text.replace(PIP_LINE, f'  AGENT_RUNNER_PIP: "{pip_spec or pinned_spec()}"\n')
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written

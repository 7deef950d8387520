"""GitHub Actions workflow templates, written into a user's repo by `run-agents init --github`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

WORKFLOWS = ("run-agents.yml", "agent-review.yml", "agent-issue.yml")
PIP_LINE = "  AGENT_RUNNER_PIP: agent-runner\n"


def template(name: str) -> str:
    """Return the text of a shipped workflow template."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


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
        if pip_spec is not None:
            text = text.replace(PIP_LINE, f'  AGENT_RUNNER_PIP: "{pip_spec}"\n')
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written

"""The GitHub workflow's publish job ships the report: an artifact and a link in the run summary."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = [ROOT / ".github/workflows/run-agents.yml", ROOT / "agent_runner/workflows/run-agents.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.parent.name)
def test_publish_job_uploads_the_report_and_links_it(path: Path) -> None:
    """The publish job writes report/report.html, uploads report/ and names the artifact in the summary."""
    steps = yaml.safe_load(path.read_text())["jobs"]["publish"]["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert "run-agents report --out report/report.html" in runs
    assert "GITHUB_STEP_SUMMARY" in runs and "agent-runner-report" in runs
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert any(s["with"]["name"] == "agent-runner-report" and s["with"]["path"] == "report/" for s in uploads)
    ingest = next(i for i, s in enumerate(steps) if "run-agents ingest" in s.get("run", ""))
    report = next(i for i, s in enumerate(steps) if "run-agents report" in s.get("run", ""))
    assert report > ingest and steps[report].get("if") == "always()"

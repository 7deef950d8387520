"""The report in a real browser: headless Chromium, no network, JS run, screenshot taken."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from agent_runner.queue.store import Queue
from agent_runner.report.fold import build_report
from agent_runner.report.html import write_report

FIXTURES = Path(__file__).parent / "fixtures"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")


def render_in_chromium(page: Path, tmp_path: Path) -> tuple[str, str, Path]:
    """Load `page` headless, every host unresolvable; return the DOM after JS, stderr and the screenshot."""
    shot = tmp_path / "shot.png"
    argv = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--no-first-run", "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}",
        "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0",
        "--window-size=1400,1800", f"--screenshot={shot}", "--dump-dom", page.as_uri(),
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr, shot


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    """Chromium runs the page's JS with no console error, shows one lane per machine, takes a screenshot."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "runs", root / ".agent-runner" / "runs")
    report = build_report(Queue(FIXTURES / "queue.jsonl"), budget_usd=20.0)
    page = write_report(report, root=root, state_dir=root / ".agent-runner", out=root / "report.html")
    dom, stderr, shot = render_in_chromium(page, tmp_path)
    console = [line for line in stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    timeline = dom[dom.index('id="timeline"') : dom.index("</section>", dom.index('id="timeline"'))]
    assert re.findall(r'data-lane="(\w+)"', timeline) == ["alpha", "beta", "gamma"]
    assert "30 of 30 tasks" in dom  # written by the filter script, so the JS ran
    assert dom.count("<title>") > 30  # hover titles added to the pygal bars by the inline script
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000

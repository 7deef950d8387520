"""The HTML report and `status`, from a recorded queue file of 30 tasks on 3 machines."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_runner.cli import get_app
from agent_runner.queue.store import Queue
from agent_runner.report.fold import build_report
from agent_runner.report.html import write_report
from agent_runner.report.pages import INLINE_TRAJECTORY_BYTES

FIXTURES = Path(__file__).parent / "fixtures"
TASK_IDS = [f"task-{n:02d}" for n in range(1, 31)]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class StrictParser(HTMLParser):
    """Checks that every element is closed in order and collects ids, fetch references and links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.fetches: list[str] = []
        self.links: list[str] = []
        self.lanes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attrs(tag, dict(attrs))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attrs(tag, dict(attrs))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> at {self.getpos()} closes {self.stack[-1:]}")
            return
        self.stack.pop()

    def _attrs(self, tag: str, attrs: dict[str, str | None]) -> None:
        if attrs.get("id"):
            self.ids.append(str(attrs["id"]))
        if "data-lane" in attrs:
            self.lanes.append(str(attrs["data-lane"]))
        for name in ("src", "href", "xlink:href", "data", "poster", "srcset", "action"):
            value = attrs.get(name)
            if value is None:
                continue
            if tag == "a" and name == "href":
                self.links.append(value)
            else:
                self.fetches.append(f"{tag} {name}={value}")


def parse(text: str) -> StrictParser:
    """Parse HTML strictly and return the parser with what it found."""
    parser = StrictParser()
    parser.feed(text)
    parser.close()
    return parser


def make_root(tmp_path: Path, *, budget: float | None = 20.0) -> Path:
    """A repo folder holding the recorded queue, its trajectories and a pyproject with a budget."""
    root = tmp_path / "repo"
    (root / "tasks").mkdir(parents=True)
    (root / ".git").mkdir()
    shutil.copy(FIXTURES / "queue.jsonl", root / "tasks" / "queue.jsonl")
    shutil.copytree(FIXTURES / "runs", root / ".agent-runner" / "runs")
    table = f"budget_usd = {budget}\n" if budget else ""
    (root / "pyproject.toml").write_text(f"[tool.agent-runner]\n{table}")
    return root


@pytest.fixture
def report_file(tmp_path: Path) -> Path:
    """The report written by `run-agents report` for the recorded queue."""
    root = make_root(tmp_path)
    result = CliRunner().invoke(get_app(), ["--root", str(root), "report"])
    assert result.exit_code == 0, result.output
    path = Path(result.output.strip())
    assert path == root / ".agent-runner" / "report.html"
    return path


def test_report_is_strictly_valid_html_with_unique_ids(report_file: Path) -> None:
    """Every element closes in order, the document starts with a doctype and no id repeats."""
    text = report_file.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    parser = parse(text)
    assert parser.errors == []
    assert parser.stack == []
    assert len(parser.ids) == len(set(parser.ids))


def test_report_lists_every_task_with_status_and_kind(report_file: Path) -> None:
    """Each of the 30 tasks has a table row carrying its status and kind for the filters."""
    text = report_file.read_text(encoding="utf-8")
    rows = dict(re.findall(r'<tr id="task-(task-\d+)" data-status="(\w+)"', text))
    assert sorted(rows) == TASK_IDS
    assert rows["task-22"] == "failed" and rows["task-25"] == "cancelled" and rows["task-29"] == "invalid"
    assert rows["task-26"] == "running" and rows["task-18"] == "unpublished"


def test_report_fetches_nothing(report_file: Path) -> None:
    """No src/href resource, CSS url() or import points anywhere; the only web links are PR links."""
    text = report_file.read_text(encoding="utf-8")
    parser = parse(text)
    assert parser.fetches == []
    assert not re.search(r"url\(|@import|<link|<script\s+src", text)
    external = [link for link in parser.links if "://" in link]
    assert external and all(link.startswith("https://github.com/acme/widgets/pull/") for link in external)
    leftover = re.sub(r'xmlns(:\w+)?="http://www\.w3\.org/[^"]+"|"http://www\.w3\.org/2000/svg"', "", text)
    leftover = re.sub(r'href="https://github\.com/acme/widgets/pull/\d+"', "", leftover)
    assert "http://" not in leftover and "https://" not in leftover


def test_timeline_has_one_lane_per_machine_and_shows_retries(report_file: Path) -> None:
    """Lanes alpha, beta, gamma; task-21's three attempts are three bars coloured by outcome."""
    text = report_file.read_text(encoding="utf-8")
    assert parse(text).lanes == ["alpha", "beta", "gamma"]
    bars = re.findall(r'<a class="bar o-(\w+)" href="#task-task-21" title="([^"]*)"', text)
    assert [outcome for outcome, _ in bars] == ["infra", "rejected", "accepted"]
    assert bars[-1][1].startswith("task-21 #3 on gamma/1: accepted")
    assert "anthropic:claude-sonnet-4-5 · 25 steps · $0.1099" in bars[-1][1]
    assert "lost its connection" in bars[0][1]


def test_costs_budget_and_charts(report_file: Path) -> None:
    """Spend against the configured budget, the cache share and three inline pygal charts."""
    text = report_file.read_text(encoding="utf-8")
    data = build_report(Queue(report_file.parent.parent / "tasks" / "queue.jsonl"))
    assert f"${data.total_cost:,.4f}" in text
    assert "of $20.0000 budget" in text
    assert "prompt tokens read from cache" in text
    assert text.count('class="pygal-chart"') == 3
    assert "<?xml" not in text
    assert "anthropic:claude-haiku-4-5" in text


def test_trajectories_small_inline_large_on_own_page(report_file: Path) -> None:
    """A small trajectory is inlined (outputs collapsed and escaped); a large one gets a linked page."""
    text = report_file.read_text(encoding="utf-8")
    assert '<details class="traj" id="traj-task-01">' in text
    assert "&lt;tag&gt;" in text and "<tag>" not in text
    assert '<a href="report-tasks/task-19.html">page</a>' in text
    page = report_file.parent / "report-tasks" / "task-19.html"
    assert (report_file.parent.parent / ".agent-runner/runs/task-19/2/trajectory.jsonl").stat().st_size > (
        INLINE_TRAJECTORY_BYTES
    )
    page_text = page.read_text(encoding="utf-8")
    assert parse(page_text).errors == []
    assert "Step 400" in page_text and '<details class="output">' in page_text
    assert "Gate report" in page_text and "Fixed every violation." in page_text
    assert "traj-task-19" not in text


def test_report_without_budget_or_attempts(tmp_path: Path) -> None:
    """An empty queue still gives a valid report that says nothing ran."""
    out = tmp_path / "r.html"
    write_report(build_report(Queue(tmp_path / "q.jsonl")), root=tmp_path, state_dir=tmp_path, out=out)
    text = out.read_text(encoding="utf-8")
    assert parse(text).errors == []
    assert "No attempt has started yet." in text and "no budget set" in text


def test_status_json_counts_costs_and_machines(tmp_path: Path) -> None:
    """`status --json` gives counts by status, the cost so far and per-machine load."""
    root = make_root(tmp_path)
    result = CliRunner().invoke(get_app(), ["--root", str(root), "status", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["counts"] == {"queued": 1, "running": 1, "finished": 20, "failed": 3, "cancelled": 2,
                              "unpublished": 1, "invalid": 2}  # fmt: skip
    assert data["budget_usd"] == 20.0 and 0 < data["cost_usd"] < 20
    assert set(data["machines"]) == {"alpha", "beta", "gamma"}
    assert sum(m["attempts"] for m in data["machines"].values()) == 34
    assert data["machines"]["beta"]["running"] == 1
    assert data["slowest"][0]["task_id"] == "task-26"


def test_status_table(tmp_path: Path) -> None:
    """Plain `status` prints counts, cost against budget and the machine and slowest tables."""
    root = make_root(tmp_path)
    result = CliRunner().invoke(get_app(), ["--root", str(root), "status"])
    assert result.exit_code == 0, result.output
    assert "20 finished" in result.output and "of $20.00 budget" in result.output
    assert "alpha" in result.output and "Slowest" in result.output


def test_report_out_option(tmp_path: Path) -> None:
    """--out writes elsewhere and prints that path."""
    root = make_root(tmp_path, budget=None)
    out = tmp_path / "artifacts" / "run.html"
    result = CliRunner().invoke(get_app(), ["--root", str(root), "report", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    assert (tmp_path / "artifacts" / "run-tasks" / "task-19.html").exists()
    assert "../run.html#task-task-19" in (tmp_path / "artifacts" / "run-tasks" / "task-19.html").read_text()


def test_report_redacts_secrets_in_queue_and_trajectories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret value or key-shaped string in a reason or a trajectory never reaches the report files."""
    root = make_root(tmp_path)
    secret, token = "planted-secret-value-123", "ghp_" + "Zq9" * 12
    monkeypatch.setenv("MY_SERVICE_API_KEY", secret)
    Queue(root / "tasks" / "queue.jsonl").mark_invalid(
        "task-99", "tasks/task-99.md", f"leaked {secret} {token}"
    )
    big = root / ".agent-runner/runs/task-19/2/trajectory.jsonl"
    with big.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"type": "user", "text": f"env shows {secret} and {token}"}) + "\n")
    result = CliRunner().invoke(get_app(), ["--root", str(root), "report"])
    assert result.exit_code == 0, result.output
    written = [root / ".agent-runner/report.html", root / ".agent-runner/report-tasks/task-19.html"]
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert secret not in text and token not in text
        assert "[REDACTED]" in text


def test_compacted_queue_keeps_lanes_and_the_running_attempt(tmp_path: Path) -> None:
    """After `compact`, the report still shows every task, the three lanes and the open attempt."""
    path = tmp_path / "queue.jsonl"
    shutil.copy(FIXTURES / "queue.jsonl", path)
    Queue(path).compact()
    data = build_report(Queue(path))
    assert sorted(t.id for t in data.tasks) == TASK_IDS
    assert list(data.lanes()) == ["alpha", "beta", "gamma"]
    running = [a for a in data.attempts if a.outcome == "running"]
    assert [a.task_id for a in running] == ["task-26"]
    assert {a.outcome for a in data.attempts} >= {"accepted", "rejected", "cancelled"}

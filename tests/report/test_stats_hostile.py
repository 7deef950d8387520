"""Red team: the league table over a queue file whose results carry hostile figures."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from agent_runner.cli import get_app
from agent_runner.core.cost import result_cost
from agent_runner.queue.store import Queue
from agent_runner.report.fold import build_report
from agent_runner.report.html import render_report


def _strict(text: str) -> Any:
    """Parse JSON as a strict parser (jq, JavaScript) would: NaN and Infinity are errors."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _line(ts: float, kind: str, task: str, **fields: Any) -> str:
    return json.dumps({"ts": ts, "type": kind, "task": task, **fields})  # NaN/Infinity as Python writes them


def _attempt(task: str, end_ts: float, result: dict[str, Any]) -> list[str]:
    definition = {"id": task, "kind": "change", "instructions": "x"}
    return [
        _line(1.0, "queued", task, **{"def": definition}),
        _line(60.0, "claimed", task, attempt=1, worker="w1", lease_until=1e9),
        _line(end_ts, "finished", task, attempt=1, result=result),
    ]


def _hostile_queue(root: Path) -> Path:
    lines = [
        *_attempt("nan", 120.0, {"model": "m-nan", "cost_usd": float("nan"), "usage": {"input_tokens": "x"}}),
        *_attempt("inf", float("inf"), {"model": "m-inf", "cost_usd": float("inf"), "steps": "many"}),
        *_attempt("neg", 120.0, {"model": "m-neg", "cost_usd": -5.0, "usage": ["not", "a", "dict"]}),
        *_attempt("big", 120.0, {"model": "m-big", "cost_usd": 1.0, "usage": {"input_tokens": 10**30}}),
        *_attempt(
            "odd",
            120.0,
            {
                "model": "m-odd",
                "cost_usd": 0.0,
                "trajectory_path": {"not": "a path"},
                "gates": [{"name": {"n": 1}, "verdict": "fail", "before": [1, 2], "after": "x"}, "no gate"],
            },
        ),
    ]
    path = root / "tasks" / "queue.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return path


def test_stats_reads_hostile_figures_as_unknown_and_prints_strict_json(tmp_path: Path) -> None:
    """NaN, infinite or negative costs are unknown, not `$nan`; a count that is no count is 0; an end at
    Infinity is no time; `--json` stays JSON a strict parser reads."""
    _hostile_queue(tmp_path)
    out = CliRunner().invoke(get_app(), ["--root", str(tmp_path), "stats", "--json"])
    assert out.exit_code == 0, out.output
    rows = {row["model"]: row for row in _strict(out.output)["rows"]}
    for model in ("m-nan", "m-inf", "m-neg"):
        assert (rows[model]["cost_usd"], rows[model]["n_unknown_cost"]) == (None, 1), model
    assert rows["m-big"]["cost_usd"] == 1.0 and rows["m-big"]["cached_input_share"] == 0.0
    assert rows["m-nan"]["median_minutes"] == 1.0 and rows["m-inf"]["median_minutes"] == 0.0
    table = CliRunner().invoke(get_app(), ["--root", str(tmp_path), "stats"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "nan" not in table.output.replace("m-nan", "")
    assert "inf" not in table.output.replace("m-inf", "")


def test_the_html_report_survives_the_same_queue(tmp_path: Path) -> None:
    queue = Queue(_hostile_queue(tmp_path))
    html = render_report(
        build_report(queue), root=tmp_path, state_dir=tmp_path / "s", out=tmp_path / "r.html"
    )
    assert "$nan" not in html and "$inf" not in html and "$-5" not in html


def test_result_cost_refuses_what_is_no_price() -> None:
    assert [result_cost({"cost_usd": v}) for v in (float("nan"), float("inf"), -1.0, True, "1")] == [None] * 5
    assert result_cost({"cost_usd": 0.25}) == 0.25 and result_cost({"cost_usd": 0}) == 0.0


def test_stats_and_status_name_the_lines_they_skipped(tmp_path: Path) -> None:
    """A line that is no event is skipped, and said so on stderr with file:line; `--json` stays JSON."""
    path = _hostile_queue(tmp_path)
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"type": "finished", "task": ["not", "an", "id"]}\n')
    lineno = len(path.read_text(encoding="utf-8").splitlines())
    for command in ("stats", "status"):
        out = CliRunner().invoke(get_app(), ["--root", str(tmp_path), command, "--json"])
        assert out.exit_code == 0, out.output
        assert f"queue.jsonl:{lineno}" in out.stderr and "skipped" in out.stderr, (command, out.stderr)
        _strict(out.stdout)

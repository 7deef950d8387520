"""Renders a RunReport as one self-contained HTML file (inline CSS, JS and pygal SVG; nothing fetched).

The timeline is an HTML/CSS element, not a pygal chart: a Gantt needs many independent intervals per lane, and
pygal's stacked-bar workaround needs one series per bar position (thousands for a large queue), which is slow,
large, and loses per-bar hover text without pygal's CDN-hosted JS. Cost and token bars are pygal SVG.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pygal
from pygal.style import Style

from agent_runner.config.runner import RunnerConfig
from agent_runner.core.cost import CostTotal, usd
from agent_runner.core.redact import runner_redactor
from agent_runner.queue.store import Queue
from agent_runner.report.fold import Attempt, RunReport, build_report
from agent_runner.report.pages import TrajectoryPages
from agent_runner.report.stats import FIGURE_COLUMNS, HEADERS, league

TEMPLATES = Path(__file__).parent / "templates"
REPORT_FILE = "report.html"
Redact = Callable[[str], str]
TOP_TASKS = 25
OUTCOME_COLOURS = {
    "accepted": "#2e9e4f", "rejected": "#d64545", "infra": "#e8912d", "cancelled": "#8c8c8c",
    "running": "#3b7dd8", "model_auth": "#8e44ad", "released": "#c9b22b", "lost": "#555555",
}  # fmt: skip


@dataclass
class Bar:
    """One attempt placed on the timeline (percentages of the run's span)."""

    left: float
    width: float
    outcome: str
    title: str
    task_id: str


def _same(text: str) -> str:
    return text


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["usd"] = lambda v: v.text() if isinstance(v, CostTotal) else usd(v)
    env.filters["clock"] = lambda ts: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"
    env.filters["secs"] = _secs
    env.filters["num"] = lambda v: f"{v:g}" if isinstance(v, int | float) else str(v)
    return env


def _secs(value: float) -> str:
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def timeline(report: RunReport) -> tuple[list[dict[str, Any]], list[tuple[float, str]]]:
    """Return the lanes (machine -> worker rows -> bars) and the axis ticks (percent, label)."""
    if not report.attempts:
        return [], []
    t0 = min(a.start for a in report.attempts)
    t1 = max(a.last for a in report.attempts)
    span = max(t1 - t0, 1e-6)
    lanes = []
    rows: dict[tuple[str, str], list[Bar]] = {(m, w): [] for m, ws in report.lanes().items() for w in ws}
    for a in report.attempts:
        rows[a.machine, a.worker].append(_bar(a, t0, span))
    for machine, names in report.lanes().items():
        lanes.append({"machine": machine, "workers": [{"name": w, "bars": rows[machine, w]} for w in names]})
    ticks = [(100 * i / 5, time.strftime("%H:%M:%S", time.localtime(t0 + span * i / 5))) for i in range(6)]
    return lanes, ticks


def _bar(a: Attempt, t0: float, span: float) -> Bar:
    end = a.last
    title = (
        f"{a.task_id} #{a.attempt} on {a.worker}: {a.outcome}\n{a.model_label or '?'} · {a.steps} steps · "
        f"{usd(a.cost_usd)} · {_secs(end - a.start)}" + (f"\n{a.reason[:120]}" if a.reason else "")
    )
    left = 100 * (a.start - t0) / span
    width = max(100 * (end - a.start) / span, 0.1)
    return Bar(round(left, 2), round(width, 2), a.outcome, title, a.task_id)


def charts(report: RunReport) -> dict[str, str]:
    """Return the pygal charts as inline SVG strings (no XML declaration, no external JS).

    A chart with nothing to show is left out: no cost charts without cost, no token chart without tokens.
    """
    out: dict[str, str] = {}
    if report.total_cost > 0:
        out |= _cost_charts(report)
    if report.total_tokens > 0:
        out["tokens_per_model"] = _tokens_chart(report)
    return out


def _chart_options() -> dict[str, Any]:
    style = Style(
        background="white", plot_background="white", colors=("#3b7dd8", "#2e9e4f", "#e8912d", "#8e44ad")
    )
    return {"js": [], "disable_xml_declaration": True, "style": style, "width": 760}


def _cost_charts(report: RunReport) -> dict[str, str]:
    opts = _chart_options()
    costly = [t for t in report.tasks if t.cost.known_usd > 0]  # unknown cost has no bar
    costly = sorted(costly, key=lambda t: t.cost.known_usd, reverse=True)
    costly = costly[:TOP_TASKS]
    per_task = pygal.HorizontalBar(height=max(220, 22 * len(costly) + 80), show_legend=False, **opts)
    per_task.x_labels = [t.id for t in reversed(costly)]
    per_task.add("cost (USD)", [round(t.cost.known_usd, 4) for t in reversed(costly)])
    models = report.by_model()
    per_model = pygal.Bar(height=300, show_legend=False, **opts)
    per_model.x_labels = list(models)
    per_model.add("cost (USD)", [round(m["cost_usd"], 4) for m in models.values()])
    return {"cost_per_task": _svg(per_task), "cost_per_model": _svg(per_model)}


def _tokens_chart(report: RunReport) -> str:
    models = report.by_model()
    tokens = pygal.StackedBar(height=320, **_chart_options())
    tokens.x_labels = list(models)
    for key, label in (("input_tokens", "input"), ("cache_read_tokens", "cache read"),
                       ("cache_write_tokens", "cache write"), ("output_tokens", "output")):  # fmt: skip
        tokens.add(label, [int(m[key]) for m in models.values()])
    return _svg(tokens)


def _svg(chart: Any) -> str:
    # pygal adds comments naming its website: drop them so the file holds no URL but the SVG namespaces.
    return re.sub(r"<!--.*?-->", "", chart.render(is_unicode=True), flags=re.S)


def render_report(
    report: RunReport, *, root: Path, state_dir: Path, out: Path, redact: Redact = _same
) -> str:
    """Return the report HTML (writing trajectory pages for large trajectories beside `out`)."""
    env = _env()
    pages = TrajectoryPages(env, root=root, state_dir=state_dir, out=out, redact=redact)
    trajectories = {row.id: pages.for_task(row) for row in report.tasks}
    lanes, ticks = timeline(report)
    return redact(env.get_template("report.html.j2").render(
        report=report, lanes=lanes, ticks=ticks, charts=charts(report), colours=OUTCOME_COLOURS,
        trajectories=trajectories, kinds=sorted({t.kind for t in report.tasks}),
        statuses=[s for s, n in report.counts().items() if n], share=report.cache_read_share(),
        league=league(report), league_headers=HEADERS, figure_columns=FIGURE_COLUMNS,
    ))  # fmt: skip


def write_report(
    report: RunReport, *, root: Path, state_dir: Path, out: Path, redact: Redact = _same
) -> Path:
    """Write the report to `out` (atomically, every page passed through `redact`) and return its path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render_report(report, root=root, state_dir=state_dir, out=out, redact=redact)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out


def generate_report(root: Path, config: RunnerConfig, *, out: Path | None = None) -> Path:
    """Build the report of the queue configured for `root` and write it (default: <state_dir>/report.html)."""
    state_dir = config.path(root, "state_dir")
    queue = Queue(config.path(root, "queue"))
    report = build_report(queue, budget_usd=config.budget_usd, default_model=config.model)
    redactor = runner_redactor(config, os.environ)  # reports end up in public artifacts
    return write_report(
        report, root=root, state_dir=state_dir, out=out or state_dir / REPORT_FILE, redact=redactor.text
    )

"""Report generation for a 10,000-task queue: time and file size (targets: < 5 s, < 10 MB).

Writes a synthetic queue file (the event format Queue writes: claims, retries and failures on 8 machines x 4
workers) plus 300 trajectories, then times `build_report` + `write_report`. The baseline is the naive timeline
the report avoids: a pygal Gantt drawn as horizontal stacked bars (one series per bar position).

    /work/venv/bin/python bench/report_bench.py [--tasks 10000]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from agent_runner.queue.store import Queue
from agent_runner.report.fold import RunReport, build_report
from agent_runner.report.html import write_report

PLANS = (["ok"], ["reject", "ok"], ["infra", "reject", "reject", "reject"])  # 80%, 10%, 10% of tasks
MODELS = ["anthropic:claude-sonnet-4-5", "openai:gpt-5-mini", "anthropic:claude-haiku-4-5"]


def write_queue(path: Path, n_tasks: int, rng: random.Random) -> int:
    """Write a queue file with `n_tasks` tasks run on 32 workers; return the number of events."""
    events: list[dict] = []
    clock = [1_764_300_000.0 + 3600 * i / 4 for i in range(32)]
    for n in range(n_tasks):
        task_id = f"task-{n:05d}"
        events.append(
            {
                "ts": 1_764_300_000.0,
                "type": "queued",
                "task": task_id,
                "file": f"tasks/{task_id}.md",
                "def": {"id": task_id, "kind": "fix-lint", "title": f"Chore {n}", "model": MODELS[n % 3]},
            }
        )
    for n in range(n_tasks):
        task_id, roll = f"task-{n:05d}", rng.random()
        plan = PLANS[0] if roll < 0.8 else PLANS[1] if roll < 0.9 else PLANS[2]
        for attempt, step in enumerate(plan, start=1):
            slot = rng.randrange(32)
            start, end = clock[slot], clock[slot] + rng.uniform(60, 900)
            clock[slot] = end
            worker = f"m{slot // 4}/{slot % 4}"
            events.append(
                {"ts": start, "type": "claimed", "task": task_id, "attempt": attempt, "worker": worker}
            )
            events.append(_end(task_id, attempt, step, end, rng, final=attempt == len(plan)))
    path.write_text("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events), encoding="utf-8")
    return len(events)


def _end(task_id: str, attempt: int, step: str, ts: float, rng: random.Random, *, final: bool) -> dict:
    if step == "infra":
        return {
            "ts": ts,
            "type": "released",
            "task": task_id,
            "attempt": attempt,
            "infra": True,
            "reason": "lost",
        }
    usage = {
        "input_tokens": rng.randint(2000, 9000),
        "output_tokens": rng.randint(500, 3000),
        "cache_read_tokens": rng.randint(10_000, 90_000),
        "cache_write_tokens": 2000,
    }
    gates = [
        {
            "name": "ruff",
            "verdict": "pass" if step == "ok" else "fail",
            "before": {"violations": 12},
            "after": {"violations": 0 if step == "ok" else 3},
        }
    ]
    result = {
        "task_id": task_id,
        "attempt": attempt,
        "outcome": "accepted" if step == "ok" else "rejected",
        "cost_usd": round(rng.uniform(0.01, 0.6), 4),
        "steps": rng.randint(3, 40),
        "usage": usage,
        "gates": gates,
        "model": MODELS[attempt % 3],
    }
    if step == "ok":
        return {"ts": ts, "type": "finished", "task": task_id, "attempt": attempt, "result": result}
    return {
        "ts": ts,
        "type": "failed",
        "task": task_id,
        "attempt": attempt,
        "reason": "gates failed",
        "final": final,
        "result": result,
    }


def write_trajectories(state_dir: Path, n: int, steps: int = 40) -> None:
    """Write `n` trajectories of `steps` steps (about 50 KB each) for the first tasks' first attempts."""
    for i in range(n):
        path = state_dir / "runs" / f"task-{i:05d}" / "1" / "trajectory.jsonl"
        path.parent.mkdir(parents=True)
        lines = [{"type": "start", "model": MODELS[0], "system": "sys", "limits": {"steps": 50}}]
        for s in range(1, steps + 1):
            call = {"id": f"c{s}", "name": "bash", "arguments": {"command": f"ruff check --select E{s}"}}
            lines.append({"type": "model", "step": s, "message": {"text": "checking", "tool_calls": [call]}})
            lines.append({"type": "tools", "results": [{"content": "x.py:1:1: E501 line too long\n" * 40}]})
        lines.append({"type": "end", "exit_status": "finished", "steps": steps, "summary": "done"})
        path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def naive_pygal_timeline(report: RunReport, limit: int) -> float:
    """Seconds to draw `limit` attempts as a pygal stacked-bar Gantt (a gap and a bar series per position)."""
    import pygal

    attempts = report.attempts[:limit]
    lanes = sorted({a.worker for a in attempts})
    t0 = min(a.start for a in attempts)
    rows: dict[str, list[tuple[float, float]]] = {w: [] for w in lanes}
    for a in attempts:
        rows[a.worker].append((a.start - t0, a.last - a.start))
    started = time.perf_counter()
    chart = pygal.HorizontalStackedBar(js=[], disable_xml_declaration=True, show_legend=False)
    chart.x_labels = lanes
    for k in range(max(len(r) for r in rows.values())):
        gaps = []
        for w in lanes:
            prev_end = sum(rows[w][k - 1]) if 0 < k <= len(rows[w]) else 0.0
            gaps.append(rows[w][k][0] - prev_end if k < len(rows[w]) else None)
        chart.add(f"gap{k}", gaps)
        chart.add(f"bar{k}", [rows[w][k][1] if k < len(rows[w]) else None for w in lanes])
    chart.render(is_unicode=True)
    return time.perf_counter() - started


def timed_report(root: Path) -> tuple[RunReport, float, float, Path]:
    """Build and write the report; return it, the fold time, the total time and the file."""
    started = time.perf_counter()
    report = build_report(Queue(root / "queue.jsonl"), budget_usd=5000)
    folded = time.perf_counter() - started
    out = write_report(report, root=root, state_dir=root / "state", out=root / "report.html")
    return report, folded, time.perf_counter() - started, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--trajectories", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        n_events = write_queue(root / "queue.jsonl", args.tasks, random.Random(1))
        write_trajectories(root / "state", args.trajectories)
        report, folded, cold, out = timed_report(root)
        _, _, warm, _ = timed_report(root)
        size = out.stat().st_size
        pages = len(list((root / "report-tasks").glob("*.html")))
        print(f"tasks: {args.tasks:,}  events: {n_events:,}  attempts: {len(report.attempts):,}")
        print(
            f"fold: {folded:.2f} s; fold+render+write: {cold:.2f} s cold, {warm:.2f} s again (target < 5 s)"
        )
        print(
            f"report.html: {size / 1e6:.2f} MB (target < 10 MB); "
            f"{pages} pages for {args.trajectories} trajectories"
        )
        naive = naive_pygal_timeline(report, len(report.attempts))
        print(
            f"baseline: only the timeline as a pygal stacked-bar Gantt: {naive:.2f} s; "
            f"ratio {naive / cold:.1f}x"
        )
        assert cold < 5 and size < 10e6, "report bench over target"


if __name__ == "__main__":
    main()

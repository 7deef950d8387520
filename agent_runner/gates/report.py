"""Gate reports: a table of gate, before, after and verdict, with the offending lines, for prompts and PRs."""

from __future__ import annotations

from collections.abc import Sequence

from agent_runner.core.result import GateResult, GateVerdict

GREEN = (GateVerdict.PASS, GateVerdict.SKIP)
MAX_LINES = 30
MAX_DETAILS = 3000


def is_accepted(results: Sequence[GateResult]) -> bool:
    """Return whether every gate passed or was skipped."""
    return all(r.verdict in GREEN for r in results)


def counts(values: dict[str, float]) -> str:
    """Render gate counts as `key value` pairs."""
    return ", ".join(f"{k} {v:g}" for k, v in values.items()) or "-"


def render_table(results: Sequence[GateResult]) -> str:
    """Return a Markdown table: gate, before, after, verdict."""
    rows = ["| gate | before | after | verdict |", "|---|---|---|---|"]
    for r in results:
        verdict = r.verdict.value if r.verdict in GREEN else f"**{r.verdict.value}**"
        rows.append(f"| {r.name} | {counts(r.before)} | {counts(r.after)} | {verdict} |")
    return "\n".join(rows)


def render_failures(results: Sequence[GateResult]) -> str:
    """Return each failing gate's command, details and offending lines."""
    parts = []
    for r in results:
        if r.verdict in GREEN:
            continue
        head = f"### {r.name}: {r.verdict.value}"
        if r.command:
            head += f"\n`{r.command}`" + (f" (exit {r.exit_code})" if r.exit_code is not None else "")
        body = r.details.strip()[:MAX_DETAILS]
        lines = r.offending[:MAX_LINES]
        more = f"\n... and {len(r.offending) - MAX_LINES} more" if len(r.offending) > MAX_LINES else ""
        block = "\n```\n" + "\n".join(lines) + more + "\n```" if lines else ""
        parts.append(f"{head}\n{body}{block}")
    return "\n\n".join(parts)


def render_report(results: Sequence[GateResult], *, title: str = "") -> str:
    """Return the full gate report: the table, then the failures with their offending lines."""
    head = f"## {title}\n\n" if title else ""
    failures = render_failures(results)
    verdict = "All gates passed." if is_accepted(results) else "Some gates failed."
    return f"{head}{render_table(results)}\n\n{verdict}" + (f"\n\n{failures}" if failures else "")


def failure_reason(results: Sequence[GateResult]) -> str:
    """Return one line naming the failing gates and the first line of each one's details."""
    failed = [r for r in results if r.verdict not in GREEN]
    return "; ".join(
        f"{r.name}: {r.details.strip().splitlines()[0] if r.details.strip() else r.verdict}" for r in failed
    )


def brief(results: Sequence[GateResult]) -> str:
    """Return one short line: each gate's verdict, with its headline numbers where it has them."""
    parts = []
    for r in results:
        mark = {GateVerdict.PASS: "ok", GateVerdict.SKIP: "skip"}.get(r.verdict, r.verdict.value.upper())
        parts.append(f"{r.name}{_headline(r)} {mark}")
    return ", ".join(parts)


def _headline(r: GateResult) -> str:
    if "violations" in r.before and "violations" in r.after:
        return f" {r.before['violations']:g}->{r.after['violations']:g}"
    if "percent" in r.before and "percent" in r.after:
        return f" {r.before['percent']:g}%->{r.after['percent']:g}%"
    if "killed" in r.after:
        return f" {r.after['killed']:g}/{r.after['mutants']:g} killed"
    if "passed" in r.after:
        return f" {r.after['passed']:g} passed"
    return ""

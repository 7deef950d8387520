"""A review's answer: the verdict and findings a model gave, read from a tool call's fields or JSON in text.

Both review paths read it: a pull request review (`review.py`) and a review task's attempt (`job.py`), whose
agent ends with the answer as its summary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from agent_runner.core.result import Finding, Severity

VERDICTS = ("approve", "comment", "request_changes")
NO_JSON = "the model's answer had no JSON findings; review this part by hand"


@dataclass(frozen=True)
class ReviewAnswer:
    """What one answer says: a verdict (one of VERDICTS), the findings, and a note on what was unusable."""

    verdict: str
    findings: list[Finding] = field(default_factory=list)
    note: str = ""


def parse_answer(data: Any) -> ReviewAnswer:
    """Return the answer in `data`: a mapping of the fields, or text holding a JSON object of them."""
    if isinstance(data, str):
        data = json_object(data)
    if not isinstance(data, dict):
        return ReviewAnswer("comment", [], NO_JSON)
    verdict = str(data.get("verdict", "comment")).strip().lower()
    findings, n_bad = _findings(data.get("findings") or [])
    note = f"{n_bad} malformed finding(s) ignored" if n_bad else ""
    return ReviewAnswer(verdict if verdict in VERDICTS else "comment", findings, note)


def _findings(raw: Any) -> tuple[list[Finding], int]:
    findings, n_bad = [], 0
    for item in raw if isinstance(raw, list) else []:
        try:
            data = dict(item)
            severity = str(data.get("severity", "minor")).lower()
            data["severity"] = severity if severity in Severity.__members__.values() else "minor"
            findings.append(Finding.model_validate(data))
        except (TypeError, ValueError, ValidationError):
            n_bad += 1
    return findings, n_bad


def json_object(text: str) -> Any:
    """Return the first JSON object in `text` (fenced or bare), or None."""
    start = text.find("{")
    while start >= 0:
        try:
            return json.JSONDecoder().raw_decode(text[start:])[0]
        except ValueError:
            start = text.find("{", start + 1)
    return None


def review_fields(summary: str) -> dict[str, Any]:
    """Return the result fields (verdict, findings) of a review task's summary; {} when it holds no answer."""
    data = json_object(summary)
    if not isinstance(data, dict):
        return {}
    answer = parse_answer(data)
    return {"verdict": answer.verdict, "findings": answer.findings}


def answer_of(result: dict[str, Any]) -> ReviewAnswer | None:
    """Return the review answer a stored result holds: its fields, else (older results) its summary's JSON."""
    if result.get("verdict"):
        return parse_answer({"verdict": result["verdict"], "findings": result.get("findings") or []})
    fields = review_fields(str(result.get("summary") or ""))
    return ReviewAnswer(fields["verdict"], fields["findings"]) if fields else None

"""Test outcomes of a pytest gate run: from our outcome plugin (outcomeplugin.py), or from junit XML.

Both give the same ids (`classname::name`, pytest's junit naming) and the same outcome per id; a run
uses one source, and the runs after a baseline use the baseline's source.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from enum import StrEnum
from pathlib import Path

from agent_runner.gates.files import GateFileError, read_gate_bytes, read_gate_text

PLUGIN = "agent_runner_gateoutcomes"
REPORT_ENV = "AGENT_RUNNER_GATEOUTCOMES"  # as in outcomeplugin.py (which the runner never imports)
REPORT = "outcomes.json"
JUNIT = "junit.xml"

Ids = tuple[set[str], set[str], set[str]]


class IdSource(StrEnum):
    """Where a run's test ids came from."""

    PLUGIN = "plugin"
    JUNIT = "junit"
    NONE = ""


def plugin_path(scratch: Path) -> dict[str, str]:
    """Return the environment that puts `scratch` (where the plugins are copied) first on PYTHONPATH."""
    return {"PYTHONPATH": os.pathsep.join([str(scratch), *filter(None, [os.environ.get("PYTHONPATH")])])}


def outcome_args(scratch: Path, source: IdSource) -> tuple[list[str], dict[str, str]]:
    """Return the pytest options and environment that record outcomes in `scratch` from `source`."""
    if source is IdSource.JUNIT:
        return [f"--junitxml={scratch / JUNIT}", "-o", "junit_logging=no"], {}
    (scratch / f"{PLUGIN}.py").write_text(
        Path(__file__).with_name("outcomeplugin.py").read_text(encoding="utf-8"), encoding="utf-8"
    )
    return ["-p", PLUGIN], {**plugin_path(scratch), REPORT_ENV: str(scratch / REPORT)}


def plugin_failed(scratch: Path, output: str) -> bool:
    """Return whether pytest could not load our plugin (no report, and pytest names the plugin)."""
    return not (scratch / REPORT).exists() and f'"{PLUGIN}"' in output


def read_ids(scratch: Path, source: IdSource) -> Ids | None:
    """Return (passed, failed, skipped) test ids of a run from `source`; None when there are none.

    Raise GateFileError when the report is a link, no regular file or too big (the agent's code made it so).
    """
    if source is IdSource.JUNIT:
        return read_junit(scratch / JUNIT)
    return read_outcomes(scratch / REPORT)


def read_outcomes(path: Path) -> Ids | None:
    """Return (passed, failed, skipped) ids from the outcome plugin's report; None when missing or broken."""
    try:
        data = json.loads(read_gate_text(path))
        return set(data["passed"]), set(data["failed"]), set(data["skipped"])
    except GateFileError:
        raise
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_junit(path: Path) -> Ids | None:
    """Return (passed, failed, skipped) test ids from a junit XML file; None when it is missing or broken."""
    try:
        root = ET.fromstring(read_gate_bytes(path))
    except GateFileError:
        raise
    except (OSError, ET.ParseError):
        return None
    passed: set[str] = set()
    failed: set[str] = set()
    skipped: set[str] = set()
    for case in root.iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        test_id = f"{classname}::{name}" if classname else name
        tags = {child.tag for child in case}
        bucket = failed if tags & {"failure", "error"} else skipped if "skipped" in tags else passed
        bucket.add(test_id)
    return passed - failed, failed, skipped - failed

"""A per-machine cache of suite baselines, so a bulk run of many tasks on one base measures it once.

Off by default ([tool.agent-runner.gates] baseline_cache = true turns it on). The key holds everything that
decides the baseline: the staged tree of the checkout after setup (base commit plus setup outputs), the
test command, the setup commands and copied files, the gate settings, the sandbox, the targets, and the
environment that picks the interpreter. Entries are written to a temporary file and renamed into place,
so concurrent workers never read half an entry (two that race both measure, and either result is right).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from agent_runner.core.protocols import GateContext

FORMAT = 2  # bump when the cached report's shape or meaning changes (2: ids_from)
ENV_KEYS = ("PATH", "VIRTUAL_ENV", "PYTHONPATH", "CONDA_PREFIX")


def cache_dir(ctx: GateContext) -> Path | None:
    """Return the cache folder when the baseline cache is on, else None."""
    if not ctx.settings.baseline_cache:
        return None
    folder = ctx.settings.baseline_cache_dir
    return Path(folder).expanduser() if folder else Path.home() / ".cache" / "agent-runner" / "baselines"


def cache_key(ctx: GateContext, tree: str, *, coverage_of: list[str] | None) -> str:
    """Return the key of a baseline: a hash of everything its measurement depends on."""
    settings = ctx.settings.model_dump(mode="json", by_alias=True)
    sandbox = ctx.sandbox.name if ctx.sandbox is not None else None
    env = {k: os.environ.get(k, "") for k in ENV_KEYS}
    parts = [FORMAT, tree, ctx.test_command, settings, sandbox, coverage_of, env]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def load(folder: Path, key: str) -> dict[str, Any] | None:
    """Return a cached entry, or None when there is none (or it cannot be read)."""
    try:
        return json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def store(folder: Path, key: str, entry: dict[str, Any]) -> None:
    """Write an entry atomically (temporary file, then rename); a failed write only loses the cache."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(entry, out)
        os.replace(tmp, folder / f"{key}.json")
    except OSError:
        Path(tmp).unlink(missing_ok=True)

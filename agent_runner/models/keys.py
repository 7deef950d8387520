"""Which environment variable a model spec's key lives in, checked without importing any SDK.

The coordinator asks this before it claims a task: a spec whose key is unset holds its tasks (no checkout,
no attempt) instead of failing each one after its checkout and baseline.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent_runner.config.runner import RunnerConfig
from agent_runner.models.base import host_of

KEY_ENVS: dict[str, str] = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
OPENAI_HOST = "api.openai.com"


def key_env(spec: str, config: RunnerConfig, environ: Mapping[str, str]) -> str | None:
    """Return the variable `spec`'s key is read from, or None when it needs none (scripted, local server)."""
    provider, sep, _ = spec.strip().partition(":")
    if not sep or provider not in KEY_ENVS:
        return None  # scripted replays need no key; a plug-in class checks its own
    url = config.models.openai_base_url or environ.get("OPENAI_BASE_URL")
    if provider == "openai" and host_of(url) not in ("", OPENAI_HOST):
        return None  # vLLM, Ollama and other compatible servers usually accept any key
    return KEY_ENVS[provider]


def missing_key(spec: str, config: RunnerConfig, environ: Mapping[str, str]) -> str | None:
    """Return why workers would have no key for `spec` (unset, or not forwarded), or None."""
    var = key_env(spec, config, environ)
    if var is None:
        return None
    if not (environ.get(var) or "").strip():
        return f"{spec} needs an API key in {var}: `export {var}=...` where you run run-agents"
    if var not in config.forward_env:
        return f"{spec} needs {var}, which forward_env does not pass to workers: add it to forward_env"
    return None

"""Model registry: `provider:name` specs resolve to Model objects; SDKs load only when chosen.

Specs: `anthropic:<model>`, `openai:<model>`, `scripted:<path>`, or a plug-in class given by dotted path,
`package.module:Class[:name]`, whose `from_spec(name, *, config, cache_key, secrets)` returns the model.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from typing import Any

from agent_runner.config.runner import ModelsConfig
from agent_runner.core.errors import ConfigError, ModelSpecError
from agent_runner.core.protocols import Model

PROVIDERS: dict[str, str] = {
    "anthropic": "agent_runner.models.anthropic:AnthropicModel",
    "openai": "agent_runner.models.openai:OpenAIModel",
    "scripted": "agent_runner.models.scripted:ScriptedModel",
}


def parse_spec(spec: str) -> tuple[str, str]:
    """Return (import path of the model class, model name) for a spec string."""
    head, sep, rest = spec.strip().partition(":")
    if not sep and head:
        guess = "openai" if head.startswith(("gpt", "o1", "o3", "o4")) else "anthropic"
        raise ModelSpecError(f"model spec {spec!r} names no provider; use provider:name, e.g. {guess}:{head}")
    if "." in head and sep:
        class_name, _, name = rest.partition(":")
        return f"{head}:{class_name}", name
    if head not in PROVIDERS:
        known = ", ".join(f"{p}:<name>" for p in PROVIDERS)
        raise ModelSpecError(
            f"unknown model provider {head!r} in {spec!r}; known: {known}, or package.module:Class[:name]"
        )
    if not rest:
        raise ModelSpecError(f"model spec {spec!r} has no model name; write {head}:<name>")
    return PROVIDERS[head], rest


def spec_problem(spec: str) -> str | None:
    """Return why `spec` names no model (unknown provider, no name), or None when it parses."""
    try:
        parse_spec(spec)
    except ModelSpecError as exc:
        return str(exc)
    return None


def module_of(spec: str) -> str | None:
    """Return the module a model spec's class lives in, or None for a spec that does not parse."""
    try:
        module = parse_spec(spec)[0].partition(":")[0]
    except ConfigError:
        return None
    return module if re.fullmatch(r"[A-Za-z_][\w.]*", module) else None


def load_class(path: str) -> Any:
    """Import `package.module:Class` and return the class."""
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelSpecError(f"cannot import model module {module_name!r}: {exc}") from exc
    try:
        return getattr(module, class_name)
    except AttributeError as exc:
        raise ModelSpecError(f"module {module_name!r} has no model class {class_name!r}") from exc


def get_model(
    spec: str,
    *,
    config: ModelsConfig,
    cache_key: str | None = None,
    secrets: Mapping[str, str] | None = None,
) -> Model:
    """Return the model for `spec`; raise ModelSpecError for a spec no task can use, ModelAuthError (key)."""
    path, name = parse_spec(spec)
    cls = load_class(path)
    if not hasattr(cls, "from_spec"):
        raise ModelSpecError(f"model class {path!r} has no from_spec(name, *, config, cache_key, secrets)")
    try:
        model: Model = cls.from_spec(name, config=config, cache_key=cache_key, secrets=secrets)
    except ModelSpecError:
        raise
    except ConfigError as exc:  # a model class's own complaint (a scripted model's missing script, say)
        raise ModelSpecError(str(exc)) from exc
    return model


__all__ = ["PROVIDERS", "get_model", "load_class", "module_of", "parse_spec", "spec_problem"]

"""What an OpenAI-compatible server says about itself: its context window, from one or two bounded GETs.

vLLM lists `max_model_len` per model in `/v1/models`; llama.cpp's `llama-server` gives the context of one
slot in `/props` (`default_generation_settings.n_ctx`, beside the `/v1` root). llama-cpp-python, Ollama's
`/v1` and OpenAI itself say nothing there: the window stays unknown. Only a small JSON answer holding a
whole number in a plausible range is believed; anything else (a 404, an HTML page, a timeout) is unknown.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

MAX_BODY_BYTES = 1 << 20  # a model list or /props answer is a few KB; a larger answer is not believed
TIMEOUT_S = 10.0
MIN_CONTEXT, MAX_CONTEXT = 256, 100_000_000


def context_window(base_url: str, model: str, *, api_key: str | None = None) -> int | None:
    """Return the context window in tokens the server at `base_url` (with /v1) reports for `model`."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    root = base_url.rstrip("/")
    listed = _from_model_list(_get_json(f"{root}/models", headers), model)
    if listed is not None:
        return listed
    props_root = root.removesuffix("/v1")
    return _from_props(_get_json(f"{props_root}/props", headers)) if props_root != root else None


def _get_json(url: str, headers: Mapping[str, str]) -> Any:
    """Return the parsed JSON body of a GET, or None for any failure or an answer past MAX_BODY_BYTES."""
    request = urllib.request.Request(url, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            body = response.read(MAX_BODY_BYTES + 1)
    except (OSError, ValueError):  # URLError, HTTPError, timeouts, resets; ValueError: an unknown scheme
        return None
    if len(body) > MAX_BODY_BYTES:
        return None
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _from_model_list(body: Any, model: str) -> int | None:
    """Return vLLM's `max_model_len` of `model` (or of the only model listed)."""
    entries = body.get("data") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        return None
    cards = [e for e in entries if isinstance(e, dict)]
    named = [e for e in cards if e.get("id") == model] or (cards if len(cards) == 1 else [])
    return _tokens(named[0].get("max_model_len")) if named else None


def _from_props(body: Any) -> int | None:
    """Return llama-server's per-slot context: what one request gets (the top-level n_ctx is all slots')."""
    settings = body.get("default_generation_settings") if isinstance(body, dict) else None
    return _tokens(settings.get("n_ctx")) if isinstance(settings, dict) else None


def _tokens(value: Any) -> int | None:
    is_count = isinstance(value, int) and not isinstance(value, bool)
    return value if is_count and MIN_CONTEXT <= value <= MAX_CONTEXT else None

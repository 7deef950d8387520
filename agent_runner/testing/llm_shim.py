"""A loopback proxy in front of a real OpenAI-compatible server, for tests that need a real model to act.

A small local model rarely makes a tool call on its own, so a test cannot reach its second step. The shim
forwards every request to the real server and, when asked, replaces the first chat answer with a tool call
(keeping the server's usage), so the next request carries a tool result the real server must accept. It
can also hold each chat request for `delay_s` first: a server slower than any limit. It records what it
forwarded and how long the server took:

    with LLMShim("http://127.0.0.1:8000", first_tool_call=("bash", {"command": "echo hi"})) as shim:
        ...  # point models.openai_base_url at shim.base_url
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

MAX_BODY_BYTES = 16 << 20  # a chat request or answer of a short task is a few hundred KB at most
UPSTREAM_TIMEOUT_S = 600.0  # a CPU-only server answering a long prompt; the client's own timeout is shorter
SHIM_CALL_ID = "call_shim_1"
CHAT_PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class Exchange:
    """One request the shim handled: what was sent, what the real server answered, how long it took."""

    method: str
    path: str
    request: Any  # the parsed request body (None for a GET)
    status: int  # the real server's status; 0 when it was never asked (held past the shim's close)
    latency_s: float  # the real server's time to answer
    prompt_tokens: int | None  # from the answer's usage
    replaced: bool = False  # the answer was replaced with the shim's tool call


class LLMShim:
    """A threaded HTTP proxy on 127.0.0.1; a context manager. `upstream` is the real server's root URL."""

    def __init__(
        self,
        upstream: str,
        *,
        first_tool_call: tuple[str, dict[str, Any]] | None = None,
        delay_s: float = 0.0,
    ) -> None:
        parsed = urlparse(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.first_tool_call = first_tool_call
        self.delay_s = delay_s
        self.exchanges: list[Exchange] = []
        self._n_arrived = 0
        self._is_call_made = first_tool_call is None
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="llm-shim", daemon=True)

    def __enter__(self) -> LLMShim:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving and release requests still held by `delay_s`."""
        self._stop.set()
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def base_url(self) -> str:
        """Return the base URL for the OpenAI SDK (with /v1)."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def chats(self) -> list[Exchange]:
        """Return the chat-completion exchanges, in order."""
        with self._changed:
            return [e for e in self.exchanges if e.path == CHAT_PATH]

    def wait_for_chats(self, count: int, timeout_s: float) -> bool:
        """Wait until `count` chat requests have arrived (answered or held); return whether they did."""
        with self._changed:
            return self._changed.wait_for(lambda: self._n_arrived >= count, timeout_s)

    def _arrived(self) -> None:
        with self._changed:
            self._n_arrived += 1
            self._changed.notify_all()

    def _record(self, exchange: Exchange) -> None:
        with self._changed:
            self.exchanges.append(exchange)
            self._changed.notify_all()

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        """Forward one request (held first for a chat when `delay_s` is set); return the answer to send."""
        request = _parse(body) if body else None
        if path == CHAT_PATH:
            self._arrived()
            if self.delay_s and self._stop.wait(self.delay_s):
                self._record(Exchange(method, path, request, 0, 0.0, None))
                return 503, b'{"error": {"message": "the shim closed while holding the request"}}'
        started = time.monotonic()
        status, answer = self._forward(method, path, body)
        latency = time.monotonic() - started
        parsed = _parse(answer)
        replaced = False
        if path == CHAT_PATH and status == 200 and self._take_first_call():
            parsed, replaced = _with_tool_call(parsed, self.first_tool_call), True
            answer = json.dumps(parsed).encode()
        self._record(Exchange(method, path, request, status, latency, _prompt_tokens(parsed), replaced))
        return status, answer

    def _take_first_call(self) -> bool:
        """Return True once: for the first chat answer the real server gave, when a call is to be made."""
        with self._changed:
            is_first, self._is_call_made = not self._is_call_made, True
            return is_first

    def _forward(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection(*self.upstream, timeout=UPSTREAM_TIMEOUT_S)
        try:
            headers = {"content-type": "application/json"} if body else {}
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            return response.status, response.read(MAX_BODY_BYTES)
        except OSError as exc:
            return 502, json.dumps({"error": {"message": f"shim: upstream unreachable: {exc}"}}).encode()
        finally:
            connection.close()


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _prompt_tokens(answer: Any) -> int | None:
    usage = answer.get("usage") if isinstance(answer, dict) else None
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return tokens if isinstance(tokens, int) else None


def _with_tool_call(answer: Any, call: tuple[str, dict[str, Any]] | None) -> Any:
    """Return the answer with its first choice replaced by one tool call (usage and ids kept)."""
    if not isinstance(answer, dict) or call is None:
        return answer
    name, arguments = call
    function = {"name": name, "arguments": json.dumps(arguments)}
    message = {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": SHIM_CALL_ID, "type": "function", "function": function}],
    }
    return {**answer, "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}]}


def _handler_for(shim: LLMShim) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._send(*shim.handle("GET", self.path, b""))

        def do_POST(self) -> None:
            length = min(int(self.headers.get("content-length") or 0), MAX_BODY_BYTES)
            self._send(*shim.handle("POST", self.path, self.rfile.read(length)))

        def _send(self, status: int, payload: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                self.close_connection = True  # the client gave up (its timeout): nothing to answer

        def finish(self) -> None:
            with contextlib.suppress(OSError):
                super().finish()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler

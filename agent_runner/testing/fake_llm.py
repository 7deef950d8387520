"""A fake LLM server on 127.0.0.1 speaking Anthropic /v1/messages and OpenAI /v1/chat/completions.

It serves a scripted queue of replies (turns, error statuses, junk, hangs, resets), records every request,
and checks the transcript invariants a real API enforces. The real SDKs talk to it over HTTP:

    with FakeLLMServer() as server:
        server.enqueue(turn(tool_calls=[("bash", {"command": "ls"})]), error(529, retry_after_ms=5))
        model = AnthropicModel("claude-test", api_key="test", base_url=server.anthropic_base_url)
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agent_runner.testing.fake_llm_limit import InFlightLimit, InFlightStats
from agent_runner.testing.fake_llm_wire import (
    Protocol,
    Reply,
    context_too_long,
    error,
    hang,
    llama_cpp_check,
    raw,
    raw_json,
    reset,
    turn,
)

PATHS: dict[str, Protocol] = {"/v1/messages": "anthropic", "/v1/chat/completions": "openai"}
ReplySource = Reply | Callable[["RecordedRequest"], Reply]
RequestCheck = Callable[[Any], Reply | None]  # parsed body -> the refusal to send instead, or None


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    protocol: Protocol
    path: str
    headers: dict[str, str]
    body: bytes

    @cached_property
    def json(self) -> Any:
        """Return the parsed body."""
        return json.loads(self.body)


class FakeLLMServer:
    """A threaded HTTP server on a free port; a context manager. `default` answers when the queue is empty;
    `check` (e.g. `llama_cpp_check`) refuses a request it finds invalid, every time, before the queue;
    `gets` maps a GET path (e.g. `/v1/models`, `/props`) to its answer, any other GET gets a 404;
    `in_flight_limit` answers 429 whenever more requests would be in flight (fake_llm_limit.py)."""

    def __init__(
        self,
        *,
        default: ReplySource | None = None,
        check: RequestCheck | None = None,
        in_flight_limit: InFlightLimit | None = None,
    ) -> None:
        self.requests: list[RecordedRequest] = []
        self.in_flight_limit = in_flight_limit
        self.default: ReplySource = default or error(500, "fake LLM server: the reply queue is empty")
        self.check = check
        self.gets: dict[str, Reply] = {}
        self._queue: deque[ReplySource] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._serve, name="fake-llm", daemon=True)

    def __enter__(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self) -> None:
        self._httpd.serve_forever(poll_interval=0.02)

    def close(self) -> None:
        """Stop serving and wake any hanging handlers."""
        self._stop.set()
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def port(self) -> int:
        """Return the bound port."""
        return int(self._httpd.server_address[1])

    @property
    def anthropic_base_url(self) -> str:
        """Return the base URL for the Anthropic SDK (no /v1)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """Return the base URL for the OpenAI SDK (with /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pending(self) -> int:
        """Return how many queued replies are still unserved."""
        return len(self._queue)

    def enqueue(self, *replies: ReplySource) -> None:
        """Queue replies (or callables request -> Reply), served one per request in order."""
        with self._lock:
            self._queue.extend(replies)

    def check_invariants(self) -> None:
        """Raise AssertionError unless the recorded requests respect the transcript invariants."""
        check_invariants(self.requests)

    def _next(self, request: RecordedRequest) -> tuple[Reply, int]:
        refusal = self.check(request.json) if self.check is not None and request.body else None
        with self._lock:
            self.requests.append(request)
            n_request = len(self.requests)
            if refusal is not None:
                return refusal, n_request
            source = self._queue.popleft() if self._queue else self.default
        return (source(request) if callable(source) else source), n_request


def _handler_for(server: FakeLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            reply = server.gets.get(self.path.split("?")[0])
            if reply is None:
                self._send(404, b'{"error": {"message": "unknown path"}}', {})
                return
            self._send(reply.status, reply.render("openai", b"", 0), reply.headers)

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            protocol = PATHS.get(self.path.split("?")[0])
            if protocol is None:
                self._send(404, b'{"error": {"message": "unknown path"}}', {})
                return
            request = RecordedRequest(
                protocol, self.path, {k.lower(): v for k, v in self.headers.items()}, body
            )
            limit = server.in_flight_limit
            refusal = limit.enter() if limit is not None else None
            if refusal is not None:
                self._send(refusal.status, refusal.render(protocol, body, 0), refusal.headers)
                return
            try:
                self._answer(protocol, request, body)
            finally:
                if limit is not None:
                    limit.leave()

        def _answer(self, protocol: Protocol, request: RecordedRequest, body: bytes) -> None:
            reply, n_request = server._next(request)
            if reply.action == "reset":
                self._reset()
                return
            if reply.action == "hang" and server._stop.wait(reply.delay_s):
                return
            if reply.action == "respond" and reply.delay_s and server._stop.wait(reply.delay_s):
                return  # a slow answer (a turn's `delay_s`), cut short when the server stops
            self._send(reply.status, reply.render(protocol, body, n_request), reply.headers)

        def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
            try:
                self.send_response(status)
                if "content-type" not in headers:
                    self.send_header("content-type", "application/json")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                self.close_connection = True  # the client gave up (timeout): nothing to answer

        def _reset(self) -> None:
            # SO_LINGER 0 makes close() send RST: the client sees a connection reset, not a clean EOF.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True

        def finish(self) -> None:
            with contextlib.suppress(OSError):
                super().finish()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def check_invariants(requests: Sequence[RecordedRequest]) -> None:
    """Raise AssertionError if a tool result answers no earlier call, or system or tools vary."""
    for protocol in ("anthropic", "openai"):
        mine = [r for r in requests if r.protocol == protocol and r.body]
        stable = [_stable_part(r) for r in mine]
        for index, part in enumerate(stable[1:], start=2):
            assert part == stable[0], f"{protocol} request {index}: system or tools differ from request 1"
        for index, request in enumerate(mine, start=1):
            pairs = _anthropic_pairs(request.json) if protocol == "anthropic" else _openai_pairs(request.json)
            _check_pairs(pairs, f"{protocol} request {index}")


def _stable_part(request: RecordedRequest) -> str:
    body = request.json
    if request.protocol == "anthropic":
        return json.dumps([body.get("system"), body.get("tools")])
    first = body.get("messages", [{}])[0]
    system = first if first.get("role") in ("system", "developer") else None
    return json.dumps([system, body.get("tools")])


def _anthropic_pairs(body: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Return (kind, ids) per message: ('calls', ids) for assistant turns, ('results', ids) for user turns."""
    pairs: list[tuple[str, list[str]]] = []
    for message in body.get("messages", []):
        blocks = message["content"] if isinstance(message["content"], list) else []
        if message["role"] == "assistant":
            pairs.append(("calls", [b["id"] for b in blocks if b.get("type") == "tool_use"]))
        else:
            pairs.append(("results", [b["tool_use_id"] for b in blocks if b.get("type") == "tool_result"]))
    return pairs


def _openai_pairs(body: dict[str, Any]) -> list[tuple[str, list[str]]]:
    pairs: list[tuple[str, list[str]]] = []
    for message in body.get("messages", []):
        if message["role"] == "assistant":
            pairs.append(("calls", [c["id"] for c in message.get("tool_calls") or []]))
        elif message["role"] == "tool":
            if pairs and pairs[-1][0] == "results":
                pairs[-1][1].append(message["tool_call_id"])
            else:
                pairs.append(("results", [message["tool_call_id"]]))
        else:
            pairs.append(("results", []))
    return pairs


def _check_pairs(pairs: list[tuple[str, list[str]]], where: str) -> None:
    seen: set[str] = set()
    for index, (kind, ids) in enumerate(pairs):
        if kind == "calls":
            seen.update(ids)
            answered = pairs[index + 1][1] if index + 1 < len(pairs) else ids
            missing = set(ids) - set(answered)
            assert not missing, f"{where}: tool calls {sorted(missing)} have no result in the next message"
        else:
            unknown = set(ids) - seen
            assert not unknown, f"{where}: tool results {sorted(unknown)} answer no earlier tool call"


__all__ = [
    "FakeLLMServer",
    "InFlightLimit",
    "InFlightStats",
    "RecordedRequest",
    "Reply",
    "check_invariants",
    "context_too_long",
    "error",
    "hang",
    "llama_cpp_check",
    "raw",
    "raw_json",
    "reset",
    "turn",
]

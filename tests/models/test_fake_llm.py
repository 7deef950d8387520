"""The fake LLM server's own guarantees: invariant checks, unknown paths, an empty queue."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from agent_runner.testing.fake_llm import FakeLLMServer, RecordedRequest, check_invariants

TOOLS = [{"name": "bash", "description": "d", "input_schema": {"type": "object"}}]


def anthropic_request(messages: list[dict], tools: list[dict] = TOOLS) -> RecordedRequest:
    body = json.dumps({"system": "s", "tools": tools, "messages": messages}).encode()
    return RecordedRequest("anthropic", "/v1/messages", {}, body)


def use(call_id: str) -> dict:
    return {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": call_id, "name": "bash", "input": {}}],
    }


def result(call_id: str) -> dict:
    return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id, "content": "x"}]}


def test_invariants_accept_a_valid_transcript() -> None:
    """Matching ids and stable system/tools pass."""
    user = {"role": "user", "content": "t"}
    check_invariants([anthropic_request([user]), anthropic_request([user, use("a"), result("a")])])


@pytest.mark.parametrize(
    ("requests", "words"),
    [
        ([anthropic_request([{"role": "user", "content": "t"}, result("b")])], "answer no earlier"),
        (
            [
                anthropic_request(
                    [{"role": "user", "content": "t"}, use("a"), {"role": "user", "content": "t"}]
                )
            ],
            "no result",
        ),
        ([anthropic_request([]), anthropic_request([], tools=[])], "differ from request 1"),
    ],
)
def test_invariants_catch_violations(requests: list[RecordedRequest], words: str) -> None:
    """A result for an unknown id, an unanswered call, or changed tools fail the check."""
    with pytest.raises(AssertionError, match=words):
        check_invariants(requests)


def test_unknown_path_and_empty_queue() -> None:
    """An unknown path is a 404; an empty queue answers 500 and records the request."""
    with FakeLLMServer() as server:
        for path, status in (("/v1/other", 404), ("/v1/messages", 500)):
            request = urllib.request.Request(server.anthropic_base_url + path, data=b"{}", method="POST")
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(request, timeout=5)
            assert caught.value.code == status
            caught.value.close()
        assert len(server.requests) == 1

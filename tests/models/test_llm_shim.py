"""The loopback shim the real-server tests put in front of llama-cpp-python, against the fake LLM server."""

from __future__ import annotations

import threading

import openai
import pytest

from agent_runner.testing.fake_llm import FakeLLMServer, turn
from agent_runner.testing.llm_shim import SHIM_CALL_ID, LLMShim

PROBE = ("bash", {"command": "ls"})


def _client(shim: LLMShim, timeout: float = 10.0) -> openai.OpenAI:
    return openai.OpenAI(api_key="t", base_url=shim.base_url, max_retries=0, timeout=timeout)


def test_the_first_answer_becomes_a_tool_call(server: FakeLLMServer) -> None:
    """Answer 1 is replaced by the shim's call (usage kept); answer 2 passes through untouched."""
    server.enqueue(turn("junk", usage={"input": 77, "output": 5}), turn("second"))
    with LLMShim(server.anthropic_base_url, first_tool_call=PROBE) as shim:
        client = _client(shim)
        first = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "t"}])
        second = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "t"}])
        client.close()
    (call,) = first.choices[0].message.tool_calls or []
    assert call.id == SHIM_CALL_ID and call.function.name == "bash" and first.usage is not None
    assert first.usage.prompt_tokens == 77 and second.choices[0].message.content == "second"
    assert [(c.status, c.replaced) for c in shim.chats] == [(200, True), (200, False)]
    assert len(server.requests) == 2  # both were really sent to the server behind the shim


def test_a_held_request_is_released_when_the_shim_closes(server: FakeLLMServer) -> None:
    """delay_s holds a chat request past the client's timeout; close() lets it go, never forwarded."""
    shim = LLMShim(server.anthropic_base_url, delay_s=600).__enter__()
    client = _client(shim, timeout=600)
    failed = threading.Event()

    def ask() -> None:
        with pytest.raises(openai.APIError):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "t"}])
        failed.set()

    asker = threading.Thread(target=ask)
    asker.start()
    assert shim.wait_for_chats(1, timeout_s=10)
    shim.close()
    asker.join(timeout=10)
    client.close()
    assert failed.is_set() and not server.requests and shim.chats[0].status == 0

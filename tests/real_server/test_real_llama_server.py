"""Against a real llama-cpp-python server (opt-in: see conftest.py): a task gets past its first tool call and
ends on the model's own merit, a slow server cannot hold an attempt past `minutes`, and `models check`
tells the chat formats that drop `tools` from one that keeps them. Figures are printed with `[figures]`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent_runner.config.runner import ModelsConfig, RunnerConfig
from agent_runner.core.result import ExitStatus, Outcome
from agent_runner.models.check import TOOLS_IGNORED, check_model
from agent_runner.testing.llm_shim import SHIM_CALL_ID, LLMShim

pytestmark = [pytest.mark.real_server, pytest.mark.timeout(1800)]
SPEC = "openai:gemma"  # the server's --model_alias (conftest.py); llama-cpp-python answers any name
Servers = Callable[[str | None], Any]  # conftest.py's `llama` factory: chat format -> LlamaServer
TOOL_FORMAT = "chatml-function-calling"  # keeps `tools` when tool_choice is sent; the GGUF has no template
PROBE = ("bash", {"command": "echo shim-probe > probe.txt && ls"})
MERIT = {  # how an attempt ends on the model's own merit (infrastructure and model errors are not)
    ExitStatus.FINISHED, ExitStatus.STEP_LIMIT, ExitStatus.FORMAT_ERRORS, ExitStatus.STUCK,
    ExitStatus.CONTEXT_EXCEEDED, ExitStatus.TOKEN_LIMIT,
}  # fmt: skip
SLOW_LIMIT_MINUTES = 0.5
JSON = {"content-type": "application/json"}


def _project(tmp_path: Path, base_url: str) -> Path:
    """Return a committed git repo whose pyproject points the OpenAI adapter at `base_url`."""
    root = tmp_path / "repo"
    (root / "tasks").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[tool.agent-runner]\nsandbox = "none"\ntest = "true"\n[tool.agent-runner.models]\n'
        f'openai_base_url = "{base_url}"\nmax_tokens = 256\ntimeout_s = 600\nmax_retries = 0\n'
        "context_tokens = 3000\n",
        encoding="utf-8",
    )
    (root / "notes.txt").write_text("notes\n", encoding="utf-8")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True)
    return root


def _exec(root: Path, limits: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """Run `run-agents exec` on a short task; return its JSON result and the command's wall time."""
    front = {"kind": "change", "model": SPEC, "reflection_rounds": 0, "limits": limits}
    task = "Create a file hello.txt that contains the word hello, using the bash tool, then call finish."
    (root / "tasks" / "hello.md").write_text(f"---\n{yaml.safe_dump(front)}---\n{task}\n", encoding="utf-8")
    argv = [sys.executable, "-m", "agent_runner.cli", "--root", str(root), "exec", "tasks/hello.md"]
    started = time.monotonic()
    out = subprocess.run([*argv, "--json"], cwd=root, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    assert out.stdout.strip(), f"no result line (exit {out.returncode}): {out.stderr[-2000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1]), wall


def _prompt_tokens(base_url: str, request: dict[str, Any]) -> int:
    """Return the prompt tokens the server counts for `request` (one output token asked)."""
    body = json.dumps({**request, "max_tokens": 1}).encode()
    post = urllib.request.Request(f"{base_url}/chat/completions", data=body, headers=JSON)
    with urllib.request.urlopen(post, timeout=600) as answer:
        return int(json.loads(answer.read())["usage"]["prompt_tokens"])


def _calls(message: dict[str, Any]) -> list[str]:
    """Return an assistant turn's calls as `name(arguments)`, cut short."""
    return [
        f"{c['function']['name']}({c['function']['arguments'][:60]})" for c in message.get("tool_calls", [])
    ]


def _figures(label: str, **values: Any) -> None:
    print(f"\n[figures] {label}: " + ", ".join(f"{k}={v}" for k, v in values.items()))


def test_task_gets_past_its_first_tool_call(llama: Servers, tmp_path: Path) -> None:
    """The shim makes the first answer a tool call; the next request carries its result and gets a 200."""
    server = llama(TOOL_FORMAT)
    with LLMShim(server.url, first_tool_call=PROBE) as shim:
        result, wall = _exec(_project(tmp_path, shim.base_url), {"steps": 4, "minutes": 10})
    chats = shim.chats
    first = chats[0].request
    bare = {k: v for k, v in first.items() if k not in ("tools", "tool_choice")}
    _figures(
        "runner's first request", tools=[t["function"]["name"] for t in first.get("tools", [])],
        prompt_tokens_with_tools=chats[0].prompt_tokens,
        prompt_tokens_without_tools=_prompt_tokens(server.base_url, bare),
    )  # fmt: skip
    _figures(
        "task via shim",
        exit_status=result["exit_status"], outcome=result["outcome"], steps=result["model_calls"],
        duration_s=round(result["duration_s"], 1), wall_s=round(wall, 1),
        latencies_s=[round(c.latency_s, 1) for c in chats], statuses=[c.status for c in chats],
        prompt_tokens=[c.prompt_tokens for c in chats], reason=result.get("reason", "")[:200],
        calls=[_calls(m) for m in chats[-1].request["messages"] if m["role"] == "assistant"],
    )  # fmt: skip
    assert len(chats) >= 2 and chats[0].replaced, chats
    results = [m for m in chats[1].request["messages"] if m.get("role") == "tool"]
    assert [m["tool_call_id"] for m in results] == [SHIM_CALL_ID] and "probe.txt" in results[0]["content"]
    assert all(c.status == 200 for c in chats), [c.status for c in chats]
    assert result["outcome"] != Outcome.INFRA and ExitStatus(result["exit_status"]) in MERIT, result


def test_slow_server_cannot_hold_an_attempt_past_minutes(llama: Servers, tmp_path: Path) -> None:
    """The shim holds each answer for 10 minutes; the attempt still ends at its `minutes` limit."""
    server = llama(TOOL_FORMAT)
    limit_s = SLOW_LIMIT_MINUTES * 60
    with LLMShim(server.url, delay_s=600) as shim:
        result, wall = _exec(_project(tmp_path, shim.base_url), {"minutes": SLOW_LIMIT_MINUTES})
        held = shim.wait_for_chats(1, timeout_s=0)
    _figures(
        "slow server", limit_s=limit_s, exit_status=result.get("exit_status"), limit=result.get("limit"),
        attempt_duration_s=round(result["duration_s"], 1), wall_s=round(wall, 1),
        outcome=result["outcome"], reason=result.get("reason", "")[:300],
    )  # fmt: skip
    assert held, "the attempt never reached the model"
    assert result["exit_status"] == ExitStatus.TIME_LIMIT and result.get("limit") == "minutes", result
    assert result["duration_s"] < limit_s + 30, f"the attempt ran {result['duration_s']:.0f} s"


@pytest.mark.parametrize("chat_format", ["gemma", TOOL_FORMAT, None], ids=["gemma", TOOL_FORMAT, "default"])
def test_models_check_tells_formats_that_drop_tools(llama: Servers, chat_format: str | None) -> None:
    """`--chat_format gemma` (and the fallback format) drop `tools`; chatml-function-calling keeps them."""
    server = llama(chat_format)
    models = ModelsConfig(openai_base_url=server.base_url, max_tokens=256, timeout_s=600, max_retries=0)
    started = time.monotonic()
    checked = check_model(SPEC, RunnerConfig(model=SPEC, models=models), {})
    _figures(
        f"models check ({chat_format or 'default'})", seconds=round(time.monotonic() - started, 1),
        verdict=checked.verdict, tools=checked.tool_calls, prompt_tokens=checked.prompt_tokens,
        prompt_tokens_without_tools=checked.prompt_tokens_without_tools, context=checked.context,
        message=checked.message[:240],
    )  # fmt: skip
    assert checked.reachable == "ok" and checked.model == "ok", checked
    if chat_format == TOOL_FORMAT:
        assert TOOLS_IGNORED not in checked.message, checked
    else:
        assert checked.tool_calls == "failed" and checked.message.startswith(TOOLS_IGNORED), checked

"""A model that replays a script of turns: for tests, demos and dry runs (no network, no key)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent_runner.config.runner import ModelsConfig
from agent_runner.core.errors import (
    ConfigError,
    ContextExceededError,
    ModelAuthError,
    ModelError,
    ModelFatalError,
    ModelNotFoundError,
    ModelUnavailableError,
)
from agent_runner.core.messages import Message, ModelTurn, Role, StopReason, ToolCall, ToolSpec, Usage

_ERRORS: dict[str, type[ModelError]] = {
    "auth": ModelAuthError,
    "not_found": ModelNotFoundError,
    "fatal": ModelFatalError,
    "unavailable": ModelUnavailableError,
    "context": ContextExceededError,
}


class ScriptedCall(BaseModel):
    """One tool call in a script; the id defaults to call_<turn>_<index>."""

    model_config = ConfigDict(extra="forbid")
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None


class ScriptedTurn(BaseModel):
    """One scripted reply: text and tool calls, or an error to raise."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(default="", description="Assistant text.")
    tool_calls: list[ScriptedCall] = Field(default_factory=list, description="Tool calls, in order.")
    delay_s: float = Field(default=0.0, ge=0, description="Seconds to wait before answering.")
    usage: Usage = Field(default_factory=Usage, description="Token counts to report.")
    cost_usd: float | None = Field(default=None, ge=0, description="Cost to report (None: unknown).")
    max_cost_usd: float | None = Field(
        default=None, ge=0, description="The most this call could have cost (default: cost_usd)."
    )
    format_error: str | None = Field(default=None, description="Report this turn as a format error.")
    error: Literal["auth", "not_found", "fatal", "unavailable", "context"] | None = Field(
        default=None, description="Raise this model error instead of answering."
    )


class ScriptFile(BaseModel):
    """A script file: `{turns: [...]}`."""

    model_config = ConfigDict(extra="forbid")
    turns: list[ScriptedTurn]


@dataclass(frozen=True)
class ScriptedRequest:
    """What the scripted model was asked: for tests of the loop."""

    system: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...]


class ScriptedModel:
    """Replays turns verbatim (the loop judges them); past the end it answers text and no tool call."""

    def __init__(
        self,
        turns: Sequence[ScriptedTurn | Mapping[str, Any]],
        *,
        delay_s: float = 0.0,
        spec: str = "scripted",
    ) -> None:
        self.turns = [
            t if isinstance(t, ScriptedTurn) else ScriptedTurn.model_validate(dict(t)) for t in turns
        ]
        self.delay_s = delay_s
        self.spec = spec
        self.requests: list[ScriptedRequest] = []
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path, *, delay_s: float = 0.0) -> ScriptedModel:
        """Load a YAML or JSON script file."""
        return cls(load_script(path), delay_s=delay_s, spec=f"scripted:{path}")

    @classmethod
    def from_spec(
        cls,
        name: str,
        *,
        config: ModelsConfig,
        cache_key: str | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> ScriptedModel:
        """Build the model for `scripted:<path>`."""
        if not name:
            raise ConfigError("scripted: needs a script file, e.g. scripted:path/to/script.yaml")
        return cls.from_file(Path(name).expanduser())

    @property
    def n_calls(self) -> int:
        """Return how many times the model was queried."""
        return len(self.requests)

    def max_call_cost(self, input_tokens: int) -> float | None:
        """Return the next turn's `max_cost_usd`, else its cost: what it will bill (None: unknown)."""
        with self._lock:
            index = len(self.requests)
        if index >= len(self.turns):
            return 0.0
        turn = self.turns[index]
        return turn.max_cost_usd if turn.max_cost_usd is not None else turn.cost_usd

    def query(self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelTurn:
        """Return the next scripted turn (or raise its scripted error)."""
        with self._lock:
            index = len(self.requests)
            self.requests.append(ScriptedRequest(system, tuple(messages), tuple(tools)))
        turn = self.turns[index] if index < len(self.turns) else ScriptedTurn(text="(the script has ended)")
        time.sleep(turn.delay_s or self.delay_s)
        if turn.error:
            raise _ERRORS[turn.error](f"{self.spec}: scripted {turn.error} error at turn {index + 1}")
        calls = [
            ToolCall(id=call.id or f"call_{index + 1}_{n}", name=call.name, arguments=call.arguments)
            for n, call in enumerate(turn.tool_calls)
        ]
        problem = turn.format_error
        return ModelTurn(
            message=Message(role=Role.ASSISTANT, text=turn.text, tool_calls=[] if problem else calls),
            usage=turn.usage,
            cost_usd=turn.cost_usd,
            stop_reason=StopReason.TOOL_USE if calls else StopReason.END_TURN,
            format_error=problem,
        )


def load_script(path: Path) -> list[ScriptedTurn]:
    """Return the turns of a YAML/JSON script file; ConfigError names the file and the problem."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        return ScriptFile.model_validate(data).turns
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read the script ({exc.strerror}); check the scripted:<path> spec."
        ) from exc
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"{path}: the script is not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}"
        ) from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(
            f"{path}: '{where}': {err['msg']} (expected {{turns: [{{text, tool_calls}}]}})"
        ) from exc

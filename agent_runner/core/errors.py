"""The one exception tree of agent-runner.

    RunnerError                      anything the runner reports to a person
    ├── ConfigError                  bad configuration (pyproject, env, flags)
    ├── TaskFileError                a task file that cannot be used (names file and field)
    ├── QueueError                   the queue file cannot be read or written
    │   ├── QueueCorruptError        a corrupt line that is not the last one
    │   └── StaleAttemptError        a late write for an attempt that was re-granted (fencing)
    ├── ModelError                   a model call failed
    │   ├── ModelFatalError          bad request, model not found: the task fails
    │   │   └── ModelAuthError       bad or missing key: stop dispatching to this model
    │   ├── ModelUnavailableError    rate limit, overload, 5xx, connection: infrastructure, retry later
    │   └── ContextExceededError     the transcript no longer fits the model's context
    ├── ToolError                    a tool could not run (reported back to the agent, never fatal)
    ├── GitError                     a git operation failed
    │   └── BundleRejectedError      a result's commits may not land (git's fsck, the landing checks)
    ├── WorkTreeError                the agent's work tree cannot be committed as it is (its fault)
    ├── SetupError                   a per-repo setup command failed in the checkout
    ├── ExecutorError                a worker or machine failed: infrastructure, retry elsewhere
    ├── GitHubError                  GitHub refused or could not be reached
    └── SandboxError                 the sandbox cannot be used as configured

Agent control flow (finished, limits reached) is not an error: see agent.py's ExitStatus.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class RunnerError(Exception):
    """Base of every error the runner raises on purpose; the message says what to do next."""


class ConfigError(RunnerError):
    """Configuration is invalid or incomplete."""


class ModelSpecError(ConfigError):
    """A model spec names no usable model (unknown provider, missing plug-in): no task can use it as is."""


class TaskFileError(RunnerError):
    """A task file cannot be parsed or validated."""

    def __init__(self, path: str, message: str, *, field: str | None = None) -> None:
        self.path = path
        self.field = field
        where = f"{path}: field '{field}'" if field else path
        super().__init__(f"{where}: {message}")
        self.reason = message


class QueueError(RunnerError):
    """The queue file cannot be read or written."""


class QueueCorruptError(QueueError):
    """A line in the middle of the queue file is not valid JSON."""


class StaleAttemptError(QueueError):
    """A worker reported for an attempt that is no longer the live one."""


class ModelError(RunnerError):
    """A model call failed."""


class ModelFatalError(ModelError):
    """The request can never succeed (bad request, unknown model): the task fails."""


class ModelAuthError(ModelFatalError):
    """The key is missing or rejected: no task can use this model until it is fixed."""


class ModelNotFoundError(ModelFatalError):
    """The API has no such model (or endpoint): no task can use this spec until its name is fixed."""


class ModelUnavailableError(ModelError):
    """Rate limit, overload, server error or connection failure, after retries."""


class ContextExceededError(ModelError):
    """The transcript is longer than the model's context window."""


class ToolError(RunnerError):
    """A tool call was invalid; the message goes back to the agent."""


class GitError(RunnerError):
    """A git operation failed; `detail` is git's own explanation."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class BundleRejectedError(GitError):
    """Git refused a result's objects for their content (fsck): bad work, not a transport fault."""


class WorkTreeError(RunnerError):
    """The agent left its work tree in a state git cannot stage (a nested repository): a task failure."""


class SetupError(RunnerError):
    """A setup command failed in the checkout."""


class ExecutorError(RunnerError):
    """A worker process or machine failed; the task is re-queued without spending an attempt."""


class GitHubError(RunnerError):
    """GitHub rejected a request or could not be reached."""


class SandboxError(RunnerError):
    """The configured sandbox is not available."""


def validation_text(error: Mapping[str, Any]) -> str:
    """Return one pydantic error's message as our validator wrote it (no "Value error, " in front)."""
    raised = (error.get("ctx") or {}).get("error")
    if error.get("type") in ("value_error", "assertion_error") and raised is not None:
        return str(raised)
    return str(error.get("msg", ""))

"""Redaction of secrets: known secret values and well-known token formats become [REDACTED].

The secrets the runner knows (`known_secrets`) are the values of SECRET_NAMES, of the config's `forward_env`
and of its `secret_env`; the coordinator also masks any variable whose name looks secret (`runner_redactor`).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

MASK = "[REDACTED]"
MIN_SECRET_LEN = 8
# Variables whose values are always secrets (the runner's GitHub tokens and the model keys), or by suffix.
SECRET_NAMES = frozenset(
    {"GITHUB_TOKEN", "GH_TOKEN", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_AUTH_TOKEN"}
)
SECRET_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET", "_SECRET_KEY", "_ACCESS_KEY", "_PASSWORD", "_PAT")
# Real keys are long (36 to 150 characters after the prefix); the lower bounds keep words such as "gho_st"
# intact, and a match must start a word (checked in `_mask`: a look-behind here makes the scan 20x slower).
TOKEN_PATTERNS = (
    r"gh[pousr]_[A-Za-z0-9]{30,}",  # GitHub classic: personal, OAuth, user-to-server, server, refresh
    r"github_pat_[A-Za-z0-9_]{30,}",  # GitHub fine-grained personal access tokens
    r"sk-ant-[A-Za-z0-9_\-]{30,}",  # Anthropic
    r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{30,}",  # OpenAI
)


log = logging.getLogger(__name__)
_SAID_SHORT: set[str] = set()  # variables whose too-short value was logged once in this process


class SecretConfig(Protocol):
    """The config fields that name secret variables (RunnerConfig has them)."""

    forward_env: list[str]
    secret_env: list[str]


def is_secret_name(name: str) -> bool:
    """Return whether an environment variable name holds a secret by convention."""
    upper = name.upper()
    return upper in SECRET_NAMES or upper.endswith(SECRET_SUFFIXES)


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char in "_-"


class Redactor:
    """Masks secret values (8+ characters, also JSON-escaped) and token patterns in text and objects."""

    def __init__(self, secret_values: Iterable[str] = ()) -> None:
        values = sorted(
            {v for v in secret_values if isinstance(v, str) and len(v) >= MIN_SECRET_LEN}, key=len
        )
        self.values = tuple(reversed(values))  # longest first, so a value containing another is masked whole
        escaped = {
            json.dumps(v, ensure_ascii=is_ascii)[1:-1] for v in self.values for is_ascii in (True, False)
        }
        self._value_set = frozenset({*self.values, *escaped})  # also as JSON text holds them
        literal = [re.escape(v) for v in sorted(self._value_set, key=len, reverse=True)]
        self._pattern = re.compile("|".join([*literal, *TOKEN_PATTERNS]))
        self._values = re.compile("|".join(literal)) if literal else None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], *, names: Iterable[str] = (), extra: Iterable[str] = ()
    ) -> Redactor:
        """Collect values of secret-looking variables and of `names` from `environ`, plus `extra` values."""
        wanted = set(names)
        values = [v for k, v in environ.items() if k in wanted or is_secret_name(k)]
        return cls([*values, *extra])

    def with_values(self, values: Iterable[str]) -> Redactor:
        """Return a redactor that also masks `values`."""
        return Redactor([*self.values, *values])

    def text(self, s: str) -> str:
        """Return `s` with every secret replaced by [REDACTED]."""
        return self._pattern.sub(self._mask, s) if s else s

    def _mask(self, match: re.Match[str]) -> str:
        found, start = match.group(0), match.start()
        if found in self._value_set or start == 0 or not _is_word_char(match.string[start - 1]):
            return MASK
        # A token prefix inside a word ("risk-assessment-..."): not a token, but it may still hold a value.
        return self._values.sub(MASK, found) if self._values else found

    def obj(self, o: Any) -> Any:
        """Return a copy of a JSON-like object with secrets redacted in its keys and string values."""
        if isinstance(o, str):
            return self.text(o)
        if isinstance(o, Mapping):
            return {self.obj(k): self.obj(v) for k, v in o.items()}
        if isinstance(o, list):
            return [self.obj(v) for v in o]
        if isinstance(o, tuple):
            return tuple(self.obj(v) for v in o)
        return o

    def __call__(self, s: str) -> str:
        """Redact text (so a Redactor can be passed where a `Callable[[str], str]` is expected)."""
        return self.text(s)

    def __repr__(self) -> str:
        return f"Redactor({len(self.values)} values)"


class SecretValues:
    """Secret values carried in memory (the gate settings): iterable, but repr, str and JSON show a count."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values = tuple(v for v in values if v)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __repr__(self) -> str:
        return f"<{len(self._values)} secret values>"


def known_secrets(config: SecretConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """Return name -> value of the secrets the runner knows: SECRET_NAMES, `forward_env`, `secret_env`.

    A value under MIN_SECRET_LEN characters is returned but cannot be masked safely (it would mask ordinary
    text): that is logged once per variable.
    """
    names = dict.fromkeys([*sorted(SECRET_NAMES), *config.forward_env, *config.secret_env])
    found = {name: environ[name] for name in names if environ.get(name)}
    for name in sorted(n for n, v in found.items() if len(v) < MIN_SECRET_LEN and n not in _SAID_SHORT):
        _SAID_SHORT.add(name)
        log.warning(
            "%s is shorter than %d characters: its value is not masked in output nor looked for in diffs",
            name, MIN_SECRET_LEN,
        )  # fmt: skip
    return found


def runner_redactor(config: SecretConfig, environ: Mapping[str, str]) -> Redactor:
    """Return the redactor for what the coordinator writes: known secrets and secret-looking variables."""
    return Redactor.from_env(environ, extra=known_secrets(config, environ).values())


def redact_file(path: Path, redactor: Redactor) -> bool:
    """Mask secrets in a text or JSON file in place; return whether it changed."""
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except (FileNotFoundError, IsADirectoryError):
        return False
    masked = redactor.text(text)
    if masked == text:
        return False
    tmp = path.with_name(f".{path.name}.redacted")
    tmp.write_text(masked, encoding="utf-8", errors="surrogateescape")
    os.replace(tmp, path)  # a reader sees the old file or the new one, never half of it
    return True

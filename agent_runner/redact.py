"""Redaction of secrets: known secret values and well-known token formats become [REDACTED]."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "[REDACTED]"
MIN_SECRET_LEN = 8
# Variables whose values are secrets, by exact name or by suffix.
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


def is_secret_name(name: str) -> bool:
    """Return whether an environment variable name holds a secret by convention."""
    upper = name.upper()
    return upper in SECRET_NAMES or upper.endswith(SECRET_SUFFIXES)


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char in "_-"


class Redactor:
    """Replaces secret values (at least 8 characters) and token patterns in text and JSON-like objects."""

    def __init__(self, secret_values: Iterable[str] = ()) -> None:
        values = sorted(
            {v for v in secret_values if isinstance(v, str) and len(v) >= MIN_SECRET_LEN}, key=len
        )
        self.values = tuple(reversed(values))  # longest first, so a value containing another is masked whole
        self._value_set = frozenset(self.values)
        literal = [re.escape(v) for v in self.values]
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

"""Redaction of secret values and token formats in text and nested records."""

from __future__ import annotations

import pytest

from agent_runner.core.redact import MASK, Redactor, is_secret_name

GH = "ghp_" + "A1b2C3d4" * 5
GH_FINE = "github_pat_11ABCDEFG0" + "x" * 40
ANT = "sk-ant-api03-" + "Zy9_-" * 10
OAI = "sk-proj-" + "q" * 40
OAI_LEGACY = "sk-" + "T3BlbkFJ" * 4


@pytest.mark.parametrize("token", [GH, "ghs_" + "a" * 36, "gho_" + "b" * 36, GH_FINE, ANT, OAI, OAI_LEGACY])
def test_token_patterns_are_masked_without_known_values(token: str) -> None:
    """Well-known token formats are masked even when no value was registered."""
    out = Redactor().text(f"key={token} next")
    assert token not in out
    assert out == f"key={MASK} next"


@pytest.mark.parametrize(
    "text",
    ["risk-assessment-of-the-whole-module-and-more", "task-sk-ant-upgrade-the-client-library-x", "gho_st"],
)
def test_ordinary_words_are_not_tokens(text: str) -> None:
    """Slugs that merely contain a token prefix are left alone."""
    assert Redactor().text(text) == text


def test_known_values_are_masked_longest_first() -> None:
    """Registered values are masked, including one that contains another; short values are left alone."""
    red = Redactor(["hunter2-password", "hunter2-password-extended", "short"])
    assert red.text("a hunter2-password-extended b hunter2-password c short") == f"a {MASK} b {MASK} c short"


def test_regex_characters_in_values_are_literal() -> None:
    """A value full of regex metacharacters is matched literally."""
    red = Redactor(["a.b*c+d?(e)"])
    assert red.text("x a.b*c+d?(e) y aXbbbcdde") == f"x {MASK} y aXbbbcdde"


def test_nested_objects_are_redacted_in_keys_and_values() -> None:
    """Dicts, lists and tuples are walked; non-strings pass through; the input is not modified."""
    red = Redactor(["s3cr3t-value-123"])
    record = {
        "result": {"summary": f"used {GH}", "steps": 3, "cost": 0.5, "ok": True, "none": None},
        "log": ["plain", ("s3cr3t-value-123", 7)],
        "s3cr3t-value-123": "key as well",
    }
    out = red.obj(record)
    assert out == {
        "result": {"summary": f"used {MASK}", "steps": 3, "cost": 0.5, "ok": True, "none": None},
        "log": ["plain", (MASK, 7)],
        MASK: "key as well",
    }
    assert record["result"]["summary"] == f"used {GH}"


def test_from_env_collects_secret_variables() -> None:
    """from_env takes *_API_KEY, *_TOKEN, GH_TOKEN and named variables, and ignores ordinary ones."""
    environ = {
        "MY_SERVICE_API_KEY": "service-key-123456",
        "GH_TOKEN": "plain-gh-token-value",
        "CUSTOM_CRED": "custom-credential-1",
        "HOME": "/home/someone-long",
        "TERM": "xterm-256color",
    }
    red = Redactor.from_env(environ, names=["CUSTOM_CRED"])
    text = " ".join(environ.values())
    assert red.text(text) == f"{MASK} {MASK} {MASK} /home/someone-long xterm-256color"
    assert red("service-key-123456") == MASK


@pytest.mark.parametrize(
    ("name", "secret"),
    [("OPENAI_API_KEY", True), ("GITHUB_TOKEN", True), ("AWS_SECRET_ACCESS_KEY", True), ("PATH", False)],
)
def test_secret_names(name: str, secret: bool) -> None:
    """Secret variable names are recognised by name and suffix."""
    assert is_secret_name(name) is secret


def test_with_values_extends() -> None:
    """with_values returns a redactor that masks old and new values."""
    red = Redactor(["first-secret-1"]).with_values(["second-secret-2"])
    assert red.text("first-secret-1 second-secret-2") == f"{MASK} {MASK}"

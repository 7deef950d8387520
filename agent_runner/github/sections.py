"""Runner sections in a PR body: a named block at the top the runner can replace later (merge order, refresh).

A section sits between `<!-- agent-runner:section=NAME -->` and `<!-- agent-runner:end=NAME -->`. Agent text
in a body is defused (`body.defuse`), so it cannot forge either line; the task markers stay at the end.
"""

from __future__ import annotations

import re

START = "<!-- agent-runner:section={name} -->"
END = "<!-- agent-runner:end={name} -->"


def set_section(body: str, name: str, text: str) -> str:
    """Return `body` with the section `name` holding `text` at the top (replacing an earlier one)."""
    rest = drop_section(body, name).lstrip("\n")
    block = f"{START.format(name=name)}\n{text.strip()}\n{END.format(name=name)}\n\n"
    return block + rest


def drop_section(body: str, name: str) -> str:
    """Return `body` without the section `name` (unchanged when it has none)."""
    start, end = re.escape(START.format(name=name)), re.escape(END.format(name=name))
    return re.sub(rf"{start}\n.*?\n{end}\n*", "", body or "", flags=re.DOTALL)


def section(body: str, name: str) -> str | None:
    """Return the text of the section `name`, or None when the body has none."""
    start, end = re.escape(START.format(name=name)), re.escape(END.format(name=name))
    match = re.search(rf"{start}\n(.*?)\n{end}", body or "", flags=re.DOTALL)
    return match.group(1) if match else None

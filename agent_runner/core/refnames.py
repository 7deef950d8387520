"""Git's rules for branch names (`git check-ref-format --branch`) in Python: checked at intake, no subprocess.

A name git refuses would pass intake and then fail every attempt as infrastructure ("cannot lock ref"), so a
task's `branch` is held to these rules when its file is read. The rules, as refs.c applies them to
`refs/heads/<name>`: no component starts with '.' or ends with '.lock'; no '..', '@{', '//', control
character, space or any of ~ ^ : ? * [ \\; no leading or trailing '/', no trailing '.'; a branch does not
start with '-'. Stricter than git: `HEAD` as the last component (git takes `agent/HEAD`, then `HEAD` reads
ambiguously), C1 control characters (U+0080 to U+009F, which git passes as bytes) and a component over
250 bytes (its `.lock` file would pass the 255-byte limit of a file name: "cannot lock ref") are refused too.
"""

from __future__ import annotations

import re

FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
C1_CONTROL = re.compile(r"[\x80-\x9f]")
MAX_PART_BYTES = 250  # a file name holds 255 bytes, and git adds '.lock' while it writes a ref


def refname_problem(name: str) -> str | None:
    """Return why git refuses `name` as a full ref name (refs/heads/x), or None when it is valid."""
    if name == "@":
        return "is the single character '@'"
    if bad := FORBIDDEN.search(name):
        return f"contains {_show(bad.group())}, which git refuses in ref names"
    for text, problem in (("..", "contains '..'"), ("@{", "contains '@{'"), ("//", "contains '//'")):
        if text in name:
            return problem
    if name.startswith("/") or name.endswith("/"):
        return "starts or ends with '/'"
    if name.endswith("."):
        return "ends with '.'"
    return next(filter(None, map(_component_problem, name.split("/"))), None)


def _component_problem(part: str) -> str | None:
    if part.startswith("."):
        return f"has a part starting with '.' ({part!r})"
    if part.endswith(".lock"):
        return f"has a part ending with '.lock' ({part!r})"
    return None


def branch_problem(name: str) -> str | None:
    """Return why `name` cannot be a branch (git's rules, plus HEAD, C1 controls, long parts), or None."""
    if not name:
        return "is empty"
    if name.startswith("-"):
        return "starts with '-'"
    if bad := C1_CONTROL.search(name):
        return f"contains {_show(bad.group())}, a control character"
    if name.rsplit("/", 1)[-1] == "HEAD":
        return "ends with 'HEAD', which git reads as the current commit"
    if any(len(part.encode()) > MAX_PART_BYTES for part in name.split("/")):
        return f"has a part over {MAX_PART_BYTES} bytes, longer than a file name can be"
    return refname_problem(f"refs/heads/{name}")


def _show(char: str) -> str:
    return "a space" if char == " " else repr(char) if char.isprintable() else f"U+{ord(char):04X}"

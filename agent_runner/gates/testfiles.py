"""What counts as a test file, which tests a file defines, and whether they assert anything."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

TEST_DIRS = {"tests", "test", "testing"}
ASSERT_CALL = re.compile(r"^(assert|fail)|raises$|warns$|^approx$")
TEST_SUFFIXES = (
    ".py",
    ".json",
    ".yaml",
    ".yml",
    ".txt",
    ".toml",
    ".cfg",
    ".ini",
    ".csv",
    ".xml",
    ".html",
    ".md",
)


def is_test_file(path: str) -> bool:
    """Return whether a path is test code or test data (test_*.py, *_test.py, conftest.py or under tests/)."""
    pure = PurePosixPath(path)
    if pure.suffix == ".py" and (pure.name.startswith("test_") or pure.stem.endswith("_test")):
        return True
    if pure.name == "conftest.py":
        return True
    return any(part in TEST_DIRS for part in pure.parts[:-1]) and pure.suffix in TEST_SUFFIXES


def is_test_module(path: str) -> bool:
    """Return whether a path is a Python module that defines tests."""
    pure = PurePosixPath(path)
    return pure.suffix == ".py" and (pure.name.startswith("test_") or pure.stem.endswith("_test"))


def defined_tests(source: str) -> set[str]:
    """Return the test functions a module defines, as `name` or `Class.name`; empty when it does not parse."""
    tree = _parse(source)
    if tree is None:
        return set()
    names = {f.name for f in _test_funcs(tree.body)}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names.update(f"{node.name}.{f.name}" for f in _test_funcs(node.body))
    return names


@dataclass(frozen=True)
class TestFunction:
    """A test function: its pytest node id suffix (`name` or `Class::name`), line span, and its assertions."""

    __test__ = False
    node: str
    start: int
    end: int
    n_asserts: int

    @property
    def asserts(self) -> bool:
        """Whether it asserts anything real."""
        return self.n_asserts > 0


def find_test_functions(source: str) -> list[TestFunction]:
    """Return the module's top-level test functions and test methods, with their spans."""
    tree = _parse(source)
    if tree is None:
        return []
    found = [_record(f, f.name) for f in _test_funcs(tree.body)]
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            found.extend(_record(f, f"{node.name}::{f.name}") for f in _test_funcs(node.body))
    return found


def _record(func: ast.FunctionDef | ast.AsyncFunctionDef, node: str) -> TestFunction:
    start = min([func.lineno, *(d.lineno for d in func.decorator_list)])
    return TestFunction(node, start, func.end_lineno or func.lineno, count_asserts(func))


def asserts_anything(source: str) -> bool:
    """Return whether a test module holds at least one real assertion."""
    tree = _parse(source)
    return tree is not None and any(count_asserts(f) for f in _test_funcs(ast.walk(tree)))


def count_asserts(func: ast.AST) -> int:
    """Count real assertions: asserts on non-constants and assert*/raises/warns/approx calls."""
    return sum(1 for node in ast.walk(func) if _is_assertion(node))


def _is_assertion(node: ast.AST) -> bool:
    if isinstance(node, ast.Assert):
        return not isinstance(node.test, ast.Constant)
    return isinstance(node, ast.Call) and bool(ASSERT_CALL.search(_call_name(node)))


def _call_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _test_funcs(nodes: Iterable[ast.AST]) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    funcs = [n for n in nodes if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    return [f for f in funcs if f.name.startswith("test")]


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # nested past the parser: no tests
        return None

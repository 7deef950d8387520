"""Simple mutants via `ast`: flipped comparison, changed constant, removed statement, return None.

Only code inside function bodies is mutated, so a mutant still imports and fails only where tests look.
"""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass
from itertools import zip_longest

FLIPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
SYMBOLS = {
    ast.Lt: "<",
    ast.GtE: ">=",
    ast.Gt: ">",
    ast.LtE: "<=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}
REMOVABLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Raise, ast.Delete)


@dataclass(frozen=True)
class Mutant:
    """One mutation: which file and line, which operator, and the n-th site of that operator in the file."""

    file: str
    line: int
    operator: str
    index: int
    description: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.operator}: {self.description}"


class _Sites(ast.NodeTransformer):
    """Walks function bodies in a fixed order, listing mutation sites or applying one of them."""

    def __init__(self, file: str, target: tuple[str, int] | None = None) -> None:
        self.file, self.target = file, target
        self.found: list[Mutant] = []
        self.counts: dict[str, int] = {}
        self.depth = 0
        self.applied = False

    def _site(self, operator: str, node: ast.AST, description: str) -> bool:
        index = self.counts.get(operator, 0)
        self.counts[operator] = index + 1
        self.found.append(Mutant(self.file, getattr(node, "lineno", 0), operator, index, description))
        hit = self.target == (operator, index)
        self.applied = self.applied or hit
        return hit

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        self.depth += 1
        node.body = [self.visit(stmt) for stmt in node.body]
        self.depth -= 1
        return node

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        if self.depth:
            for i, op in enumerate(node.ops):
                flipped = FLIPS.get(type(op))
                desc = f"`{SYMBOLS.get(type(op))}` -> `{SYMBOLS.get(flipped or type(op))}`"
                if flipped and self._site("flip-comparison", node, desc):
                    node.ops[i] = flipped()
        return self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if not self.depth or value is None or isinstance(value, str | bytes) or value is Ellipsis:
            return node
        new = (not value) if isinstance(value, bool) else value + 1
        if isinstance(value, int | float | bool) and self._site(
            "change-constant", node, f"{value!r} -> {new!r}"
        ):
            return ast.copy_location(ast.Constant(new), node)
        return node

    def visit_Return(self, node: ast.Return) -> ast.AST:
        is_none = node.value is None or (isinstance(node.value, ast.Constant) and node.value.value is None)
        if self.depth and not is_none and self._site("return-none", node, "return value -> return None"):
            return ast.copy_location(ast.Return(ast.Constant(None)), node)
        return self.generic_visit(node)

    def generic_visit(self, node: ast.AST) -> ast.AST:
        is_noop = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if self.depth and isinstance(node, REMOVABLE) and not is_noop:
            line = ast.unparse(node).splitlines()[0][:60]
            if self._site("remove-statement", node, f"removed `{line}`"):
                return ast.copy_location(ast.Pass(), node)
        return super().generic_visit(node)


def find_mutants(source: str, file: str) -> list[Mutant]:
    """Return every mutation site in a module's functions (empty when it does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    sites = _Sites(file)
    sites.visit(tree)
    return sites.found


def apply_mutant(source: str, mutant: Mutant) -> str:
    """Return the module's source with one mutation applied."""
    sites = _Sites(mutant.file, target=(mutant.operator, mutant.index))
    tree = ast.fix_missing_locations(sites.visit(ast.parse(source)))
    if not sites.applied:
        raise ValueError(f"mutation site {mutant} not found")
    return ast.unparse(tree) + "\n"


def choose_mutants(
    candidates: list[Mutant], *, covered: dict[str, frozenset[int]] | None = None, limit: int = 8
) -> list[Mutant]:
    """Pick up to `limit` mutants: lines the tests ran first, operators in turn, reproducibly shuffled."""
    by_operator: dict[str, list[Mutant]] = {}
    for mutant in candidates:
        by_operator.setdefault(mutant.operator, []).append(mutant)
    rng = random.Random(20240501)
    for group in by_operator.values():
        rng.shuffle(group)
        if covered is not None:
            group.sort(key=lambda m: m.line not in covered.get(m.file, frozenset()))
    order = [m for batch in zip_longest(*by_operator.values()) for m in batch if m is not None]
    return order[:limit]

"""The throwaway project of `run-agents demo`: a small shop package, its tests, and one task of each kind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from agent_runner.core.errors import ConfigError
from agent_runner.queue.log import side_files

SCRIPTS_DIR = Path(__file__).resolve().parent
QUEUE_FILES = ["tasks/queue.jsonl", *side_files("tasks/queue.jsonl")]  # the queue and its lock files
GIT_IDENTITY = ["-c", "user.name=agent-runner demo", "-c", "user.email=demo@agent-runner.invalid"]

FILES: dict[str, str] = {
    ".gitignore": "\n".join(
        [".agent-runner/", *QUEUE_FILES, "__pycache__/", ".pytest_cache/", ".ruff_cache/", ""]
    ),
    "README.md": "# shop\n\nA throwaway project made by `run-agents demo`.\n",
    "shop/__init__.py": '"""A tiny shop."""\n',
    "shop/cart.py": '''"""A shopping cart: every lint violation here has a safe automatic fix."""
import sys
import os
from typing import Dict, List


class Cart:
    """Items and their quantities."""

    def __init__(self) -> None:
        self.items: Dict[str, int] = {}

    def add(self, name: str, quantity: int = 1) -> None:
        """Add `quantity` of an item."""
        self.items[name] = self.items.get(name, 0) + quantity;

    def names(self) -> List[str]:
        """Return the item names in order."""
        return sorted(self.items)
''',
    "shop/legacy.py": '''"""Old helpers whose lint violations need judgment (no safe automatic fix)."""


def tally(words, counts={}):
    """Count how often each word occurs."""
    for word in words:
        counts[word] = counts.get(word, 0) + 1
    return counts


def first_long(lines, min_len=10):
    """Return the first line of at least min_len characters, or None."""
    for l in lines:
        if len(l) >= min_len:
            return l
    return None
''',
    "shop/pricing.py": '''"""Prices: nothing here is tested yet."""


def discount(price, percent):
    """Return price reduced by percent (0-100), rounded to cents."""
    if percent < 0 or percent > 100:
        raise ValueError(f"percent must be within 0..100, got {percent}")
    return round(price * (100 - percent) / 100, 2)


def shipping(total):
    """Return the shipping fee: free from 50 on, else 5."""
    if total >= 50:
        return 0
    return 5


def bulk_price(unit, quantity):
    """Return the price of quantity units, 10% off from 10 units on."""
    price = unit * quantity
    if quantity >= 10:
        price = price * 0.9
    return round(price, 2)
''',
    "shop/money.py": '''"""Money amounts are kept in integer cents."""


def cents_to_dollars(cents):
    """Return an amount in cents as dollars."""
    return cents / 100
''',
    "tests/test_cart.py": """from shop.cart import Cart
from shop.legacy import first_long


def test_add_counts_quantities():
    cart = Cart()
    cart.add("apple")
    cart.add("apple", 2)
    assert cart.items == {"apple": 3}


def test_names_are_sorted():
    cart = Cart()
    cart.add("pear")
    cart.add("apple")
    assert cart.names() == ["apple", "pear"]


def test_first_long():
    assert first_long(["short", "a much longer line"]) == "a much longer line"
""",
    "tests/test_money.py": """from shop.money import cents_to_dollars


def test_cents_to_dollars():
    assert cents_to_dollars(1250) == 12.5
""",
}

TASKS: list[dict[str, object]] = [
    {"id": "lint-cart", "kind": "fix-lint", "paths": ["shop/cart.py"], "script": None,
     "title": "Fix lint in shop/cart.py"},
    {"id": "lint-legacy", "kind": "fix-lint", "paths": ["shop/legacy.py"], "script": "lint-legacy.yaml",
     "title": "Fix lint in shop/legacy.py"},
    {"id": "test-pricing", "kind": "write-tests", "paths": ["shop/pricing.py"], "script": "test-pricing.yaml",
     "title": "Test shop/pricing.py"},
    {"id": "format-price", "kind": "change", "paths": ["shop/money.py"], "script": "format-price.yaml",
     "title": "Add format_price",
     "instructions": "Add `format_price(cents)` to shop/money.py (e.g. `$12.34`) with a test."},
    {"id": "review-legacy", "kind": "review", "paths": ["shop/legacy.py"], "script": "review-legacy.yaml",
     "title": "Review shop/legacy.py", "instructions": "Review shop/legacy.py for bugs."},
]  # fmt: skip


def pyproject(model: str) -> str:
    """Return the demo's pyproject: ruff config, and the runner config with this interpreter's pytest."""
    return (
        '[project]\nname = "shop"\nversion = "0.1.0"\n\n'
        '[tool.ruff]\nline-length = 100\ntarget-version = "py311"\n\n'
        '[tool.ruff.lint]\nselect = ["E", "F", "W", "I", "B", "UP"]\n\n'
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n\n'
        f'[tool.agent-runner]\ntest = "{sys.executable} -m pytest -q"\nworkers = 2\nmodel = "{model}"\n'
        "reflection_rounds = 2\n"
    )


def task_file(task: dict[str, object], *, recorded: bool) -> str:
    """Return a task file (Markdown with front matter); recorded tasks name their shipped script."""
    fields = {k: v for k, v in task.items() if k not in ("script", "instructions")}
    if recorded and task.get("script"):
        fields["model"] = f"scripted:{SCRIPTS_DIR / str(task['script'])}"
    front = yaml.safe_dump(fields, sort_keys=False).strip()
    return f"---\n{front}\n---\n{task.get('instructions') or task['title']}\n"


def create_project(folder: Path, *, model: str, recorded: bool) -> Path:
    """Write the demo project and its tasks into `folder` (which must be empty or new) and commit it."""
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise ConfigError(f"{folder} is not empty; give run-agents demo a new or empty folder")
    for name, text in {**FILES, "pyproject.toml": pyproject(model)}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    for task in TASKS:
        (folder / "tasks").mkdir(exist_ok=True)
        (folder / "tasks" / f"{task['id']}.md").write_text(
            task_file(task, recorded=recorded), encoding="utf-8"
        )
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], [*GIT_IDENTITY, "commit", "-q", "-m", "shop"]):
        subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)
    return folder

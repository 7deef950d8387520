"""MkDocs hook: the README is the site's home page, so the pitch is written once.

Links keep working in both places: the README links into `docs/` and the pages link back to `../README.md`,
as GitHub shows them; on the site these become links between pages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

README = Path(__file__).resolve().parent.parent / "README.md"


def on_files(files: Files, *, config: Any) -> Files:
    """Add README.md as the site's index.md."""
    files.append(File.generated(config, "index.md", content=README.read_text(encoding="utf-8")))
    return files


def on_page_markdown(markdown: str, *, page: Page, config: Any, files: Files) -> str:
    """Rewrite the README's `docs/` links and the pages' `../README.md` links for the site."""
    if page.file.src_uri == "index.md":
        return markdown.replace("](docs/", "](")
    return markdown.replace("](../README.md", "](index.md")

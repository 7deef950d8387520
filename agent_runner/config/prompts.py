"""Prompt templates (jinja2, StrictUndefined): a project's `prompts/` first, then the built-ins.

In an attempt, a project's templates are read once from the fresh checkout, before the agent runs
(`project_templates`): templates are code, and the agent could rewrite `prompts/` in its work tree.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import Any

import jinja2

from agent_runner.core.errors import ConfigError

TEMPLATE_SUFFIX = ".md.j2"
PROJECT_PROMPTS = "prompts"
MAX_TEMPLATE_BYTES = 256 * 1024  # a prompt template is a page of text; anything larger is not one
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def builtin_dir() -> Path:
    """Return the built-in templates' folder: `_prompts` in a wheel, the repo's `prompts/` when editable."""
    shipped = _PACKAGE_DIR / "_prompts"
    return shipped if shipped.is_dir() else _PACKAGE_DIR.parent / PROJECT_PROMPTS


def search_path(project_dir: Path | None = None) -> list[Path]:
    """Return the folders searched for templates, in order."""
    folders = [project_dir / PROJECT_PROMPTS] if project_dir is not None else []
    return [folder for folder in [*folders, builtin_dir()] if folder.is_dir()]


def builtin_names() -> list[str]:
    """Return the names of the built-in templates."""
    return sorted(path.name for path in builtin_dir().glob("*.j2"))


def builtin_templates() -> list[Path]:
    """Return the files of the built-in templates (for `run-agents init`)."""
    return [builtin_dir() / name for name in builtin_names()]


def copy_builtins(dest: Path, *, overwrite: bool = False) -> list[Path]:
    """Copy the built-in templates into `dest` (for customising); return the files written."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name in builtin_names():
        target = dest / name
        if target.exists() and not overwrite:
            continue
        shutil.copyfile(builtin_dir() / name, target)
        written.append(target)
    return written


@functools.lru_cache(maxsize=16)
def _environment(folders: tuple[str, ...]) -> jinja2.Environment:
    """Return the environment for a search path, kept so templates compile once per process.

    The bytecode cache (jinja's per-user folder, checked to be private) spares each new worker process the
    compile as well: about 15 ms per attempt.
    """
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(list(folders)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        bytecode_cache=_bytecode_cache(),
    )


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    try:
        return jinja2.FileSystemBytecodeCache()
    except RuntimeError:  # jinja found no private temp folder: compile every time instead
        return None


def warm() -> None:
    """Compile the built-in templates now (the fork server does, so every attempt it forks inherits them)."""
    env = _environment(tuple(str(folder) for folder in search_path()))
    for name in builtin_names():
        env.get_template(name)


def project_templates(project_dir: Path) -> dict[str, str]:
    """Return the project's own templates (name -> text): regular files in `prompts/`, no symlinks."""
    folder = project_dir / PROJECT_PROMPTS
    if folder.is_symlink() or not folder.is_dir():
        return {}
    found = {}
    for path in sorted(folder.glob("*.j2")):
        if path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_TEMPLATE_BYTES:
            found[path.name] = path.read_text(encoding="utf-8", errors="replace")
    return found


def render(
    name: str, *, project_dir: Path | None = None, templates: dict[str, str] | None = None, **variables: Any
) -> str:
    """Render template `name` (`system` is short for `system.md.j2`); ConfigError says what is wrong.

    A project's templates come from `templates` (read before the agent ran) or else `project_dir`.
    """
    folders = search_path(None if templates is not None else project_dir)
    env = _environment(tuple(str(folder) for folder in folders))
    if templates:
        builtins = jinja2.FileSystemLoader([str(folder) for folder in folders])
        env = env.overlay(loader=jinja2.ChoiceLoader([jinja2.DictLoader(templates), builtins]))
    full_name = name if name.endswith(".j2") else f"{name}{TEMPLATE_SUFFIX}"
    try:
        return env.get_template(full_name).render(**variables)
    except jinja2.TemplateNotFound as exc:
        where = ", ".join(str(folder) for folder in folders) or "nowhere"
        known = ", ".join(builtin_names())
        raise ConfigError(f"no prompt template {exc.name!r} (looked in {where}); built-ins: {known}") from exc
    except jinja2.UndefinedError as exc:
        raise ConfigError(f"prompt template {full_name}: {exc.message}; pass it or guard it") from exc
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(
            f"prompt template {exc.filename or full_name}, line {exc.lineno}: {exc.message}"
        ) from exc

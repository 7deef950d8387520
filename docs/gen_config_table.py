"""Generate the configuration reference in docs/configuration.md from the pydantic config models.

python docs/gen_config_table.py            # print the reference
python docs/gen_config_table.py --write    # rewrite it in docs/configuration.md between its markers
python docs/gen_config_table.py --check    # exit 1 when docs/configuration.md is out of date
"""

from __future__ import annotations

import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from agent_runner.config.runner import DEFAULT_LIMITS, RunnerConfig
from agent_runner.core.task import Limits

TARGET = Path(__file__).resolve().parent / "configuration.md"
HEADER = "| key | type | default | meaning |\n|---|---|---|---|"


def type_name(annotation: Any) -> str:
    """Return a short, readable name for a field's type."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f'"{a}"' if isinstance(a, str) else str(a).lower() for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        names = [type_name(a) for a in args if a is not type(None)]
        return " \\| ".join(names) + (" \\| none" if type(None) in args else "")
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(type_name(a) for a in args)}]"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    return getattr(annotation, "__name__", str(annotation)).replace("TaskKind", "kind")


def default_text(info: FieldInfo) -> str:
    """Return the field's default as TOML-ish text (or 'required')."""
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, dict) and not value:
        return "{}"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, list):
        return "`[" + ", ".join(f'"{v}"' for v in value) + "]`"
    return f"`{value}`"


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """Return the model class of a table or list-of-tables field, else None."""
    candidates = [annotation, *typing.get_args(annotation)]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def field_rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Return one table row per plain field of `model`."""
    rows = []
    for name, info in model.model_fields.items():
        if nested_model(info.annotation) is not None:
            continue
        key = info.alias or name
        text = (info.description or "").replace("|", "\\|")
        rows.append(f"| `{prefix}{key}` | {type_name(info.annotation)} | {default_text(info)} | {text} |")
    return rows


def section(title: str, model: type[BaseModel], note: str = "") -> str:
    """Return a heading, an optional note and the field table of one config table."""
    lines = [f"### `{title}`", "", *([note, ""] if note else []), HEADER, *field_rows(model), ""]
    return "\n".join(lines)


def config_reference() -> str:
    """Return the Markdown reference of every RunnerConfig field and nested table."""
    parts = [section("[tool.agent-runner]", RunnerConfig)]
    for name, info in RunnerConfig.model_fields.items():
        sub = nested_model(info.annotation)
        if name == "limits":
            defaults = ", ".join(f"{k}: {_limits(v)}" for k, v in DEFAULT_LIMITS.items())
            note = f"One table per kind; defaults {defaults}."
            parts.append(section("[tool.agent-runner.limits.<kind>]", Limits, note))
        elif sub is not None and typing.get_origin(info.annotation) is list:
            parts.append(section(f"[[tool.agent-runner.{name}]]", sub, "One table per machine."))
        elif sub is not None:
            parts.append(section(f"[tool.agent-runner.{name}]", sub))
    return "\n".join(parts).rstrip() + "\n"


def _limits(limits: Limits) -> str:
    return " ".join(f"{k}={v:g}" for k, v in limits.model_dump(exclude_none=True).items())


def generated() -> dict[str, str]:
    """Return the text of each generated block by marker name."""
    return {"config-reference": config_reference()}


def current(page: str, name: str) -> str:
    """Return the text between `<!-- name:start -->` and `<!-- name:end -->` in the page."""
    start, end = f"<!-- {name}:start -->\n", f"<!-- {name}:end -->"
    if start not in page or end not in page:
        raise SystemExit(f"{TARGET.name} lacks the markers {start.strip()} ... {end}")
    return page.split(start, 1)[1].split(end, 1)[0]


def rewrite(page: str) -> str:
    """Return the page with every generated block replaced by its fresh text."""
    for name, text in generated().items():
        old = current(page, name)
        page = page.replace(f"<!-- {name}:start -->\n{old}", f"<!-- {name}:start -->\n{text}", 1)
    return page


def main(argv: list[str]) -> int:
    """Print, check or write the generated blocks."""
    if "--write" in argv:
        TARGET.write_text(rewrite(TARGET.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    if "--check" in argv:
        text = TARGET.read_text(encoding="utf-8")
        stale = [name for name, body in generated().items() if current(text, name) != body]
        for name in stale:
            print(f"{TARGET.name}: the {name} block is stale; run python docs/gen_config_table.py --write")
        return 1 if stale else 0
    for name, body in generated().items():
        print(f"<!-- {name}:start -->\n{body}<!-- {name}:end -->\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

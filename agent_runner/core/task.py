"""Task records and task files: Markdown with YAML front matter, or plain YAML."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent_runner.core.errors import TaskFileError, validation_text
from agent_runner.core.refnames import branch_problem
from agent_runner.core.task_io import read_task_bytes

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
RULE_PATTERN = re.compile(r"^[A-Z]{1,8}[0-9]{0,6}$")  # a ruff rule code or prefix: E501, UP, PLR2004, ALL
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
TASK_SUFFIXES = (".md", ".yaml", ".yml")
MAX_TASK_FILE_BYTES = 256 * 1024
# A task as JSON (what the queue stores and requests carry): a file at the limit with every quote or
# newline escaped doubles, so 4x leaves room; only aliases or masses of control characters get past it.
MAX_TASK_JSON_BYTES = 4 * MAX_TASK_FILE_BYTES
BRANCH_PREFIX = "agent/"


class TaskKind(StrEnum):
    FIX_LINT = "fix-lint"
    WRITE_TESTS = "write-tests"
    CHANGE = "change"
    REVIEW = "review"


class TaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNPUBLISHED = "unpublished"
    INVALID = "invalid"


class Limits(BaseModel):
    """Hard limits for one attempt; unset fields take the job kind's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    steps: int | None = Field(default=None, ge=1, description="Model calls at most.")
    cost_usd: float | None = Field(default=None, gt=0, description="Spend at most, in US dollars.")
    minutes: float | None = Field(default=None, gt=0, description="Wall time at most.")
    tokens: int | None = Field(default=None, ge=1, description="Input plus output tokens at most.")
    attempt_minutes: float | None = Field(
        default=None, gt=0, description="Wall time of the whole attempt (checkout to commit, gates too) at "
        "most; unset: twice `minutes` plus 15.",
    )  # fmt: skip
    max_disk_mb: float | None = Field(
        default=None, gt=0, description="Size of the checkout at most, in MB (checked before each gate round "
        "and the commit); unset: no limit but the disk.",
    )  # fmt: skip

    def merged_over(self, defaults: Limits) -> Limits:
        """Return these limits with unset fields taken from `defaults`."""
        mine = self.model_dump(exclude_none=True)
        return defaults.model_copy(update=mine)


class Task(BaseModel):
    """One unit of work, as written in a task file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(description="Unique id, [a-z0-9-]+; defaults to the file stem.")
    kind: TaskKind = Field(description="fix-lint | write-tests | change | review.")
    title: str = Field(default="", description="One line for tables and PR titles.")
    instructions: str = Field(default="", description="What the agent should do (the Markdown body).")
    paths: list[str] = Field(default_factory=list, description="Target files or folders.")
    repo: str | None = Field(default=None, description="Path or git URL; default: the repo holding tasks/.")
    base: str | None = Field(default=None, description="Base branch; default: the repo's default branch.")
    branch: str | None = Field(default=None, description="Branch to work on; must start with agent/.")
    model: str | None = Field(default=None, description="Model spec such as anthropic:claude-sonnet-5-5.")
    limits: Limits = Field(
        default_factory=Limits, description="steps, cost_usd, minutes, tokens, attempt_minutes, max_disk_mb."
    )
    pr: bool | Literal["draft"] = Field(default="draft", description="true | false | draft.")
    labels: list[str] = Field(default_factory=list, description="Extra PR labels.")
    machine: str | None = Field(default=None, description="Machine name or tag to pin the task to.")
    priority: int = Field(default=0, description="Higher runs first.")
    depends_on: list[str] = Field(default_factory=list, description="Ids that must finish first.")
    max_attempts: int = Field(default=3, ge=1, le=20, description="Attempts before the task fails.")
    allow: list[str] = Field(default_factory=list, description="Anti-gaming exceptions, e.g. noqa.")
    allow_partial: bool = Field(default=False, description="fix-lint: accept strictly fewer violations.")
    format: bool = Field(default=False, description="fix-lint: also run ruff format.")
    lint_select: list[str] = Field(
        default_factory=list, max_length=50,
        description="fix-lint: ruff rules beside the repo's config (--extend-select), e.g. from a sweep.",
    )  # fmt: skip
    min_coverage_gain: float = Field(default=5.0, ge=0, description="write-tests: points of coverage.")
    target_coverage: float | None = Field(
        default=None, ge=0, le=100, description="write-tests: or reach this coverage, in percent."
    )
    reflection_rounds: int | None = Field(default=None, ge=0, le=10, description="Gate feedback rounds.")
    sandbox: Literal["auto", "bwrap", "none"] | None = Field(default=None, description="Agent shell sandbox.")
    network: bool | None = Field(default=None, description="Let the agent's shell use the network.")
    target_pr: int | None = Field(default=None, ge=1, description="review: the pull request number.")

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not ID_PATTERN.match(value) or len(value) > 80:
            raise ValueError(f"'{value}' is not a valid id; use a-z, 0-9 and '-', at most 80 characters")
        return value

    @field_validator("depends_on")
    @classmethod
    def _check_deps(cls, value: list[str]) -> list[str]:
        for dep in value:
            cls._check_id(dep)
        return value

    @field_validator("lint_select")
    @classmethod
    def _check_rules(cls, value: list[str]) -> list[str]:
        for rule in value:
            if not RULE_PATTERN.match(rule):
                raise ValueError(f"{rule!r} is not a ruff rule code or prefix (like E501, UP or PLR2004)")
        return value

    @field_validator("paths")
    @classmethod
    def _check_paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if problem := path_problem(path):
                raise ValueError(f"{path!r} {problem}; targets are paths relative to the repo, inside it")
        return value

    @field_validator("branch")
    @classmethod
    def _check_branch(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(BRANCH_PREFIX):
            raise ValueError(f"'{value}' is not allowed; task branches must start with '{BRANCH_PREFIX}'")
        if value is not None and (problem := branch_problem(value)):
            raise ValueError(f"not a branch name git accepts: it {problem}")
        return value

    @property
    def branch_name(self) -> str:
        """The branch the work lands on."""
        return self.branch or f"{BRANCH_PREFIX}{self.id}"

    @property
    def display_title(self) -> str:
        """A title for tables: the title, else the first instruction line, else the id."""
        first = self.instructions.strip().splitlines()[0] if self.instructions.strip() else ""
        return self.title or first[:80] or self.id


@dataclass(frozen=True)
class InvalidTask:
    """A task file that could not be used, with the reason."""

    path: str
    id: str
    reason: str


@dataclass
class TaskSet:
    """The valid tasks of a folder (by id, with their files) and the invalid ones."""

    tasks: dict[str, Task] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    invalid: list[InvalidTask] = field(default_factory=list)


def model_spec_for(task: Task | None, *, override: str | None, default: str) -> str:
    """Return the model spec an attempt runs: the run's override, else the task's, else the default."""
    return override or (task.model if task is not None else None) or default


def path_problem(path: str) -> str | None:
    """Return why a target path may lead out of the repo (absolute, '~', '..', control character), or None."""
    if CONTROL_CHARS.search(path):
        return "contains a control character"
    if path.startswith(("/", "\\")):
        return "is absolute"
    if path.startswith("~"):
        return "starts in a home folder ('~')"
    if ".." in PurePosixPath(path.replace("\\", "/")).parts:
        return "goes up with '..'"
    return None


def is_task_file(path: Path) -> bool:
    """Return whether `path` is named like a task file (known suffix; not hidden, _private or README).

    Only the name counts: a FIFO, folder or broken link with such a name is read, and reported."""
    hidden = path.name.startswith((".", "_")) or path.stem.upper() == "README"
    return path.suffix in TASK_SUFFIXES and not hidden


def split_front_matter(text: str) -> tuple[str, str] | None:
    """Split Markdown into (front matter, body); None when there is no front matter."""
    if not text.startswith("---"):
        return None
    match = re.match(r"^---[ \t]*\r?\n(.*?)(?:^|\r?\n)---[ \t]*(?:\r?\n|$)(.*)\Z", text, re.S | re.M)
    if match is None:
        return None
    return match.group(1), match.group(2)


def _read_text(path: Path) -> str:
    raw, size = read_task_bytes(path, limit=MAX_TASK_FILE_BYTES)
    if len(raw) > MAX_TASK_FILE_BYTES:
        limit = MAX_TASK_FILE_BYTES
        raise TaskFileError(str(path), f"is {size} bytes; task files are limited to {limit} bytes")
    if b"\x00" in raw:
        raise TaskFileError(str(path), "is a binary file; task files are UTF-8 text")
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")  # editors on Windows may add a BOM
    except UnicodeDecodeError as exc:
        raise TaskFileError(str(path), f"is not valid UTF-8 (byte {exc.start})") from exc


def _load_yaml(path: Path, text: str, *, offset: int = 0) -> dict[str, Any]:
    """Parse a YAML mapping that starts `offset` lines into the file (errors name the file's line)."""
    import yaml  # here, not at the top: workers get tasks as JSON, and yaml costs ~10 ms to import

    try:
        data = yaml.load(text, Loader=_plain_loader()) if text.strip() else {}  # a SafeLoader
    except yaml.YAMLError as exc:
        raise TaskFileError(str(path), _yaml_problem(exc, offset)) from exc
    if not isinstance(data, dict):
        raise TaskFileError(str(path), "front matter must be a YAML mapping of field: value")
    return {str(key): value for key, value in data.items()}


def _yaml_problem(exc: Exception, offset: int) -> str:
    """Say what is wrong with the YAML and where, as lines of the file (not of its front matter)."""
    problem, mark = getattr(exc, "problem", None), getattr(exc, "problem_mark", None)
    if problem is None or mark is None:
        return f"invalid YAML: {exc}".replace("\n", " ")
    text = f"invalid YAML at line {mark.line + 1 + offset}, column {mark.column + 1}: {problem}"
    context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and start is not None:
        text += f" ({context} that starts at line {start.line + 1 + offset})"
    elif context:
        text += f" ({context})"
    return text


@functools.cache
def _plain_loader() -> type[Any]:
    """Return yaml's SafeLoader refusing anchors and aliases: 2,000 `*a` of a 200 KB `&a` make 400 MB."""
    import yaml  # ~10 ms, as in _load_yaml: workers never parse YAML

    class PlainLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            if isinstance(event, yaml.NodeEvent) and event.anchor is not None:  # an alias names its anchor
                problem = "anchors and aliases (&name, *name) are not allowed in task files; write values out"
                raise yaml.composer.ComposerError(None, None, problem, cast("yaml.Mark", event.start_mark))
            return super().compose_node(parent, index)

    return PlainLoader


def read_task_fields(path: Path) -> dict[str, Any]:
    """Return the raw fields of a task file, with `instructions` from the Markdown body."""
    text = _read_text(path)
    if path.suffix == ".md":
        parts = split_front_matter(text)
        if parts is None:
            raise TaskFileError(str(path), "has no YAML front matter; start the file with a '---' block")
        data = _load_yaml(path, parts[0], offset=1)  # the opening '---' line
        if "instructions" in data:
            raise TaskFileError(str(path), "put instructions in the Markdown body", field="instructions")
        data["instructions"] = parts[1].strip()
    else:
        data = _load_yaml(path, text)
    data.setdefault("id", path.stem)
    return data


def task_from_fields(data: dict[str, Any], *, source: str = "<task>") -> Task:
    """Validate raw fields into a Task, raising TaskFileError that names the field."""
    try:
        task = Task.model_validate(data)
    except ValidationError as exc:
        errors: list[dict[str, Any]] = [{**err, "loc": _field_loc(err)} for err in exc.errors()]
        first = errors[0]
        same = [err for err in errors if err["loc"] == first["loc"]]  # a union reports one error per member
        if len(same) > 1:
            first = {**first, "msg": " or ".join(validation_text(err) for err in same), "ctx": {}}
        loc = ".".join(str(part) for part in first["loc"]) or None
        raise TaskFileError(source, _describe(first), field=loc) from exc
    return _bounded(task, source)


def _bounded(task: Task, source: str) -> Task:
    """Return `task` unless its JSON is over MAX_TASK_JSON_BYTES (it would be a line of the queue)."""
    size, limit = len(task.model_dump_json().encode()), MAX_TASK_JSON_BYTES
    if size > limit:
        raise TaskFileError(source, f"is {size} bytes as JSON; tasks are limited to {limit} bytes")
    return task


def _field_loc(err: Any) -> tuple[Any, ...]:
    """Drop pydantic's union-member tags ('bool', "literal['draft']") so the location names only fields."""
    loc = err["loc"]
    names = Limits.model_fields if loc[:1] == ("limits",) else Task.model_fields
    last = len(loc) - 1 if err["type"] == "extra_forbidden" else 0  # the unknown name itself
    return tuple(p for i, p in enumerate(loc) if isinstance(p, int) or i in (0, last) or p in names)


def _describe(err: Any) -> str:
    loc = [str(part) for part in err["loc"]]
    model: type[BaseModel] = Limits if loc[:1] == ["limits"] and len(loc) > 1 else Task
    if err["type"] == "extra_forbidden":
        return f"unknown field; allowed fields are: {', '.join(sorted(model.model_fields))}"
    info = model.model_fields.get(loc[-1]) if loc and err["type"] not in ("enum", "literal_error") else None
    allowed = f" ({loc[-1]}: {info.description})" if info is not None and info.description else ""
    if err["type"] == "missing":
        return f"is required{allowed}"
    got = repr(err.get("input"))
    got = got if len(got) <= 60 else got[:57] + "..."
    return f"{validation_text(err)} (got {got}){allowed}"


def load_task_file(path: Path) -> Task:
    """Parse and validate one task file."""
    return task_from_fields(read_task_fields(path), source=str(path))


def load_task_dir(folder: Path, *, known: set[str] | frozenset[str] = frozenset()) -> TaskSet:
    """Load every task file in `folder`; invalid ones are collected, never raised.

    `known` holds ids that exist elsewhere (already in the queue), so depending on them is not an error.
    """
    found = TaskSet()
    paths = sorted(p for p in folder.glob("*") if is_task_file(p)) if folder.is_dir() else []
    for path in paths:
        try:
            task = load_task_file(path)
        except TaskFileError as exc:
            found.invalid.append(InvalidTask(str(path), path.stem, str(exc)))
            continue
        if task.id in found.tasks:
            other = found.files[task.id]
            reason = f"{path}: field 'id': '{task.id}' is already used by {other}; ids must be unique"
            found.invalid.append(InvalidTask(str(path), task.id, reason))
            continue
        found.tasks[task.id] = task
        found.files[task.id] = str(path)
    check_dependencies(found, known=known)
    return found


def check_dependencies(found: TaskSet, *, known: set[str] | frozenset[str] = frozenset()) -> None:
    """Move tasks with a missing dependency or in a cycle to `found.invalid`."""
    _drop_missing(found, known)
    for cycle in _cycles(found.tasks):
        for task_id in cycle:
            if task_id in found.tasks:
                loop = " -> ".join([*cycle, cycle[0]])
                _invalidate(found, task_id, f"dependency cycle {loop}; remove one of these dependencies")
    _drop_missing(found, known)  # tasks that depended on a task in a cycle


def _drop_missing(found: TaskSet, known: set[str] | frozenset[str]) -> None:
    changed = True
    while changed:
        changed = False
        for task_id, task in list(found.tasks.items()):
            missing = [d for d in task.depends_on if d not in found.tasks and d not in known]
            if missing:
                hint = "depends_on must name ids of valid task files in this folder or in the queue"
                _invalidate(found, task_id, f"unknown or invalid task(s) {', '.join(missing)}; {hint}")
                changed = True


def _invalidate(found: TaskSet, task_id: str, message: str) -> None:
    path = found.files.pop(task_id, "<task>")
    del found.tasks[task_id]
    found.invalid.append(InvalidTask(path, task_id, f"{path}: field 'depends_on': {message}"))


def _cycles(tasks: dict[str, Task]) -> list[list[str]]:
    """Return the dependency cycles among `tasks` (iterative, so long chains cannot overflow the stack)."""
    state: dict[str, int] = {}
    cycles: list[list[str]] = []
    for root in tasks:
        if root in state:
            continue
        state[root] = 1
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(tasks[root].depends_on))]
        while stack:
            node, deps = stack[-1]
            dep = next((d for d in deps if d in tasks and state.get(d) != 2), None)
            if dep is None:
                state[node] = 2
                stack.pop()
            elif state.get(dep) == 1:
                path = [n for n, _ in stack]
                cycles.append(path[path.index(dep) :])
            else:
                state[dep] = 1
                stack.append((dep, iter(tasks[dep].depends_on)))
    return cycles


def render_task_file(task: Task) -> str:
    """Write a task back as Markdown with front matter (defaults omitted)."""
    import yaml  # ~10 ms, as in _load_yaml: workers never write task files

    fields = task.model_dump(mode="json", exclude_defaults=True, exclude={"instructions"})
    fields = {"id": task.id, "kind": task.kind.value, **fields}
    front = yaml.safe_dump(fields, sort_keys=False, allow_unicode=True).strip()
    return f"---\n{front}\n---\n{task.instructions.strip()}\n"

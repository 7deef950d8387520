"""The shape of a queue event: which fields each event type has, and of which JSON types.

`event_problem` is checked on every line before the fold (queue_state.py) sees it, so the fold can trust the
types it reads. Exact `type()` checks, not isinstance: they are cheaper in the hot fold and keep `true` from
passing as an integer. Fields not named here are allowed (a newer runner may add some).
"""

from __future__ import annotations

from typing import Any

from agent_runner.core.task import TaskStatus

Types = tuple[type, ...]
STR: Types = (str,)
INT: Types = (int,)
NUM: Types = (int, float)
BOOL: Types = (bool,)
DICT: Types = (dict,)
LIST: Types = (list,)
NONE: Types = (type(None),)
TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", dict: "an object"}
TYPE_NAMES |= {list: "a list", type(None): "null"}

# field -> (allowed types, required); one table per event type
Fields = dict[str, tuple[Types, bool]]
_RESULT: Fields = {"cost_usd": (NUM + NONE, False), "pr_url": (STR + NONE, False)}
_DEF: Fields = {
    "priority": (INT, False),
    "max_attempts": (INT, False),
    "depends_on": (LIST, False),
}
_DEFINED: Fields = {"def": (DICT, True), "file": (STR + NONE, False), "digest": (STR + NONE, False)}
_RESULTED: Fields = {"result": (DICT + NONE, False), "reason": (STR, False)}
_STATE: Fields = {
    "id": (STR, True), "status": (STR, True), "task": (DICT, False), "file": (STR + NONE, False),
    "digest": (STR + NONE, False), "priority": (INT, False), "depends_on": (LIST, False),
    "max_attempts": (INT, False), "attempt": (INT, False), "spent": (INT, False), "infra": (INT, False),
    "worker": (STR + NONE, False), "lease_until": (NUM + NONE, False), "not_before": (NUM, False),
    "reason": (STR, False), "result": (DICT + NONE, False), "pr_url": (STR + NONE, False),
    "cost_usd": (NUM, False), "n_unknown_cost": (INT, False), "claimed_at": (NUM + NONE, False),
    "seq": (INT, False), "train": (STR + NONE, False), "train_commit": (STR + NONE, False),
}  # fmt: skip
EVENT_FIELDS: dict[str, Fields] = {
    "queued": _DEFINED,
    "invalid": {"file": (STR + NONE, False), "reason": (STR, False)},
    "claimed": {"attempt": (INT, True), "worker": (STR + NONE, False), "lease_until": (NUM + NONE, False)},
    "heartbeat": {"attempt": (INT, True), "lease_until": (NUM + NONE, False)},
    "released": {
        "attempt": (INT, False),
        "infra": (BOOL, False),
        "final": (BOOL, False),
        "not_before": (NUM + NONE, False),
        **_RESULTED,
    },
    "finished": {"attempt": (INT, True), **_RESULTED},
    "failed": {"attempt": (INT, True), "final": (BOOL, False), **_RESULTED},
    "cancelled": {"attempt": (INT + NONE, False), "reason": (STR, False)},
    "requeued": {**_DEFINED, "def": (DICT + NONE, False)},
    "published": {"pr_url": (STR + NONE, False)},
    "unpublished": {"reason": (STR, False)},
    "waiting": {"reason": (STR, True)},
    "snapshot": {"state": (DICT, True)},
    # the integration train (coordinator/train.py): a result landed on the integration branch, or taken
    # out of the train and queued again (a new attempt on the integration head, no attempt spent)
    "train_landed": {
        "attempt": (INT, True),
        "train": (STR, True),
        "commit": (STR, True),
        "onto": (STR, False),
        "gates": (LIST, False),
    },
    "train_requeued": {
        "attempt": (INT, True),
        "train": (STR, True),
        "outcome": (STR, True),
        "reason": (STR, False),
        "def": (DICT + NONE, False),
        "file": (STR + NONE, False),
        "digest": (STR + NONE, False),
        "onto": (STR, False),
    },
}
_STATUSES = tuple(status.value for status in TaskStatus)
Spec = tuple[tuple[str, Types, bool], ...]
_MISSING = object()


def _spec(fields: Fields) -> Spec:
    return tuple((name, types, required) for name, (types, required) in fields.items())


# the tables as tuples, `ts` included: the check runs on every line of a cold fold (50,000 in the benchmark)
_SPECS = {kind: (*_spec(fields), ("ts", NUM, False)) for kind, fields in EVENT_FIELDS.items()}
_DEF_SPEC, _RESULT_SPEC, _STATE_SPEC = _spec(_DEF), _spec(_RESULT), _spec(_STATE)
_NESTED = frozenset({"queued", "requeued", "released", "finished", "failed", "snapshot", "train_requeued"})


def event_problem(event: Any) -> str | None:
    """Return what is wrong with a decoded queue line as an event, or None when it fits the schema."""
    if type(event) is not dict:
        return "not a JSON event"
    kind = event.get("type")
    spec = _SPECS.get(kind) if type(kind) is str else None
    if spec is None:
        return f"unknown event type {_shown(kind)}"
    task = event.get("task")
    if type(task) is not str or not task:
        problem: str | None = f"field 'task' must be a task id, not {_shown(task)}"
    else:
        problem = _fields_problem(event, spec, "")
        if problem is None and kind in _NESTED:
            problem = _nested_problem(event, kind)
    return f"{kind} event: {problem}" if problem else None


def _nested_problem(event: dict[str, Any], kind: str) -> str | None:
    definition, result = event.get("def"), event.get("result")
    if type(definition) is dict:
        problem = _fields_problem(definition, _DEF_SPEC, "def.")
        return problem or _ids_problem(definition.get("depends_on", []))
    if type(result) is dict:
        return _fields_problem(result, _RESULT_SPEC, "result.")
    if kind == "snapshot":
        return _fields_problem(event["state"], _STATE_SPEC, "state.") or _status_problem(event["state"])
    return None


def _fields_problem(data: dict[str, Any], spec: Spec, prefix: str) -> str | None:
    for name, types, required in spec:
        value = data.get(name, _MISSING)
        if value is _MISSING:
            if required:
                return f"field '{prefix}{name}' is missing"
        elif type(value) not in types:
            return _wrong(prefix + name, value, types)
    return None


def _ids_problem(ids: list[Any]) -> str | None:
    bad = [value for value in ids if type(value) is not str]
    return f"field 'def.depends_on' must list task ids, not {_shown(bad[0])}" if bad else None


def _status_problem(state: dict[str, Any]) -> str | None:
    if state["status"] in _STATUSES:
        return None
    return f"field 'state.status' must be one of {', '.join(_STATUSES)}, not {_shown(state['status'])}"


def _wrong(name: str, value: Any, types: Types) -> str:
    names = [TYPE_NAMES[t] for t in types if not (t is int and float in types)]  # a float takes ints too
    expected = " or ".join(names)
    return f"field '{name}' must be {expected}, not {_shown(value)}"


def _shown(value: Any) -> str:
    return repr(value)[:40]

"""Bad input: 100 generated malformed task files, each a clear error naming its file; valid ones still run."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from faults_helpers import Project, Scenario, json_events

from agent_runner.core.task import MAX_TASK_FILE_BYTES

BAD_YAML = [
    "kind: [change",
    "kind: change\n  title: indented wrong",
    "kind: change\ntitle: 'unclosed",
    "kind: change\n\tpaths: [a]",
    "kind: {change",
    "kind: change\nkind: : :",
    "? [a, b\n: c",
    "kind: change\ntitle: *undefined_alias",
    "kind: change\nlimits: {steps: 3,,}",
    "kind: !!python/object:os.system echo",
    "kind: change\n- item",
    'kind: "change',
    "kind: change\npaths: [a, [b]",
    "kind: change\ntitle: @reserved",
    "kind: change\ntitle: `backtick`",
    "%YAML 9.9\n---\nkind: change",
]
WRONG_TYPES = [
    "kind: 5",
    "kind: refactor-everything",
    "kind: change\nmax_attempts: many",
    "kind: change\nmax_attempts: 0",
    "kind: change\nmax_attempts: 99",
    "kind: change\nlimits: [1, 2]",
    "kind: change\nlimits: {steps: -1}",
    "kind: change\nlimits: {steps: lots}",
    "kind: change\nlimits: {dollars: 3}",
    "kind: change\npaths: {a: 1}",
    "kind: change\ndepends_on: {x: 1}",
    "kind: change\npriority: high",
    "kind: change\nlabels: {a: 1}",
    "kind: change\nnetwork: maybe",
    "kind: change\nsandbox: docker",
    "kind: change\npr: sometimes",
    "kind: change\nreflection_rounds: 50",
    "kind: change\ntarget_pr: -3",
    "kind: change\nmodel: [a, b]",
    "kind: change\ntitle: {nested: true}",
    "kind: change\nunknown_field: 1",
    "kind: change\nrun_as_root: true",
    "kind: change\nid: Bad ID!",
    "kind: change\nid: ''",
    "kind: change\nid: " + "x" * 120,
    "kind: change\nbranch: main",
    "kind: change\nbranch: refs/heads/agent/x",
    "kind: change\nbranch: release/1.0",
    "kind: change\ntarget_coverage: 250",
    "kind: change\nmin_coverage_gain: -5",
    "kind: change\nallow_partial: perhaps",
    "kind: change\ndepends_on: [no-such-task]",
    "title: no kind at all",
    "kind: change\ninstructions: in the wrong place",
    "kind: change\nrepo: 12",
    "kind: change\nlimits: {cost_usd: free}",
    "kind: change\nformat: 3.5",
    "kind: null",
]
STRUCTURE = [
    ("md", b"no front matter here, just text\n"),
    ("md", b"---\n- a\n- list\n---\nbody\n"),
    ("md", b"---\njust a scalar\n---\nbody\n"),
    ("md", b"---\nkind: change\nno closing fence\n"),
    ("md", b""),
    ("yaml", b"- kind: change\n"),
    ("yaml", b"42\n"),
    ("yml", b"just text\n"),
    ("md", b"---\n---\nfront matter present but empty\n"),
    ("yaml", b""),
    ("md", b"   \n\n"),
]


CLEAR_WORDS = {
    "bad-yaml": "invalid YAML",
    "binary": "binary",
    "utf8": "UTF-8",
    "huge": "bytes",
    "cyc-": "cycle",
    "zz-clash": "already used",
    "wrong-type": "field",
}


def _md(front: str, body: str = "Do it.") -> bytes:
    return f"---\n{front}\n---\n{body}\n".encode()


def _generate(tasks: Path, model: str) -> list[str]:
    """Write exactly 100 malformed task files into `tasks`; return their file names."""
    rng = random.Random(8)
    files: dict[str, bytes] = {}
    for i, front in enumerate(BAD_YAML):
        files[f"bad-yaml-{i:02d}.md"] = _md(front)
    for i, front in enumerate(WRONG_TYPES):
        files[f"wrong-type-{i:02d}.md"] = _md(front)
    for i, (suffix, data) in enumerate(STRUCTURE):
        files[f"structure-{i:02d}.{suffix}"] = data
    big = _md("kind: change", "x" * (MAX_TASK_FILE_BYTES + 10))
    files["huge-00.md"] = big
    files["huge-01.yaml"] = b"kind: change\ntitle: " + b"y" * (MAX_TASK_FILE_BYTES * 2) + b"\n"
    files["huge-02.md"] = _md("kind: change\npaths: [" + ", ".join(["p"] * 90_000) + "]")
    for i in range(6):
        files[f"binary-{i:02d}.md"] = bytes(rng.randrange(256) for _ in range(64 + i * 100)) + b"\0"
    files["binary-06.md"] = b"---\nkind: change\n---\n\x00\x01\x02ELF"
    blobs = [b"\xff\xfe", b"caf\xe9", b"\xc3\x28", b"\xe2\x82", b"\xf0\x28\x8c\xbc", b"\x80"]
    for i, blob in enumerate(blobs):
        files[f"utf8-{i:02d}.md"] = b"---\nkind: change\ntitle: " + blob + b"\n---\nbody\n"
    for i in range(8):  # id clashes: each claims a valid task's id and sorts after it (the valid one wins)
        files[f"zz-clash-{i:02d}.md"] = _md(f"kind: change\nid: valid-{i % 3}\nmodel: {model}")
    cycles = [
        ["cyc-a", "cyc-b"],
        ["cyc-c", "cyc-d", "cyc-e"],
        ["cyc-self"],
        ["cyc-f", "cyc-g", "cyc-h", "cyc-i"],
    ]
    for cycle in cycles:
        for index, task_id in enumerate(cycle):
            files[f"{task_id}.md"] = _md(f"kind: change\ndepends_on: [{cycle[(index + 1) % len(cycle)]}]")
    files["dep-on-cycle.md"] = _md("kind: change\ndepends_on: [cyc-a]")
    assert len(files) == 100, len(files)
    for name, data in files.items():
        (tasks / name).write_bytes(data)
    return sorted(files)


def test_100_malformed_task_files_each_named_and_valid_tasks_still_run(
    project: Project, scenario: Scenario
) -> None:
    """Every malformed file yields one clear error naming it; the three valid tasks beside them finish."""
    for i in range(3):
        project.task(f"valid-{i}", project.edit_script(f"v{i}", f"v{i}.py", f"v = {i}\n"), paths=[f"v{i}.py"])
    bad = _generate(project.tasks, project.edit_script("clash", "clash.py", "c = 1\n"))
    out = project.cli("run", "--json", timeout=120)
    events = json_events(out.stdout)
    messages = [str(e.get("message", "")) for e in events if e.get("event") == "invalid"]
    unnamed = [name for name in bad if not any(name in message for message in messages)]
    assert not unnamed, f"no error names these files: {unnamed}\n{messages[:5]}"
    assert all(len(m) < 2000 for m in messages), "an error message should be short, not the file's content"
    for prefix, word in CLEAR_WORDS.items():
        for message in (m for m in messages if f"/{prefix}" in m):
            assert word in message, f"expected {word!r} in: {message}"
    finished = Counter(e["task"] for e in events if e.get("event") == "finished")
    assert finished == Counter({"valid-0": 1, "valid-1": 1, "valid-2": 1}), out.stdout[-2000:]
    assert out.returncode == 0, out.stderr
    kinds = Counter(name.split("-")[0] for name in bad)
    scenario.outcome = f"{len(bad)} files named in {len(messages)} errors ({dict(kinds)}); 3 valid finished"

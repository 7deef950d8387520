"""Red team: the agent's edit tool runs in the worker process on the host; the objects its .git borrows.

The edit tool is host code the agent drives with paths it chose, after its shell shaped the checkout: a
FIFO, or a sparse file of any size, must not block or exhaust the worker (the attempt's minutes limit does
not interrupt a tool, and the heartbeat thread keeps the lease alive meanwhile). The borrowed objects are
the runner's, hard-linked from the machine's cache that every later attempt clones: the sandboxed agent
must not be able to change them. A test that documents a hole is a strict xfail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "faults"))
from faults_helpers import Project, git, json_events

from agent_runner.testing.scripts import bash_turn, finish_turn
from agent_runner.tools.edit import EditTool
from agent_runner.worker.sandbox import probe_bwrap

BWRAP = shutil.which("bwrap")
needs_bwrap = pytest.mark.skipif(
    BWRAP is None or probe_bwrap(BWRAP) is not None,
    reason="bubblewrap is not installed or not usable here (.ci/run installs it)",
)


def test_edit_create_on_a_fifo_does_not_block_the_worker(tmp_path: Path) -> None:
    """The agent's shell made `pipe.py` a FIFO; `edit create pipe.py` must answer (an error is fine)."""
    os.mkfifo(tmp_path / "pipe.py")
    tool = EditTool(tmp_path)
    answer: list[object] = []

    def create() -> None:
        try:
            answer.append(tool.run({"command": "create", "path": "pipe.py", "file_text": "x = 1\n"}))
        except Exception as exc:  # any answer will do; only blocking is the failure
            answer.append(exc)

    worker = threading.Thread(target=create, daemon=True)
    worker.start()
    worker.join(timeout=3)
    is_blocked = worker.is_alive()
    if is_blocked:  # release it: a reader lets open() return, the small write fits the pipe buffer
        reader = os.open(tmp_path / "pipe.py", os.O_RDONLY | os.O_NONBLOCK)
        worker.join(timeout=5)
        os.close(reader)
    assert not is_blocked, "edit create blocked on a FIFO"


def test_edit_view_of_a_huge_sparse_file_does_not_load_it(tmp_path: Path) -> None:
    """A 4 GB sparse file viewed by a worker limited to 1 GB of address space: a refusal, no MemoryError."""
    with open(tmp_path / "huge.txt", "wb") as fh:
        fh.truncate(4 * 1024**3)
    probe = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1_000_000_000, 1_000_000_000))\n"
        "from pathlib import Path\n"
        "from agent_runner.core.errors import ToolError\n"
        "from agent_runner.tools.edit import EditTool\n"
        "try:\n"
        "    EditTool(Path(sys.argv[1])).run({'command': 'view', 'path': 'huge.txt'})\n"
        "except ToolError as exc:\n"
        "    print('refused:', exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert "MemoryError" not in proc.stderr, proc.stderr[-500:]
    assert proc.returncode == 0 and proc.stdout.startswith("refused:"), proc.stdout + proc.stderr[-500:]


@needs_bwrap
def test_the_borrowed_objects_cannot_be_changed_or_linked_from_the_sandbox(tmp_path: Path) -> None:
    """Held: from its sandbox the agent tries to hard-link, overwrite, chmod and add files in the objects its
    .git borrows (the runner's, hard-linked from the cache), and to point its alternates at the cache; the
    cache stays sound and unchanged, and its work lands as usual."""
    project = Project.create(tmp_path)
    project.configure('sandbox = "bwrap"\ninfra_retries = 0')
    git(project.root, "add", "-A")
    git(project.root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "bwrap")
    attack = (
        'OBJ=$(cat .git/objects/info/alternates); for f in "$OBJ"/pack/*; do ln "$f" "hl-$(basename "$f")"; '
        'printf X | dd of="$f" bs=1 seek=20 conv=notrunc; chmod 666 "$f"; done; touch "$OBJ/new"; '
        'mkdir -p "$OBJ/ab"; echo "$OBJ/../../../../../../.." > .git/objects/info/alternates; '
        "ls hl-* 2>/dev/null; echo 'x = 1' > new.py"
    )
    turns = [bash_turn(attack), finish_turn("done")]
    project.task("evil", project.script("evil", turns), max_attempts=1)
    out = project.cli("run", "--json", timeout=120)
    ended = [e for e in json_events(out.stdout) if e.get("event") in ("finished", "failed")]
    assert ended and ended[-1]["event"] == "finished", out.stdout + out.stderr
    caches = list((Path(os.environ["AGENT_RUNNER_HOME"]) / "repos").glob("*.git"))
    assert len(caches) == 1, caches
    objects = caches[0] / "objects"
    assert not (objects / "new").exists() and not (objects / "ab").exists()
    for pack in (objects / "pack").glob("*.pack"):
        assert pack.stat().st_mode & 0o222 == 0, pack  # still read-only (fsck below checks its content)
    fsck = subprocess.run(
        ["git", "fsck", "--strict", "--full"], cwd=caches[0], capture_output=True, text=True
    )
    assert fsck.returncode == 0, fsck.stderr
    assert git(project.root, "ls-tree", "-r", "--name-only", "agent/evil").splitlines() == [
        "calc.py", "new.py", "pyproject.toml",
    ]  # fmt: skip

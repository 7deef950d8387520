"""The live table of `run`: each running attempt's phase, Ctrl-C acknowledged, a last frame that agrees
with the queue file."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from run_helpers import Project

from agent_runner.cli.run_view import LiveView
from agent_runner.config.runner import load_config
from agent_runner.coordinator.events import RunSummary
from agent_runner.coordinator.scheduler import Scheduler
from agent_runner.executors.local import LocalExecutor
from agent_runner.queue.intake import open_queue
from agent_runner.testing.scripts import bash_turn, finish_turn
from agent_runner.worker.phase import PhaseState, phase_path, read_phase

WAIT_S = 60.0


def _wait_for(what: str, predicate: Callable[[], object], timeout: float = WAIT_S) -> None:
    """Poll `predicate` until it holds (the event the test waits for); fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _await_file(path: Path) -> str:
    """Return a shell command that blocks until `path` exists (the test creates it when it has looked)."""
    return f"while [ ! -f {path} ]; do sleep 0.02; done"


# -- phases -------------------------------------------------------------------------------------------
def _gate_script(folder: Path) -> Path:
    """The test command: it passes on the base; on the agent's tree its first round fails and its second
    waits for `go-gates`."""
    script = folder / "gate.sh"
    script.write_text(
        "[ -f marker.txt ] || exit 0\n"
        f"n=$(cat {folder}/rounds 2>/dev/null || echo 0); n=$((n + 1)); echo $n > {folder}/rounds\n"
        '[ "$n" -ge 2 ] || exit 1\n'
        f"{_await_file(folder / 'go-gates')}\n",
        encoding="utf-8",
    )
    return script


def _shown_status(view: LiveView, name: str) -> str:
    """Return the status cell of row `name` as the live table draws it now."""
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(view.render())
    text = console.file.getvalue()  # type: ignore[attr-defined]
    line = next((line for line in text.splitlines() if f" {name} " in line), "")
    cells = [cell.strip() for cell in line.split("│")]
    return cells[3] if len(cells) > 3 else ""


def test_live_table_shows_the_phase_of_a_running_local_attempt(project: Project) -> None:
    """A local attempt is shown as `setup`, `agent step 1`, then `gates round 2` while each runs (the
    worker's phase file beside its trajectory), and as finished at the end."""
    control = project.root.parent / "control"
    control.mkdir()
    gate = _gate_script(control)
    turns = [
        bash_turn(f"echo x > marker.txt && {_await_file(control / 'go-agent')}"),
        finish_turn("first try"),
        bash_turn("echo y >> marker.txt"),  # a new tree: the gates check it again
        finish_turn("after the reflection"),
    ]
    project.task("ph", project.script("ph", turns), reflection_rounds=1, max_attempts=1)
    config = load_config(
        project.root, overrides={"test": f"sh {gate}", "setup": [_await_file(control / "go-setup")]}
    )
    state = config.path(project.root, "state_dir")
    executor = LocalExecutor(workdir=state, workers=1, cwd=project.root)
    view = LiveView(Console(file=io.StringIO(), force_terminal=True, width=200), state)
    queue = open_queue(project.root, config)
    scheduler = Scheduler(queue, executor, config=config, root=project.root, on_event=view.handle)
    box: dict[str, RunSummary] = {}
    thread = threading.Thread(target=lambda: box.update(summary=scheduler.run()), daemon=True)
    thread.start()
    try:
        for shown, release in (
            ("setup", "go-setup"),
            ("agent step 1", "go-agent"),
            ("gates round 2", "go-gates"),
        ):
            _wait_for(shown, lambda shown=shown: _shown_status(view, "ph#1") == shown)
            (control / release).touch()
        thread.join(timeout=WAIT_S)
    finally:
        for name in ("go-setup", "go-agent", "go-gates"):
            (control / name).touch()
        thread.join(timeout=WAIT_S)
        executor.close()
    assert box["summary"].finished == ["ph"], box["summary"]
    assert _shown_status(view, "ph#1") == "finished"
    phases = read_phase(phase_path(state / "runs" / "ph" / "1"))
    assert phases is not None and phases.current is None and phases.counts["gates"] == 2


def test_a_phase_file_older_than_the_attempt_is_not_shown(tmp_path: Path) -> None:
    """A phase file left by an earlier run (or none, as for a remote worker) shows the attempt as running."""
    from agent_runner.cli.run_progress import AttemptProgress
    from agent_runner.worker.phase import shown

    run_dir = tmp_path / "runs" / "t" / "1"
    run_dir.mkdir(parents=True)
    assert AttemptProgress(run_dir).poll()[0] == "running"  # no file: nothing more is known
    with shown(run_dir, "setup"):
        assert AttemptProgress(run_dir).poll()[0] == "setup"
        assert AttemptProgress(run_dir, started_at=time.time() + 60).poll()[0] == "running"


@pytest.mark.parametrize(
    ("phases", "label"),
    [
        ([], "running"),
        (["checkout"], "checkout"),
        (["agent"], "agent step 3"),
        (["agent", "gates", "-", "gates"], "gates round 2"),
        (["agent", "gates", "-", "-"], "ending"),
        (["agent", "-", "commit", "-"], "landing"),
        (["\x1b[2J owned by the agent"], "running"),  # a name the worker has no phase for is not shown
    ],
)
def test_phase_labels(tmp_path: Path, phases: list[str], label: str) -> None:
    """What the table says for a phase stack (`-` ends the innermost phase): gate rounds are counted, and a
    worker out of its last phase is `landing` when it committed, else `ending`."""
    from contextlib import ExitStack

    from agent_runner.worker.phase import shown

    with ExitStack() as stack:
        scopes = []
        for name in phases:
            if name == "-":
                scopes.pop().close()
            else:
                scope = ExitStack()
                scope.enter_context(shown(tmp_path, name))
                scopes.append(stack.enter_context(scope))
        state = read_phase(phase_path(tmp_path))
        assert (state.label(step=3) if state else "running") == label


# -- Ctrl-C on a terminal -------------------------------------------------------------------------------
class Screen:
    """What a terminal shows of a byte stream: enough for rich's live display (cursor up, erase line)."""

    CONTROL = re.compile(rb"\x1b\[([0-9;?]*)([A-Za-z])|\r|\n|[^\x1b\r\n]+")

    def __init__(self) -> None:
        self.lines: list[str] = [""]
        self.row = self.col = 0

    def feed(self, data: bytes) -> None:
        """Apply `data` (text and control sequences) to the screen."""
        for match in self.CONTROL.finditer(data):
            token = match.group(0)
            if token == b"\r":
                self.col = 0
            elif token == b"\n":
                self.row, self.col = self.row + 1, 0
            elif match.group(2) is not None:
                self._control(match.group(1).decode(), match.group(2).decode())
            else:
                self._write(token.decode("utf-8", "replace"))
            self.lines += [""] * (self.row + 1 - len(self.lines))

    def _control(self, args: str, command: str) -> None:
        if command == "A":
            self.row = max(0, self.row - int(args or 1))
        elif command == "K":
            self.lines[self.row] = ""  # rich erases whole lines (2K) before it draws the table again

    def _write(self, text: str) -> None:
        line = self.lines[self.row].ljust(self.col)
        self.lines[self.row] = line[: self.col] + text + line[self.col + len(text) :]
        self.col += len(text)

    @property
    def text(self) -> str:
        """Return the screen as text, one line per row."""
        return "\n".join(line.rstrip() for line in self.lines)


class Terminal:
    """`run-agents run` on a pseudo-terminal (so it draws its live table), and what its screen shows."""

    def __init__(self, project: Project) -> None:
        master, slave = pty.openpty()
        env = {**os.environ, "COLUMNS": "220", "LINES": "60"}
        argv = [sys.executable, "-m", "agent_runner.cli", "--root", str(project.root), "run"]
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=project.root, env=env)
        os.close(slave)
        self.master, self.screen, self.changed = master, Screen(), threading.Condition()
        self.raw = b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the other end closed: the run ended
                data = b""
            with self.changed:
                self.raw += data
                self.screen.feed(data)
                self.changed.notify_all()
            if not data:
                return

    def wait_for_output(self, text: str) -> None:
        """Wait until the run has written `text` (whether or not the screen still shows it)."""
        with self.changed:
            if not self.changed.wait_for(lambda: text.encode() in self.raw, timeout=WAIT_S):
                raise AssertionError(f"the run never wrote {text!r}:\n{self.screen.text}")

    def close(self) -> str:
        """Wait for the run to end (killing it if it hangs); return the last screen."""
        try:
            self.proc.wait(timeout=WAIT_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.reader.join(timeout=WAIT_S)
            os.close(self.master)
        return self.screen.text


def _row_status(screen: str, name: str) -> str:
    """Return the status cell of row `name` in the last table on `screen`."""
    rows = [line for line in screen.splitlines() if line.startswith(f"│ {name} ")]
    assert rows, f"no row {name} on the screen:\n{screen}"
    return rows[-1].split("│")[3].strip()


def test_ctrl_c_is_acknowledged_at_once_and_the_last_frame_agrees_with_the_queue(project: Project) -> None:
    """Each Ctrl-C prints, above the live table, what happens next (the lines stay on the screen); after
    the second, the cancelled attempt's last row says `queued`, as `list --json` does."""
    never = project.root.parent / "never"
    project.task("slow", project.script("slow", [bash_turn(_await_file(never)), finish_turn()]))
    phases = phase_path(project.root / ".agent-runner" / "runs" / "slow" / "1")
    term = Terminal(project)
    try:
        _wait_for("the agent phase", lambda: (read_phase(phases) or PhaseState()).current == "agent")
        term.proc.send_signal(signal.SIGINT)
        term.wait_for_output("Ctrl-C")  # handled: a second press is a second call of the handler
        term.proc.send_signal(signal.SIGINT)
    finally:
        screen = term.close()
        never.touch()  # frees a command of the agent that outlived its worker, if any did
    assert term.proc.returncode == 130, screen
    flat = " ".join(screen.split())  # the acknowledgements may wrap
    assert "Ctrl-C: stopping; no new attempt starts. The 1 running (slow#1) finish and are recorded." in flat
    assert "Ctrl-C again: cancelling 1 running (slow#1)" in flat
    listed = {task["id"]: task for task in json.loads(project.cli("list", "--json").stdout)}
    assert listed["slow"]["status"] == "queued" and listed["slow"]["attempts"] == 0
    assert _row_status(screen, "slow#1") == listed["slow"]["status"]
    assert "queued again slow: cancelled by Ctrl-C" in flat


def test_without_a_terminal_ctrl_c_is_acknowledged_and_the_queue_state_printed(project: Project) -> None:
    """Piped, `run` prints where a running attempt is when that changes (no silence until its end),
    acknowledges each Ctrl-C on stderr, then prints the released attempt's state in the queue file
    (`queued`) as a line of its own and names it in the summary."""
    never = project.root.parent / "never"
    project.task("slow", project.script("slow", [bash_turn(_await_file(never)), finish_turn()]))
    phases = phase_path(project.root / ".agent-runner" / "runs" / "slow" / "1")
    argv = [sys.executable, "-m", "agent_runner.cli", "--root", str(project.root), "run"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=project.root)
    lines: list[str] = []
    errors: list[str] = []
    readers = [
        threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True),
        threading.Thread(target=lambda: errors.extend(proc.stderr or []), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        _wait_for("the agent phase", lambda: (read_phase(phases) or PhaseState()).current == "agent")
        phase_line = re.compile(r"^\d\d:\d\d:\d\d phase +slow#1: agent step 1$")
        _wait_for("a line saying where the attempt is", lambda: any(phase_line.match(line) for line in lines))
        proc.send_signal(signal.SIGINT)
        _wait_for("the acknowledgement", lambda: any("Ctrl-C" in line for line in errors))
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=WAIT_S)
    finally:
        proc.kill() if proc.poll() is None else None
        never.touch()
        for reader in readers:
            reader.join(timeout=WAIT_S)
    out = "".join(lines)
    assert proc.returncode == 130, out
    assert "The 1 running (slow#1) finish and are recorded" in errors[0]
    assert re.search(r"^\d\d:\d\d:\d\d queued +slow#1: cancelled by Ctrl-C", out, re.M), out
    assert "queued again slow: cancelled by Ctrl-C" in out

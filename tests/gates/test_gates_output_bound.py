"""Red team: a command printing far more than anyone reads (a test suite gone wild, an agent's test) costs the
runner a bounded amount of memory; what it kept is the start and the end, with the cut said."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agent_runner.gates.command import run_command
from agent_runner.tools import capture

FLOOD = (
    "import sys\nsys.stdout.write('START\\n')\nfor _ in range(800):\n    sys.stdout.write('x' * 65536)\n"
    "sys.stdout.write('\\nEND\\n')\nsys.stderr.write('e' * 3_000_000 + 'LAST')\n"
)


def test_a_flood_of_output_keeps_its_head_and_tail_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capture, "MAX_OUTPUT_BYTES", 1024 * 1024)
    result = run_command([sys.executable, "-c", FLOOD], cwd=tmp_path)
    assert result.exit_code == 0 and not result.timed_out
    bound = 1024 * 1024 + capture.CHUNK + 200  # the tail keeps whole chunks: at most one over its half
    assert len(result.stdout) < bound and len(result.stderr) < bound
    assert result.stdout.startswith("START\n") and result.stdout.endswith("\nEND\n")
    assert "bytes of output cut here" in result.stdout and result.stderr.endswith("LAST")


def test_small_output_stdin_and_newlines_are_as_before(tmp_path: Path) -> None:
    """Universal newlines as `text=True` read them; stdin fed whole; a missing program is exit 127."""
    echo = "import sys\ndata = sys.stdin.read()\nprint(len(data), end='\\r\\n')\nsys.exit(3)\n"
    result = run_command([sys.executable, "-c", echo], cwd=tmp_path, stdin_text="y" * 300_000)
    assert (result.exit_code, result.stdout) == (3, "300000\n")
    assert run_command(["no-such-program-here"], cwd=tmp_path).exit_code == 127


def test_bounded_keeps_whole_chunks_of_the_tail() -> None:
    kept = capture.Bounded(limit=100)
    for n in range(1000):
        kept.add(f"{n:04d}".encode())
    text = kept.text()
    assert text.startswith("0000000100020003") and text.endswith("0999")
    assert kept.n_cut + len(kept.head) + kept.n_tail == 4000 and kept.n_tail <= 50 + 4


def test_a_setup_command_flooding_its_output_fails_with_its_tail_in_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Setup output goes through the same bound as the gates': the error keeps the end (the reason), and
    what was read stays under the limit however much the command printed."""
    from agent_runner.core.errors import SetupError
    from agent_runner.repo.workspace import run_setup

    monkeypatch.setattr(capture, "MAX_OUTPUT_BYTES", 1024 * 1024)
    kept: list[int] = []
    text = capture.Bounded.text
    monkeypatch.setattr(capture.Bounded, "text", lambda self: kept.append(len(text(self))) or text(self))
    flood = f"{sys.executable} -c \"import sys; sys.stdout.write('x' * 50_000_000)\"; echo broke >&2; exit 3"
    with pytest.raises(SetupError, match="exited with 3") as caught:
        run_setup([flood], tmp_path, {"PATH": "/usr/bin:/bin"})
    assert str(caught.value).endswith("broke") and max(kept) < 1024 * 1024 + capture.CHUNK + 200

"""Where a running attempt is, read cheaply from the files its worker writes on this machine."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent_runner.worker.phase import phase_path, read_phase
from agent_runner.worker.progress import TrajectoryProgress
from agent_runner.worker.trajectory import TRAJECTORY_FILE

Key = tuple[str, int]  # (task id, attempt number)
CLOCK_SLACK_S = 1.0  # a phase file written this long before the attempt started is an older run's


class AttemptProgress:
    """The phase, step and cost of one running attempt; its phase is `running` where no file says more."""

    def __init__(self, run_dir: Path, *, started_at: float | None = None) -> None:
        self.trajectory = TrajectoryProgress(run_dir / TRAJECTORY_FILE)
        self.phase_file = phase_path(run_dir)
        self.since = (time.time() if started_at is None else started_at) - CLOCK_SLACK_S

    def poll(self) -> tuple[str, int, float]:
        """Return (phase label, model calls so far, cost so far): `agent step 4`, `gates round 2`, ..."""
        steps, cost = self.trajectory.poll()
        state = read_phase(self.phase_file, since=self.since)
        label = "running" if state is None else state.label(step=self.trajectory.step)
        return label, steps, cost


class PhaseWatch:
    """Polls the phase of each running local attempt on a thread and reports each change (plain output).

    Without a terminal there is no table to redraw, so a long attempt would print nothing between its start
    and its end; this prints where it is whenever that changes (`agent step 3`, `gates round 2`, ...).
    """

    def __init__(self, state_dir: Path, report: Callable[[Key, str], None], period_s: float = 1.0) -> None:
        self.state_dir, self.report, self.period_s = state_dir, report, period_s
        self._watched: dict[Key, tuple[AttemptProgress, str]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="phase-watch", daemon=True)

    def add(self, key: Key) -> None:
        progress = AttemptProgress(self.state_dir / "runs" / key[0] / str(key[1]))
        with self._lock:
            self._watched[key] = (progress, "running")

    def remove(self, key: Key) -> None:
        with self._lock:
            self._watched.pop(key, None)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            self.poll()

    def poll(self) -> None:
        """Report each watched attempt whose phase changed since the last look."""
        with self._lock:
            watched = list(self._watched.items())
        for key, (progress, last) in watched:
            label = progress.poll()[0]
            if label != last:
                with self._lock:
                    if key in self._watched:
                        self._watched[key] = (progress, label)
                self.report(key, label)

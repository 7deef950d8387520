"""Where one attempt keeps its files in the state folder: run folder, checkout, HOME, trajectory, bundle."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AttemptPaths:
    """Where one attempt keeps its files on the worker machine."""

    run_dir: Path
    checkout: Path
    home: Path
    trajectory: Path
    bundle: Path

    @classmethod
    def under(cls, workdir: Path, task_id: str, attempt: int) -> AttemptPaths:
        """Return the paths of attempt `attempt` of `task_id` under the state folder `workdir`."""
        run_dir = workdir / "runs" / task_id / str(attempt)
        return cls(
            run_dir=run_dir,
            checkout=workdir / "checkouts" / f"{task_id}-{attempt}",
            home=run_dir / "home",
            trajectory=run_dir / "trajectory.jsonl",
            bundle=run_dir / "result.bundle",
        )

"""Sweep benchmark: `sweep lint` on a generated repo beside the floor, one plain `ruff check` of the tree.

    python bench/sweep_bench.py [--modules 300]

A sweep runs ruff three times (before, --fix, after) in a fresh scratch checkout, then writes and queues
the task files; a second sweep finds them unchanged. Each figure is printed with its ratio to one plain
`ruff check` measured in the same run. The machine's load average is printed too: on a shared machine,
wall times move with it. (Measured on a real project, click 7.1.2: docs/sweeps.md.)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent_runner.config.runner import load_config
from agent_runner.gates.ruff import ruff_argv
from agent_runner.queue.intake import open_queue
from agent_runner.sweeps.lint import LintOptions, sweep_lint
from agent_runner.sweeps.write import SweepReport, write_plan

FIXABLE = "import os\nimport sys\n\n\ndef f{n}():\n    return {n}\n"  # ruff --fix clears it
NEEDS_MODEL = "import os\n\n\ndef g{n}():\n    return missing_{n}\n"  # one fixable, one for a model
BIG = "def big{n}():\n" + "".join(f"    print(missing_{i})\n" for i in range(45)) + "    return 0\n"


def make_repo(root: Path, n_modules: int) -> None:
    """Write `n_modules` modules in folders of 10 (a third fixable, most needing a model, every 25th big)."""
    (root / "pyproject.toml").write_text('[tool.ruff.lint]\nselect = ["F"]\n', encoding="utf-8")
    for n in range(n_modules):
        text = BIG if n % 25 == 0 else FIXABLE if n % 3 == 0 else NEEDS_MODEL
        path = root / f"pkg{n // 10}" / f"mod{n}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.format(n=n), encoding="utf-8")
    author = ["-c", "user.name=b", "-c", "user.email=b@b"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], [*author, "commit", "-qm", "init"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def timed_sweep(root: Path, *, dry_run: bool) -> SweepReport:
    config = load_config(root)
    started = time.perf_counter()
    plan = sweep_lint(root, config, LintOptions())
    return write_plan(root, config, open_queue(root, config), plan, dry_run=dry_run, started=started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        os.environ["AGENT_RUNNER_HOME"] = str(Path(tmp) / "home")
        root = Path(tmp) / "repo"
        root.mkdir()
        make_repo(root, args.modules)
        started = time.perf_counter()
        subprocess.run([*ruff_argv(), "check", "--no-cache", "--output-format", "json", "."], cwd=root,
                       capture_output=True, check=False)  # fmt: skip
        floor = time.perf_counter() - started
        runs = [("dry run", timed_sweep(root, dry_run=True)), ("write", timed_sweep(root, dry_run=False))]
        runs.append(("second sweep", timed_sweep(root, dry_run=False)))
    print(f"{args.modules} modules; load average {os.getloadavg()[0]:.2f}; python {sys.version.split()[0]}")
    print(f"{'one ruff check (floor)':24} {floor:6.2f} s")
    for name, report in runs:
        counts = ", ".join(f"{n} {o}" for o, n in report.counts().items())
        print(
            f"{'sweep lint ' + name:24} {report.seconds:6.2f} s  x{report.seconds / floor:4.1f}  "
            f"{len(report.plan.tasks)} tasks ({counts}); {report.n_parallel} parallel, "
            f"{report.n_model_free} without a model"
        )


if __name__ == "__main__":
    main()

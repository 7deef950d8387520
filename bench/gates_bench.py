"""Gate overhead on a medium project (50 modules, 250 tests) against one plain `pytest` + `ruff check` run.

Run: /work/venv/bin/python bench/gates_bench.py
Prints the time of the naive check, of the gates' baseline + after-run per job kind (ratio; target <= 2.5x),
and of the mutation check (target < 60 s, by running only the new tests against each mutant). The warm
write-tests figure reuses a cached baseline (gates.baseline_cache), as a bulk run on one base would.
"""

from __future__ import annotations

import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent_runner.config.runner import RunnerConfig, gate_settings
from agent_runner.core.gate_settings import GatesConfig
from agent_runner.core.protocols import GateContext
from agent_runner.core.task import Task
from agent_runner.gates.command import gate_env
from agent_runner.gates.kinds import get_job_kind
from agent_runner.gates.outcomes import IdSource, outcome_args
from agent_runner.gates.ruff import ruff_argv

N_MODULES = 50
N_TESTS_PER_MODULE = 5

MODULE = '''"""Module {i}."""
import os


def scale_{i}(x, factor=2):
    """Return x times factor."""
    return x * factor


def clip_{i}(x, low=0, high=100):
    """Return x limited to [low, high]."""
    if x < low:
        return low
    if x > high:
        return high
    return x


def label_{i}(x):
    """Return a label for x."""
    if x == 0:
        return "zero"
    return "positive" if x > 0 else "negative"
'''

TESTS = """from pkg.mod_{i:02d} import clip_{i}, label_{i}, scale_{i}


def test_scale():
    assert scale_{i}(3) == 6


def test_clip_low():
    assert clip_{i}(-5) == 0


def test_clip_high():
    assert clip_{i}(500) == 100


def test_label_zero():
    assert label_{i}(0) == "zero"


def test_label_sign():
    assert label_{i}(-1) == "negative"
"""

UNTESTED = '''"""Not tested yet."""


def tier(points):
    """Return the tier name for a number of points."""
    if points >= 1000:
        return "gold"
    if points >= 100:
        return "silver"
    return "bronze"


def bonus(points, rate=0.1):
    """Return the bonus for points."""
    if points <= 0:
        return 0
    return round(points * rate, 2)
'''

NEW_TESTS = """from pkg.untested import bonus, tier


def test_tier():
    assert tier(5) == "bronze"
    assert tier(100) == "silver"
    assert tier(1000) == "gold"


def test_bonus():
    assert bonus(0) == 0
    assert bonus(50) == 5.0
"""


def git(repo: Path, *args: str) -> str:
    """Run git quietly with a fixed identity."""
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    return subprocess.run(["git", *ident, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def make_project(root: Path) -> Path:
    """Write the medium fixture and commit it."""
    (root / "pkg").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pkg/__init__.py").write_text("")
    (root / "pkg/untested.py").write_text(UNTESTED)
    for i in range(N_MODULES):
        (root / f"pkg/mod_{i:02d}.py").write_text(MODULE.format(i=i))
        (root / f"tests/test_mod_{i:02d}.py").write_text(TESTS.format(i=i))
    (root / "pyproject.toml").write_text('[tool.ruff.lint]\nselect = ["E", "F", "I"]\n')
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    return root


def timed(action) -> float:
    """Return the seconds `action()` takes."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def naive(repo: Path, test_command: str) -> float:
    """One plain test run and one plain ruff run, as a person would check the work."""
    run = lambda argv: subprocess.run(argv, cwd=repo, capture_output=True, check=False)  # noqa: E731
    return timed(lambda: run(test_command.split())) + timed(lambda: run([*ruff_argv(), "check", "."]))


def gate_pass(
    repo: Path, kind: str, paths: list[str], edit, test_command: str, config: RunnerConfig | None = None
) -> tuple[float, float, dict]:
    """Time baseline + after-run of a kind's gates (mutants apart); return (gates s, mutants s, results)."""
    task = Task(id="bench", kind=kind, paths=paths)
    settings = gate_settings(config or RunnerConfig())
    ctx = GateContext(repo, task, git(repo, "rev-parse", "HEAD").strip(), test_command, settings)
    job = get_job_kind(kind)
    gates = job.gates(ctx)
    start = time.perf_counter()
    baselines = {g.name: g.baseline(ctx) for g in gates}
    baseline_s = time.perf_counter() - start
    edit(repo)
    results, mutants_s, check_s = {}, 0.0, 0.0
    for gate in gates:
        took = timed(lambda gate=gate: results.__setitem__(gate.name, gate.check(ctx, baselines[gate.name])))
        if gate.name == "mutants":
            mutants_s = took
        else:
            check_s += took
    git(repo, "reset", "-q", "--hard")
    git(repo, "clean", "-qfd")  # keeps ignored caches (__pycache__), as a person re-running tests would
    return baseline_s + check_s, mutants_s, results


def fix_lint_edit(repo: Path) -> None:
    """The 'agent' of the fix-lint pass: remove the unused import of one module."""
    path = repo / "pkg/mod_07.py"
    path.write_text(path.read_text().replace("import os\n", ""))


def write_tests_edit(repo: Path) -> None:
    """The 'agent' of the write-tests pass: add real tests for the untested module."""
    (repo / "tests/test_untested.py").write_text(NEW_TESTS)


def one_round(repo: Path, cmd: str) -> dict[str, float]:
    """Measure the naive checks and both gate passes back to back (so machine load hits them alike)."""
    plain = naive(repo, cmd)
    lint_s, _, _ = gate_pass(repo, "fix-lint", ["pkg/mod_07.py"], fix_lint_edit, cmd)
    tests_s, mutants_s, results = gate_pass(repo, "write-tests", ["pkg/untested.py"], write_tests_edit, cmd)
    killed = results["mutants"].after
    return {
        "plain": plain,
        "lint": lint_s,
        "tests": tests_s,
        "mutants": mutants_s,
        "killed": killed.get("killed", 0),
        "n_mutants": killed.get("mutants", 0),
        "lint_ratio": lint_s / plain,
        "tests_ratio": tests_s / plain,
    }


def warm_rounds(repo: Path, cmd: str, cache: Path, repeats: int) -> list[float]:
    """Time write-tests gate passes with the baseline cache on, after one pass that fills it."""
    config = RunnerConfig(gates=GatesConfig(baseline_cache=True, baseline_cache_dir=str(cache)))
    args = (repo, "write-tests", ["pkg/untested.py"], write_tests_edit, cmd, config)
    gate_pass(*args)
    return [gate_pass(*args)[0] for _ in range(repeats)]


def id_sources(repo: Path, cmd: str, repeats: int) -> dict[str, float]:
    """Return the CPU seconds of one suite run three ways (interleaved): plain, --junitxml, our plugin.

    CPU time of the child (user + system), not wall time: the difference is tens of milliseconds, which
    other work on a shared machine would drown.
    """
    times: dict[str, list[float]] = {"plain": [], "junit": [], "plugin": []}
    with tempfile.TemporaryDirectory(prefix="ids-") as tmp:
        scratch = Path(tmp)
        runs = {"plain": ([], {}), "junit": outcome_args(scratch, IdSource.JUNIT)}
        runs["plugin"] = outcome_args(scratch, IdSource.PLUGIN)
        for _ in range(repeats):
            for name, (extra, env) in runs.items():
                argv, full_env = [*cmd.split(), *extra], gate_env(env)
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                subprocess.run(argv, cwd=repo, env=full_env, capture_output=True, check=True)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                times[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return {name: statistics.median(t) for name, t in times.items()}


def show(label: str, seconds: float, note: str = "") -> None:
    """Print one figure."""
    print(f"{label:<44} {seconds:6.2f} s  {note}")


def main(repeats: int = 5) -> None:
    """Build the fixture, measure `repeats` interleaved rounds, print medians and ratios."""
    tmp = Path(tempfile.mkdtemp(prefix="gates-bench-"))
    try:
        repo = make_project(tmp / "repo")
        cmd = f"{sys.executable} -m pytest -q -p no:cacheprovider"
        naive(repo, cmd)  # warm the file cache once
        rounds = [one_round(repo, cmd) for _ in range(repeats)]
        med = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        warm = statistics.median(warm_rounds(repo, cmd, tmp / "cache", 3))
        ids = id_sources(repo, cmd, 3 * repeats)
        print(f"fixture: {N_MODULES} modules, {N_MODULES * N_TESTS_PER_MODULE} tests; median of {repeats}")
        show("naive check: one pytest + one ruff check", med["plain"])
        show("fix-lint gates: baseline + after-run", med["lint"], f"ratio {med['lint_ratio']:4.2f}x")
        show(
            "write-tests gates (coverage), no mutants",
            med["tests"],
            f"ratio {med['tests_ratio']:4.2f}x (cold)",
        )
        show(
            "  same, baseline cache warm (baseline_cache)", warm, f"ratio {warm / med['plain']:4.2f}x (warm)"
        )
        killed = f"killed {med['killed']:g} of {med['n_mutants']:g} mutants (target < 60 s)"
        show("mutation check, only the new tests", med["mutants"], killed)
        print(f"one suite run, CPU time, median of {3 * repeats}, by where the test ids come from:")
        show("  plain pytest (no ids)", ids["plain"])
        show("  --junitxml (the fallback)", ids["junit"], f"+{ids['junit'] - ids['plain']:.3f} s")
        show(
            "  our outcome plugin (what the gates use)",
            ids["plugin"],
            f"+{ids['plugin'] - ids['plain']:.3f} s",
        )
        print(
            "target: ratio <= 2.5x (a baseline and an after-run of the suite, plus outcome/coverage parsing);"
        )
        print("judged on the cold figure: every pass measures its own baseline (the cache is off by default)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

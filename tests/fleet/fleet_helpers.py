"""Helpers for the fleet tests: a coordinator repo configured for the SSH executor over namespace machines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from agent_runner.testing.netns import NetnsFleet, NetnsMachine
from agent_runner.testing.scripts import ScriptedTasks, bash_turn, finish_turn

RUN_AGENTS = str(Path(sys.executable).parent / "run-agents")


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` and return its output."""
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def machine_toml(name: str, **extra: Any) -> str:
    """Return a [[tool.agent-runner.machines]] entry with fast loss detection."""
    fields = {"name": name, "ssh": name, "workers": 1, "command": RUN_AGENTS, "connect_timeout_s": 2,
              "alive_interval_s": 1, "alive_count": 2, **extra}  # fmt: skip
    body = "".join(f"{k} = {_toml_value(v)}\n" for k, v in fields.items())
    return f"\n[[tool.agent-runner.machines]]\n{body}"


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):  # an inline table: { "KEY" = "value" }
        return "{ " + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


class FleetProject(ScriptedTasks):
    """A coordinator repo (origin: a bare repo) configured for the SSH executor over a namespace fleet."""

    def __init__(self, root: Path, fleet: NetnsFleet) -> None:
        self.root = root
        self.fleet = fleet
        self.tasks = root / "tasks"
        self.scripts = root.parent / "scripts"

    def configure(self, machines: dict[str, dict[str, Any]], **settings: Any) -> None:
        """Write pyproject.toml with the runner settings and the machines, and commit it."""
        base = {"sandbox": "none", "test": "true", "lease_seconds": 30, "heartbeat_seconds": 0.5,
                "backoff_seconds": 0, "executor": "ssh", **settings}  # fmt: skip
        text = "[tool.agent-runner]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in base.items())
        text += f'\n[tool.agent-runner.ssh]\nconfig_file = "{self.fleet.ssh_config}"\nrecheck_s = 1\n'
        text += "".join(machine_toml(name, **extra) for name, extra in machines.items())
        (self.root / "pyproject.toml").write_text(text, encoding="utf-8")
        git(self.root, "add", "-A")
        git(self.root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "config")
        git(self.root, "push", "-q", "origin", "main")

    def edit_script(self, name: str, filename: str, content: str, *, delay_s: float = 0.0) -> str:
        """Return a model spec whose agent writes `content` to `filename` (after `delay_s`), then finishes."""
        command = f"printf '%s' {json.dumps(content)} > {filename}; echo host=$(hostname -I)"
        turns = [bash_turn(command, delay_s=delay_s, text="edit"), finish_turn(f"wrote {filename}")]
        return self.script(name, turns)

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run `run-agents --root <repo> args...` as a real subprocess."""
        argv = [sys.executable, "-m", "agent_runner.cli", "--root", str(self.root), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=self.root)


def start_ray_in_namespaces(fleet: NetnsFleet, temp: Path, *, port: int = 6379) -> str:
    """Start a Ray head in the fleet's `head` machine and a worker node (1 CPU, a resource named like the
    machine) in each other one, with state under `temp` (short: Ray's socket paths must fit in 107 bytes);
    return the head's address. Every Ray process dies with the fleet's namespaces."""
    ray = str(Path(sys.executable).parent / "ray")
    head = fleet.machines["head"]
    address = f"{head.address}:{port}"
    common = ["--include-dashboard", "false"]
    starts = [(head, [ray, "start", "--head", "--node-ip-address", head.address, "--port", str(port),
                      "--num-cpus", "0", *common])]  # fmt: skip
    for name, machine in fleet.machines.items():
        if name != "head":
            resources = json.dumps({name: 1})
            starts.append((machine, [ray, "start", "--address", address, "--node-ip-address", machine.address,
                                     "--num-cpus", "1", "--resources", resources]))  # fmt: skip
    starts = [(m, [*argv, "--temp-dir", str(temp / m.name)]) for m, argv in starts]
    _ray_start(*starts[0])  # the nodes join the head: it must be up first
    procs = [_ray_start(machine, argv, wait=False) for machine, argv in starts[1:]]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"ray start failed in a namespace: {err[-2000:]}")
    return address


def _ray_start(machine: NetnsMachine, argv: list[str], *, wait: bool = True) -> subprocess.Popen[str]:
    env = {**os.environ, "HOME": str(machine.home)}
    argv = ["ip", "netns", "exec", machine.netns, *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    if wait:
        _, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"ray start in {machine.name} failed: {err[-2000:]}")
    return proc

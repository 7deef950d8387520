"""The system ssh client as a transport: one shared connection per machine and the remote shell scripts.

The system `ssh` is used (not a Python SSH library) so that everything the user's own ssh does just works:
~/.ssh/config aliases and Match blocks, ProxyJump, the agent, certificates, hardware keys. BatchMode makes
sure no password or host-key question is ever asked; a shared ControlMaster connection makes each task's
dispatch a few milliseconds instead of a new handshake.

Remote side: each attempt's shell writes `<workdir>/attempts/<task>.<attempt>.pid` (the shell is the session
and process-group leader sshd made, so the pid is the group; a worker forked by the machine's fork server
leads a group of its own, appended as a second line) and keeps the worker's stdout in `.out`, so a
coordinator can kill an old attempt's process groups and collect a result that arrived late.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tempfile
from pathlib import Path

from agent_runner.config.machines import MachineConfig, SshConfig
from agent_runner.core.errors import ExecutorError
from agent_runner.executors.pipe import MAX_OUTPUT_BYTES, MAX_STDERR_BYTES, communicate_bounded

SSH_LOST = 255  # ssh's own exit code: connection failed or dropped
WORKDIR_FAILED = 97
_EACH = '"$f"'


def remote_path(path: str) -> str:
    """Return `path` as shell text for the remote side, expanding a leading ~ there."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


class SshClient:
    """Runs commands on one machine through the system ssh client and a shared connection."""

    def __init__(self, machine: MachineConfig, *, settings: SshConfig, control_dir: Path) -> None:
        self.machine = machine
        self.settings = settings
        self.control_path = control_dir / f"{machine.name}.sock"

    def base_argv(self) -> list[str]:
        """Return the ssh options every call uses (no target)."""
        m = self.machine
        argv = ["ssh", "-T", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={m.connect_timeout_s}"]
        argv += ["-o", f"ServerAliveInterval={m.alive_interval_s}"]
        argv += ["-o", f"ServerAliveCountMax={m.alive_count}"]
        argv += ["-o", f"ControlPath={self.control_path}"]
        if self.settings.config_file:
            argv += ["-F", str(Path(self.settings.config_file).expanduser())]
        for option in self.settings.options:
            argv += ["-o", option]
        return argv

    def command_argv(self, script: str) -> list[str]:
        """Return the argv that runs the POSIX shell `script` on the machine."""
        remote = f"sh -c {shlex.quote(script)}"
        return [*self.base_argv(), "-o", "ControlMaster=no", self.machine.ssh, "--", remote]

    def start_master(self) -> str | None:
        """Open the shared connection (idempotent); return ssh's error text, or None when it is up."""
        if self.control_path.exists():  # a stale socket only makes ssh fall back to a direct connection
            return None
        self.control_path.unlink(missing_ok=True)
        persist = f"ControlPersist={self.settings.control_persist_s or 'yes'}"
        argv = [*self.base_argv(), "-o", "ControlMaster=yes", "-o", persist, "-N", "-f", self.machine.ssh]
        # -f forks a background master that keeps its stderr: a file, not a pipe, or reading it would hang.
        with tempfile.TemporaryFile() as err:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
            err.seek(0)
            text = err.read(MAX_STDERR_BYTES).decode("utf-8", "replace").strip()
        return None if done.returncode == 0 else (text or f"ssh exited with {done.returncode}")

    def stop_master(self) -> None:
        """Close the shared connection."""
        if self.control_path.exists():
            argv = [*self.base_argv(), "-O", "exit", self.machine.ssh]
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)

    def run(
        self, script: str, *, timeout_s: float, stdin: bytes = b"", limit: int = MAX_OUTPUT_BYTES
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a short script and return its completed process (ssh failures, too much output: exit 255)."""
        proc = self.popen(script)
        try:
            out, err = communicate_bounded(proc, stdin, timeout_s=timeout_s, limit=limit)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(
                [], SSH_LOST, b"", f"no answer within {timeout_s:.0f} s".encode()
            )
        except ExecutorError as exc:
            return subprocess.CompletedProcess([], SSH_LOST, b"", str(exc).encode())
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def popen(self, script: str) -> subprocess.Popen[bytes]:
        """Start a long script with pipes for stdin, stdout and stderr."""
        return subprocess.Popen(
            self.command_argv(script), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )


def _prelude(workdir: str) -> str:
    return f'w={remote_path(workdir)}; mkdir -p "$w/attempts" && cd "$w" || exit {WORKDIR_FAILED}\n'


def _kill_group(pidfile: str) -> str:
    """Shell text that kills the process groups listed in `pidfile` (TERM, then KILL) and removes it."""
    each = f"for p in $(cat {pidfile})"
    return (
        f'if [ -f {pidfile} ]; then live=""; {each}; do kill -0 "-$p" 2>/dev/null && live="$live $p"; done\n'
        'if [ -n "$live" ]; then for p in $live; do kill -TERM "-$p" 2>/dev/null; done; sleep 1\n'
        'for p in $live; do kill -KILL "-$p" 2>/dev/null; done; fi\n'
        f"rm -f {pidfile}; fi\n"
    )


def attempt_script(
    machine: MachineConfig,
    task_id: str,
    attempt: int,
    *,
    fork_python: str = "",
    idle_s: int = 600,
    model_module: str | None = None,
) -> str:
    """The script that kills older attempts of the task there, then runs the worker on stdin's request.

    With `fork_python`, the worker is forked by the machine's fork server (fork/gate.py hands
    it this shell's stdio and appends the worker's process group to the pidfile); the plain command is
    its fallback. The server imports `model_module` before it forks, once for all attempts.
    """
    me = f"attempts/{task_id}.{attempt}"
    env = " ".join(shlex.quote(f"{k}={v}") for k, v in machine.env.items())
    worker = f'{machine.command} exec - --inline-bundle --workdir "$w"'
    if fork_python:
        python = " ".join(map(shlex.quote, fork_python.split()))  # "/usr/bin/env python3" from a #! line
        gate = f'{python} -m agent_runner.executors.fork.gate --pidfile {me}.pid --workdir "$w"'
        if model_module:
            gate += f" --model-module {shlex.quote(model_module)}"
        worker = f"{gate} --inline-bundle --idle {idle_s} -- {worker}"
    worker = f"{'env ' + env + ' ' if env else ''}{worker}"
    return (
        _prelude(machine.workdir)
        + "find attempts -name '*.out' -mmin +1440 -exec rm -f {} + 2>/dev/null\n"
        + f"for f in attempts/{task_id}.*.pid; do\n{_kill_group(_EACH)}done\n"
        + f"echo $$ > {me}.pid\n{worker} > {me}.out; rc=$?\nrm -f {me}.pid\ncat {me}.out\nexit $rc\n"
    )


def kill_script(machine: MachineConfig, task_id: str, attempt: int | None = None) -> str:
    """The script that kills one attempt of a task there (or every attempt when `attempt` is None)."""
    pattern = f"attempts/{task_id}.{'*' if attempt is None else attempt}.pid"
    return _prelude(machine.workdir) + f"for f in {pattern}; do\n{_kill_group(_EACH)}done\n"


def pause_script(machine: MachineConfig, task_id: str, attempt: int, reason: str) -> str:
    """The script that writes an attempt's pause file there (worker/pause.py), whole: temp file, rename."""
    run_dir = f"runs/{shlex.quote(task_id)}/{attempt}"
    text = shlex.quote(reason.splitlines()[0] if reason else "paused")
    # the temp file is removed, then made anew (noclobber: O_EXCL): a link planted there is never followed
    tmp = f"{run_dir}/.pause.tmp"
    write = f"mkdir -p {run_dir} && rm -f {tmp} && (set -C; printf '%s\\n' {text} > {tmp})"
    return _prelude(machine.workdir) + f"{write} && mv -f {tmp} {run_dir}/pause\n"


def harvest_script(machine: MachineConfig, task_id: str, attempt: int) -> str:
    """The script that kills a lost attempt if it still runs, else prints (and removes) its late result."""
    me = f"attempts/{task_id}.{attempt}"
    collect = f"if [ -f {me}.out ]; then cat {me}.out && rm -f {me}.out; fi\n"
    return _prelude(machine.workdir) + _kill_group(f"{me}.pid") + collect


# The interpreter of a pip-installed script: its #! line, or the line pip writes for long paths,
# "'''exec' /path/to/python", after a #!/bin/sh line.
_FIND_PYTHON = (
    "s=$(command -v {command}); py=$(sed -n '1s/^#!//p' \"$s\")\n"
    'case "$py" in *python*) ;; *) py=$(sed -n "2s/^'
    + "'''"
    + "exec' '*\\([^' ]*\\).*/\\1/p\" \"$s\");; esac\n"
    '[ -n "$py" ] || {{ py=python3; guessed=1; }}\n'
)


def check_script(machine: MachineConfig) -> str:
    """The script that reports git, python and agent-runner versions and the attempts running there."""
    command = shlex.quote(shlex.split(machine.command)[0])
    find = f"py={shlex.quote(machine.python)}\n" if machine.python else _FIND_PYTHON.format(command=command)
    version = "import importlib.metadata as m; print(m.version('agent-runner'))"
    return (
        _prelude(machine.workdir)
        + 'echo "git=$(git --version 2>&1 | head -n1)"\n'
        + find
        + 'echo "python=$($py --version 2>&1 | head -n1)"\n'
        + f'echo "runner=$($py -c {shlex.quote(version)} 2>&1 | tail -n1)"\n'
        + 'echo "running=$(ls attempts/*.pid 2>/dev/null | wc -l)"\n'
        + f'command -v {command} >/dev/null 2>&1 && echo "command=ok" || echo "command=missing"\n'
        + (_FORK_PROBE if machine.fork_server else "")
    )


# Whether run-agents' own interpreter (not a guessed python3) has the fork client: it must say "yes".
_FORK_PROBE = (
    'echo "py=$py"\n'
    '[ -n "$guessed" ] || echo "fork=$($py -c \'import agent_runner.executors.fork.gate; print("yes")\''
    ' 2>/dev/null)"\n'
)


def version_or_unknown(text: str) -> str:
    """Return the version the check printed, or say that agent-runner could not be imported there."""
    text = text.strip()
    return (
        text if re.fullmatch(r"\d+(\.\d+)*[\w.+-]*", text) else "unknown (agent-runner not importable there)"
    )


def stderr_tail(stderr: bytes, n_chars: int = 400) -> str:
    """Return the end of ssh's stderr on one line."""
    text = stderr.decode("utf-8", "replace").strip()
    return text[-n_chars:].replace("\n", " | ") or "(no message)"


def describe_failure(done: object, config: MachineConfig) -> str:
    """Return why a machine's check failed, with the next step when ssh itself failed."""
    rc = getattr(done, "returncode", None)
    stderr = getattr(done, "stderr", b"") or b""
    if rc == WORKDIR_FAILED:
        return f"cannot create the workdir {config.workdir} there"
    hint = (
        "" if rc != SSH_LOST else f" (try `ssh {config.ssh} true` by hand: it must work without a password)"
    )
    return f"check failed with exit {rc}: {stderr_tail(stderr)}{hint}"

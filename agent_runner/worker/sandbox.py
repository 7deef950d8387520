"""Sandboxes for what the agent runs (its shell, the gates' tests): bubblewrap or none.

Under bubblewrap the agent sees only what it needs: its checkout, its private HOME and /tmp (read-write),
the toolchain (read-only). The host's home, the runner's state folder (other checkouts and runs, the
runner's git dirs), the machine's caches and the source repo (its queue file) are hidden by empty tmpfs
mounts; the rest of / is read-only; no network unless asked.

`get_sandbox("auto", ...)` probes bubblewrap once per process (a `bwrap ... true` run) and falls back to no
sandbox with one warning when it does not work here; `"bwrap"` raises SandboxError instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from agent_runner.core.errors import SandboxError
from agent_runner.core.protocols import Sandbox

log = logging.getLogger(__name__)

MODES = ("auto", "bwrap", "none")
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap) "
    'or set sandbox = "none" in [tool.agent-runner] to run the agent\'s shell unconfined'
)
# Credential stores in the home folder, masked where a folder shown again (the checkout, a tool) holds them.
HIDDEN_HOME_PATHS = (
    ".ssh",
    ".aws",
    ".gnupg",
    ".docker",
    ".config/gh",
    ".netrc",
    ".git-credentials",
    ".pypirc",
)
# Where toolchains live when they are set: shown read-only even inside a hidden folder (the host's home).
TOOLCHAIN_VARS = ("VIRTUAL_ENV", "CONDA_PREFIX", "PYENV_ROOT", "JAVA_HOME", "GOROOT", "RUSTUP_HOME")
# Where the host's unix sockets live (the session bus, docker.sock, ssh-agent, databases): a read-only bind
# does not stop connect(): each gets an empty read-only tmpfs (unless it holds the checkout or a tool).
RUNTIME_DIRS = ("/run", "/var/run", "/var/tmp")
# Files the sandbox still needs from a runtime folder (name resolution when the network is allowed).
RUNTIME_FILES = ("/etc/resolv.conf",)
_warned: set[str] = set()  # fall-back warnings already given in this process (once each, by design)


@dataclass
class NoSandbox:
    """Runs commands as they are (the checkout is the working directory, nothing more)."""

    name: str = "none"

    def wrap(self, argv: list[str]) -> list[str]:
        """Return `argv` unchanged."""
        return list(argv)


@dataclass(frozen=True)
class SandboxPaths:
    """An attempt's folders beside its checkout: its private HOME, and what the agent must not see."""

    private_home: Path | None = None  # the attempt's HOME, shown read-write
    state_dir: Path | None = None  # hidden: other checkouts, runs, the pool, the runner's git dirs
    source_repo: Path | None = None  # hidden: the queue file and every file outside the checkout
    runner_home: Path | None = None  # hidden: the machine's bare caches of every source repo
    borrowed_objects: Path | None = None  # the object store the agent's .git borrows from, read-only

    def private(self) -> list[Path]:
        """Return the folders hidden from the agent, besides /tmp and the host's home."""
        return [p for p in (self.state_dir, self.source_repo, self.runner_home) if p is not None]


@dataclass
class BwrapSandbox:
    """Runs commands under bubblewrap, showing only the checkout, a private HOME and /tmp, and the tools."""

    bwrap: str
    checkout: Path
    network: bool = False
    paths: SandboxPaths = field(default_factory=SandboxPaths)
    host_homes: tuple[Path, ...] = ()
    name: str = "bwrap"

    def wrap(self, argv: list[str]) -> list[str]:
        """Return the bwrap command line that runs `argv` inside the sandbox."""
        return [self.bwrap, *self.options, "--", *argv]

    @functools.cached_property
    def options(self) -> list[str]:
        """The bwrap options, worked out once: hide, then show parts again (later mounts cover earlier)."""
        opts = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        opts += [opt for path in self.hidden() for opt in ("--tmpfs", str(path))]
        opts += [opt for path in self.toolchain() for opt in ("--ro-bind", str(path), str(path))]
        opts += [opt for path in self._runtime_files() for opt in ("--ro-bind", str(path), str(path))]
        opts += self._writable() + self._mask_home()
        runtime = [path for path in self.hidden() if path in self.runtime_dirs()]  # empty, and read-only
        opts += [opt for path in runtime for opt in ("--remount-ro", str(path))]
        opts += ["--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session", *self._env()]
        return opts if self.network else [*opts, "--unshare-net"]

    def hidden(self) -> list[Path]:
        """Return the folders covered by an empty tmpfs: /tmp, the host's home, the attempt's private ones,
        and the folders of the host's unix sockets."""
        return _outermost([Path("/tmp"), *self.host_homes, *self.paths.private(), *self.runtime_dirs()])

    def runtime_dirs(self) -> list[Path]:
        """Return the folders of host sockets to hide: /run, /var/tmp, $XDG_RUNTIME_DIR, $SSH_AUTH_SOCK's."""
        raw = [*RUNTIME_DIRS, os.environ.get("XDG_RUNTIME_DIR", "")]
        if agent_sock := os.environ.get("SSH_AUTH_SOCK", ""):
            raw.append(str(Path(agent_sock).parent))
        paths = [Path(item).resolve() for item in raw if item and Path(item).is_absolute()]
        shown = [self.checkout, *_tool_dirs()]
        return [
            path
            for path in paths
            if path.is_dir() and path != Path("/") and not any(p.is_relative_to(path) for p in shown)
        ]

    def _runtime_files(self) -> list[Path]:
        """Return the needed files (resolv.conf's target) that a hidden runtime folder would cover."""
        runtime = self.runtime_dirs()
        targets = [Path(name).resolve() for name in RUNTIME_FILES]
        return [path for path in targets if path.is_file() and _is_under(path, runtime)]

    def toolchain(self) -> list[Path]:
        """Return the tool folders inside hidden ones, shown again read-only (none holding a private one)."""
        hidden = self.hidden()
        return _outermost([path for path in _tool_dirs() if _is_under(path, hidden) and self._may_show(path)])

    def _may_show(self, path: Path) -> bool:
        # No tool lives in the state folder or the caches; a folder holding a private one would show it.
        off_limits = [p for p in (self.paths.state_dir, self.paths.runner_home) if p is not None]
        private = [*self.host_homes, *self.paths.private(), self.checkout]
        return not _is_under(path, off_limits) and not any(p.is_relative_to(path) for p in private)

    def _writable(self) -> list[str]:
        checkout, objects, home = str(self.checkout), self.paths.borrowed_objects, self._home()
        opts = ["--bind", checkout, checkout]  # its .git is its own: the runner never runs git there
        if objects is not None and objects.is_dir():  # read by the agent's .git (alternates), never written
            opts += ["--ro-bind", str(objects), str(objects)]
        return opts + (["--bind", str(home), str(home)] if home else [])

    def _env(self) -> list[str]:
        env = {"TMPDIR": "/tmp", "XDG_CACHE_HOME": "/tmp/.cache"}  # writable places
        env |= {"HOME": str(home)} if (home := self._home()) else {}
        return [opt for key, value in env.items() for opt in ("--setenv", key, value)]

    def _home(self) -> Path | None:
        home = self.paths.private_home
        return home if home is not None and home.is_dir() else None

    def _mask_home(self) -> list[str]:
        # The home is hidden; these masks matter where a folder shown again holds part of it.
        shown = [self.checkout, *self.toolchain()]
        opts: list[str] = []
        for path in (home / rel for home in self.host_homes for rel in HIDDEN_HOME_PATHS):
            if not _is_under(path, shown):
                continue
            if path.is_dir() and not self.checkout.is_relative_to(path):
                opts += ["--tmpfs", str(path)]
            elif path.is_file():
                opts += ["--ro-bind", "/dev/null", str(path)]
        return opts


def get_sandbox(mode: str, *, checkout: Path, network: bool, paths: SandboxPaths | None = None) -> Sandbox:
    """Return the sandbox for `mode` ("auto" | "bwrap" | "none") around `checkout` and the other `paths`."""
    if mode not in MODES:
        raise SandboxError(f"unknown sandbox mode '{mode}'; use one of: {', '.join(MODES)}")
    if mode == "none":
        return NoSandbox()
    bwrap = shutil.which("bwrap")
    problem = probe_bwrap(bwrap) if bwrap else "bwrap was not found on PATH"
    if problem is None and bwrap is not None:
        real, homes = _resolved(paths or SandboxPaths()), host_homes()
        return BwrapSandbox(bwrap, Path(checkout).resolve(), network=network, paths=real, host_homes=homes)
    if mode == "bwrap":
        raise SandboxError(f'sandbox = "bwrap" but bubblewrap cannot be used: {problem}; {INSTALL_HINT}')
    _warn_once(problem)
    return NoSandbox()


def host_homes() -> tuple[Path, ...]:
    """Return the user's home folders: $HOME and the password database's, when they differ."""
    homes = {os.environ.get("HOME", "")}
    with contextlib.suppress(KeyError):  # a uid without a passwd entry, as in some containers
        homes.add(pwd.getpwuid(os.getuid()).pw_dir)
    real = {Path(home).resolve() for home in homes if home and Path(home).is_absolute()}
    return tuple(sorted(home for home in real if home != Path("/") and home.is_dir()))


def _resolved(paths: SandboxPaths) -> SandboxPaths:
    """Return `paths` with symbolic links resolved (mounts land on real paths)."""
    values = {f.name: getattr(paths, f.name) for f in dataclasses.fields(paths)}
    return SandboxPaths(**{name: value.resolve() if value else None for name, value in values.items()})


def _tool_dirs() -> list[Path]:
    """Return where the toolchain lives: the interpreter, the toolchain variables' folders and PATH."""
    raw = [sys.prefix, sys.base_prefix, str(Path(sys.executable).parent)]
    raw += [os.environ.get(name, "") for name in TOOLCHAIN_VARS]
    raw += os.environ.get("PATH", "").split(os.pathsep)
    paths = [Path(item) for item in raw if item]
    return [path.resolve() for path in paths if path.is_absolute() and path.is_dir()]


def _outermost(paths: list[Path]) -> list[Path]:
    """Return the existing folders of `paths`, parents first, leaving out those inside another one (and /)."""
    kept: list[Path] = []
    for path in sorted({p.resolve() for p in paths if p.is_dir() and p.resolve() != Path("/")}):
        if not _is_under(path, kept):
            kept.append(path)
    return kept


def _is_under(path: Path, folders: list[Path]) -> bool:
    return any(path.is_relative_to(folder) for folder in folders)


@functools.cache
def probe_bwrap(bwrap: str) -> str | None:
    """Run `bwrap ... true` once per binary; return None when it works, else what went wrong."""
    argv = BwrapSandbox(bwrap, Path("/tmp")).wrap(["true"])
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=20, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"running {bwrap} failed: {exc}"
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        return f"{bwrap} exited with {proc.returncode}: {detail[-1] if detail else 'no output'}"
    return None


def _warn_once(problem: str | None) -> None:
    key = problem or "unknown"
    if key in _warned:
        return
    _warned.add(key)
    log.warning(
        "sandbox: bubblewrap is not usable (%s); the agent's shell runs WITHOUT a sandbox (it can write "
        "outside the checkout and use the network). To fix: %s",
        key,
        INSTALL_HINT,
    )

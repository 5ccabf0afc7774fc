"""The test's own RabbitMQ cluster and PostgreSQL replica, driven through the scripts operators use."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import ROOT, free_port

CLUSTER_SCRIPT = ROOT / "scripts" / "rabbitmq-cluster.sh"
REPLICA_SCRIPT = ROOT / "scripts" / "pg-replica.sh"
NODES = (1, 2, 3)


def _run(script: Path, args: list[str], env: dict[str, str], timeout: float) -> str:
    done = subprocess.run([str(script), *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{script.name} {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _ports_free(ports: list[int]) -> bool:
    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


@dataclass(frozen=True)
class QueueState:
    name: str
    leader: str
    members: tuple[str, ...]
    online: tuple[str, ...]


class RabbitCluster:
    """Three nodes on this host under names and ports of their own (so parallel runs do not meet)."""

    def __init__(self, directory: Path) -> None:
        self.name = f"pv{uuid.uuid4().hex[:6]}"
        self._env = {"PV_CLUSTER_DIR": str(directory), "PV_CLUSTER_NAME": self.name, "PV_CLUSTER_PORT_BASE": str(self._free_port_base())}

    @staticmethod
    def available() -> str | None:
        """Why the tests cannot run a cluster here, or None."""
        if not (Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists() or shutil.which("rabbitmq-server")):
            return "rabbitmq-server is not installed on this host"
        return None

    @staticmethod
    def _free_port_base() -> int:
        for base in range(100, 1000, 10):
            if _ports_free([offset + base + node for offset in (5680, 15680, 25680) for node in NODES]):
                return base
        raise AssertionError("no free port range for a RabbitMQ cluster")

    def run(self, *args: str, timeout: float = 240) -> str:
        return _run(CLUSTER_SCRIPT, list(args), self._env, timeout)

    def up(self) -> None:
        self.run("up")
        self.urls = self.run("urls").strip()

    def down(self) -> None:
        self.run("down")

    def amqp_url(self, number: int) -> str:
        return self.urls.split(",")[number - 1]

    def node(self, number: int) -> str:
        return f"{self.name}{number}@localhost"

    def number_of(self, node: str) -> int:
        return int(node.split("@")[0][len(self.name):])

    def queues(self, prefix: str, via: int) -> list[QueueState]:
        output = self.run("ctl", str(via), "-q", "list_queues", "name", "leader", "members", "online", "--no-table-headers")
        found = []
        for line in output.splitlines():
            parts = line.split("\t")
            if len(parts) == 4 and parts[0].startswith(prefix):
                found.append(QueueState(parts[0], parts[1], _node_list(parts[2]), _node_list(parts[3])))
        return found

    def running_nodes(self, via: int) -> set[str]:
        output = self.run("ctl", str(via), "-q", "eval", "rabbit_nodes:all_running().")
        return set(_node_list(output.strip()))


def _node_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip(" '\"") for part in text.strip().strip("[]").split(",") if part.strip(" '\""))


class PgReplica:
    """A streaming replica of the local PostgreSQL on a port of its own."""

    def __init__(self) -> None:
        self.name = f"pvreplica{uuid.uuid4().hex[:6]}"
        self.port = free_port()
        self._env = {"PV_REPLICA_NAME": self.name, "PV_REPLICA_PORT": str(self.port)}

    @staticmethod
    def available() -> str | None:
        if not shutil.which("pg_createcluster") or not shutil.which("pg_basebackup"):
            return "pg_createcluster / pg_basebackup are not installed (Debian's postgresql-common)"
        if os.geteuid() != 0:
            return "making a replica with pg_createcluster needs root"
        return None

    def run(self, *args: str, timeout: float = 240) -> str:
        return _run(REPLICA_SCRIPT, list(args), self._env, timeout)


def unavailable_seconds(failure_times: list[float], since: float, until: float) -> tuple[float, int]:
    """(seconds from `since` to the last failed attempt before `until`, failed attempts in between)."""
    failed = [moment for moment in failure_times if since <= moment < until]
    return (round(max(failed) - since, 2) if failed else 0.0), len(failed)


class OutageFigures:
    """A fault test's exactness figures, and how long clients saw failures."""

    def __init__(self, figures, **extra: object) -> None:  # figures: tests.exactness.Figures
        self.text = figures.line() + "".join(f" {key}={value}" for key, value in extra.items())

    def line(self) -> str:
        return self.text

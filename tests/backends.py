"""Which PostgreSQL and RabbitMQ the tests use, and how a fault test stops and starts them.

Chosen once per session, in this order:
1. DATABASE_URL / AMQP_URL from the environment (servers someone else runs: no fault control);
2. testcontainers, when a Docker engine answers;
3. the local services on 127.0.0.1 (PostgreSQL 5432 trust auth, RabbitMQ 5672 guest/guest).
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from tests.helpers import wait_for

LOCAL_DATABASE = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"


class ServiceControl:
    """Stops and starts the real services for fault tests (no-ops are not allowed: see `available`)."""

    available = False

    def stop_broker(self) -> None:
        raise NotImplementedError

    def start_broker(self) -> None:
        raise NotImplementedError

    def restart_database(self) -> None:
        raise NotImplementedError

    def start_database_if_stopped(self) -> None:
        raise NotImplementedError

    def consumers(self) -> list[tuple[str, bool]]:
        """(queue, active) for every consumer on the broker, as rabbitmqctl list_consumers reports."""
        output = self._rabbitmqctl(["list_consumers", "--quiet", "--no-table-headers", "queue_name", "active"])
        rows = [line.split("\t") for line in output.splitlines() if line.strip()]
        return [(queue, active.strip() == "true") for queue, active in rows]

    def _rabbitmqctl(self, args: list[str]) -> str:
        raise NotImplementedError


@dataclass
class Backend:
    kind: str
    database_server_url: str  # any database on the server; tests create their own
    amqp_url: str
    control: ServiceControl
    close: Callable[[], None] = lambda: None


def wait_for_port(host: str, port: int, timeout: float = 60.0) -> None:
    def listening() -> bool:
        with socket.create_connection((host, port), timeout=1):
            return True

    wait_for(listening, timeout=timeout, interval=0.2, what=f"something listening on {host}:{port}")


class LocalControl(ServiceControl):
    available = True

    def _rabbitmqctl(self, args: list[str]) -> str:
        return subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, text=True, timeout=60).stdout

    def stop_broker(self) -> None:
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=120)

    def start_broker(self) -> None:
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=120)
        subprocess.run(["rabbitmqctl", "await_startup"], check=True, capture_output=True, timeout=120)
        wait_for_port("127.0.0.1", 5672)

    def restart_database(self) -> None:
        version = sorted(os.path.basename(path) for path in glob.glob("/etc/postgresql/*"))[-1]
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        wait_for_port("127.0.0.1", 5432)

    def start_database_if_stopped(self) -> None:
        if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"], timeout=30).returncode == 0:
            return
        version = sorted(os.path.basename(path) for path in glob.glob("/etc/postgresql/*"))[-1]
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], capture_output=True, timeout=120)
        wait_for_port("127.0.0.1", 5432)


class DockerControl(ServiceControl):
    available = True

    def __init__(self, postgres, rabbitmq, pg_port: int, amqp_port: int) -> None:  # testcontainers objects
        self._postgres, self._rabbitmq = postgres, rabbitmq
        self._pg_port, self._amqp_port = pg_port, amqp_port

    def _rabbitmqctl(self, args: list[str]) -> str:
        result = self._rabbitmq.exec(["rabbitmqctl", *args])
        return result.output.decode()

    def stop_broker(self) -> None:
        self._rabbitmq.exec(["rabbitmqctl", "stop_app"])

    def start_broker(self) -> None:
        self._rabbitmq.exec(["rabbitmqctl", "start_app"])
        self._rabbitmq.exec(["rabbitmqctl", "await_startup"])
        wait_for_port("127.0.0.1", self._amqp_port)

    def restart_database(self) -> None:
        # Host ports were fixed when the container started, so they survive the restart.
        self._postgres.get_wrapped_container().restart(timeout=10)
        wait_for_port("127.0.0.1", self._pg_port)

    def start_database_if_stopped(self) -> None:
        container = self._postgres.get_wrapped_container()
        container.reload()
        if container.status != "running":
            container.start()
        wait_for_port("127.0.0.1", self._pg_port)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _docker_answers() -> bool:
    if not shutil.which("docker") and not os.environ.get("DOCKER_HOST"):
        return False
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


POSTGRES_IMAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docker", "postgres")


def _start_containers() -> Backend:
    from testcontainers.core.image import DockerImage
    from testcontainers.postgres import PostgresContainer
    from testcontainers.rabbitmq import RabbitMqContainer

    pg_port, amqp_port = _free_port(), _free_port()
    # The same PostgreSQL image as docker compose: postgres 16 with the hll extension.
    image = DockerImage(path=POSTGRES_IMAGE_DIR, tag="pageviews-postgres:16-hll", clean_up=False)
    image.build()
    postgres = PostgresContainer(str(image), username="postgres", password="postgres", dbname="postgres")
    postgres.with_bind_ports(5432, pg_port)
    rabbitmq = RabbitMqContainer("rabbitmq:3.13-management-alpine")
    rabbitmq.with_bind_ports(5672, amqp_port)
    postgres.start()
    rabbitmq.start()

    def close() -> None:
        rabbitmq.stop()
        postgres.stop()

    return Backend(
        "docker",
        f"postgresql://postgres:postgres@127.0.0.1:{pg_port}/postgres",
        f"amqp://guest:guest@127.0.0.1:{amqp_port}/%2F",
        DockerControl(postgres, rabbitmq, pg_port, amqp_port),
        close,
    )


def choose_backend(environ: dict[str, str]) -> Backend:
    database_url, amqp_url = environ.get("DATABASE_URL"), environ.get("AMQP_URL")
    if database_url or amqp_url:
        return Backend("environment", database_url or LOCAL_DATABASE, amqp_url or LOCAL_AMQP, ServiceControl())
    if _docker_answers():
        return _start_containers()
    for url, default_port in ((LOCAL_DATABASE, 5432), (LOCAL_AMQP, 5672)):
        wait_for_port(urlsplit(url).hostname or "127.0.0.1", urlsplit(url).port or default_port, timeout=30)
    return Backend("local", LOCAL_DATABASE, LOCAL_AMQP, LocalControl())

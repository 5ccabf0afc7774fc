"""Test helpers: waiting on conditions, running the real API and workers as processes, reading counts."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, TypeVar

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.engine import Engine

from common.broker import BrokerAdmin, Topology
from common.config import Settings

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / ".pytest_cache" / "process-logs"
T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 15.0, interval: float = 0.05, what: str = "condition") -> T:
    """Poll until condition() is truthy and return it; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = condition()
        except Exception as exc:  # a condition may fail while a service is still coming up
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")
        time.sleep(interval)


def installed_tool(name: str, package: str) -> str:
    """The path of a command the tests need, or a skip naming its Debian package (scripts/install-system-packages.sh installs it)."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install {package}; .ci/run does it through scripts/install-system-packages.sh)")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """A child process running one of our entry points with exactly the given settings."""

    def __init__(self, name: str, module: str, settings: Settings) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = LOGS / f"{name}-{os.getpid()}-{time.monotonic_ns()}.log"
        env = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
        env.update(settings.as_env())
        env["PYTHONPATH"] = str(ROOT)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - open for the child's whole life
        self.popen = subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group: no flush, no acknowledgement, no goodbye."""
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for a clean exit; returns the exit code."""
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not stop within {timeout}s after SIGTERM; log: {self.output()[-2000:]}") from None

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.alive():
            self.kill()
        self._log.close()


class ApiProcess(Process):
    """The API, started and waited for until ready_path answers 200 (/health if its database is meant to be away)."""

    def __init__(self, settings: Settings, ready_path: str = "/ready") -> None:
        super().__init__("api", "api", settings)
        self.base_url = f"http://127.0.0.1:{settings.port}"
        self.session = requests.Session()
        self._ready_path = ready_path
        wait_for(self._ready, timeout=30, what=f"the API on port {settings.port}")

    def _ready(self) -> bool:
        if not self.alive():
            raise AssertionError(f"API exited early: {self.output()[-3000:]}")
        try:
            return self.session.get(self.base_url + self._ready_path, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def post(self, path: str, body: Any = None, *, data: bytes | str | None = None, headers: dict | None = None, timeout: float = 10) -> requests.Response:
        if data is None:
            return self.session.post(self.base_url + path, json=body, headers=headers, timeout=timeout)
        return self.session.post(self.base_url + path, data=data, headers=headers, timeout=timeout)

    def get(self, path: str, params: Any = None, timeout: float = 10) -> requests.Response:
        return self.session.get(self.base_url + path, params=params, timeout=timeout)


def total_views(engine: Engine, page: str | None = None) -> int:
    with engine.connect() as connection:
        if page is None:
            return int(connection.execute(text("SELECT coalesce(sum(views), 0) FROM page_views")).scalar())
        return int(connection.execute(text("SELECT coalesce(sum(views), 0) FROM page_views WHERE page = :p"), {"p": page}).scalar())


def total_visitors(engine: Engine, page: str, hour: datetime | None = None) -> int:
    """Distinct visitors of a page (in one hour, or over all its hours) from the union of its rows' sketches."""
    where = "page = :p" + ("" if hour is None else " AND view_hour = :h")
    with engine.connect() as connection:
        statement = f"SELECT coalesce(round(hll_cardinality(hll_union_agg(visitors)))::bigint, 0) FROM page_views WHERE {where}"
        return int(connection.execute(text(statement), {"p": page, "h": hour}).scalar())


def views_by_page_hour(engine: Engine) -> dict[tuple[str, datetime], int]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT page, view_hour, sum(views) FROM page_views GROUP BY page, view_hour"))
        return {(page, hour): int(views) for page, hour, views in rows}


def queue_depths(settings: Settings) -> dict[str, int]:
    topology = Topology.from_settings(settings)
    with BrokerAdmin(settings.amqp_url) as admin:
        names = [topology.partition_queue(p) for p in range(settings.num_partitions)] + [topology.dead_queue]
        return {name: admin.message_count(name) if admin.queue_exists(name) else 0 for name in names}


def hour_ago(hours: int, now: datetime | None = None) -> str:
    """ISO timestamp of the start of the UTC hour `hours` before now's hour."""
    now = now or datetime.now(timezone.utc)
    moment = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

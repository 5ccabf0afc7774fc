"""One benchmark run: its settings, database, queue prefixes, child processes and clean-up."""
from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from bench import ROOT, processes
from bench.processes import Child
from common import db
from common.broker import BrokerAdmin, Topology
from common.config import SETTINGS, Settings, environment
from common.logging import fields
from common.partitioning import partition_for
from tests.exactness import SENTINEL_PREFIX
from tests.helpers import free_port, hour_ago, wait_for

log = logging.getLogger("bench")

DATABASE = "pageviews_bench"


BENCH_OWNED = ("DATABASE_URL", "AMQP_URL", "QUEUE_PREFIX", "PORT")


@dataclass(frozen=True)
class Durations:
    """How long each scenario loads the system, in seconds (or how much it loads)."""

    single_s: int = 30
    multi_s: int = 60
    drain_messages: int = 1_000_000
    freshness_s: int = 20
    report_rows: int = 10_000_000
    report_s: int = 30
    broker_s: int = 10

    @classmethod
    def quick(cls) -> "Durations":
        return cls(single_s=8, multi_s=10, drain_messages=100_000, freshness_s=5, report_rows=1_000_000, report_s=8, broker_s=4)


def machine() -> dict[str, Any]:
    memory_kb = 0
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    model = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cores": os.cpu_count(), "memory_mb": memory_kb // 1024, "cpu_model": model}


def git_commit() -> str:
    """The short commit, with -dirty if tracked files differ from it (as `git describe --dirty`)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if changed.strip() else "")


def code_fingerprint() -> str:
    """A short hash of the code under test as it is on disk now (api, worker, common, migrations).

    Each scenario starts fresh processes, which load the code as it is then: if someone
    edits it during a run, the scenarios of that run measured different code.
    """
    digest = hashlib.sha1()
    for folder in ("api", "worker", "common", "migrations"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Run:
    quick: bool
    database_server_url: str
    amqp_url: str
    database: str = DATABASE  # dropped and recreated: two runs at once on one server need different names
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    durations: Durations = field(init=False)
    base: Settings = field(init=False)
    engine: Engine = field(init=False)
    log_dir: Path = field(init=False)
    used_settings: dict[str, Settings] = field(default_factory=dict, init=False)
    _drains: int = field(default=0, init=False)
    _prefixes_used: list[str] = field(default_factory=list, init=False)
    _children: list[Child] = field(default_factory=list, init=False)
    _topologies: list[Settings] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.durations = Durations.quick() if self.quick else Durations()
        database_url = make_url(self.database_server_url).set(database=self.database).render_as_string(hide_password=False)
        # The defaults of common.config are the production settings; a setting exported in
        # the environment (say API_PROCESSES=4 make bench) replaces its default, except where
        # to connect and the queue names, which are the bench's own. results.jsonl records them.
        chosen = {s.name: value for s in SETTINGS if (value := environment().get(s.name)) is not None and s.name not in BENCH_OWNED}
        self.base = Settings.from_mapping({**chosen, "DATABASE_URL": database_url, "AMQP_URL": self.amqp_url, "QUEUE_PREFIX": f"bench.{self.run_id}"})
        self.log_dir = Path(tempfile.mkdtemp(prefix=f"pageviews-bench-{self.run_id}-"))

    # -- the database

    def create_database(self) -> None:
        """Drop and recreate pageviews_bench, migrated to the newest revision."""
        db.drop_database(self.base.database_url)
        db.ensure_database(self.base.database_url)
        db.migrate(self.base.database_url)
        # No statement timeout: the report scenario's fill runs for minutes.
        self.engine = db.make_engine(self.base.database_url, application_name="pageviews-bench", pool_size=4, statement_timeout_ms=0)

    def reset_tables(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(text("TRUNCATE page_views, applied_messages"))

    def total_views(self, include_sentinels: bool = False) -> int:
        query = "SELECT coalesce(sum(views), 0) FROM page_views"
        if not include_sentinels:
            query += f" WHERE page NOT LIKE '{SENTINEL_PREFIX}%'"
        with self.engine.connect() as connection:
            return int(connection.execute(text(query)).scalar())

    def applied_messages(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM applied_messages")).scalar())

    # -- settings and queues of one scenario

    def settings_for(self, scenario: str, **changes: Any) -> Settings:
        """The base settings with a queue prefix and port of the scenario's own, so it starts from empty queues."""
        # A retried scenario gets new queues too: the failed attempt may have left messages behind.
        attempt = sum(1 for used in self._prefixes_used if used == scenario) + 1
        self._prefixes_used.append(scenario)
        prefix = f"bench.{self.run_id}.{scenario}" + (f".{attempt}" if attempt > 1 else "")
        settings = self.base.replace(queue_prefix=prefix, port=free_port(), **changes)
        self._topologies.append(settings)
        self.used_settings[scenario] = settings
        return settings

    def declare(self, settings: Settings) -> Topology:
        topology = _topology(settings)
        with BrokerAdmin(settings.amqp_url) as admin:
            admin.declare(topology)
        return topology

    def queue_depth(self, settings: Settings, admin: BrokerAdmin) -> int:
        """Messages ready in the partition queues (delivered-but-unacknowledged ones not included)."""
        topology = _topology(settings)
        return sum(admin.message_count(topology.partition_queue(p)) for p in range(settings.num_partitions))

    def dead_lettered(self, settings: Settings) -> int:
        topology = _topology(settings)
        with BrokerAdmin(settings.amqp_url) as admin:
            return admin.message_count(topology.dead_queue) if admin.queue_exists(topology.dead_queue) else 0

    def delete_topology(self, settings: Settings) -> None:
        topology = _topology(settings)
        try:
            with BrokerAdmin(settings.amqp_url) as admin:
                admin.delete_topology(topology)
        except Exception as exc:  # clean-up must not hide the error that brought us here; close() tries again
            log.warning("could not delete the queues", extra=fields(prefix=settings.queue_prefix, error=str(exc)))
            return
        if settings in self._topologies:
            self._topologies.remove(settings)

    # -- processes

    def start_api(self, settings: Settings) -> Child:
        child = processes.start_api(settings, self.log_dir, name=f"api-{settings.queue_prefix.rsplit('.', 1)[-1]}")
        self._children.append(child)
        return child

    def start_bare(self, settings: Settings, worker_class: str) -> Child:
        """The bare app under the API's gunicorn settings, with this worker class (sync runs one thread: gunicorn
        would turn sync with threads into gthread)."""
        args = ["--worker-class", worker_class, *(["--threads", "1"] if worker_class == "sync" else [])]
        child = processes.start_api(settings, self.log_dir, name=f"bare-flask-{worker_class}", module="bench.bare_app", ready_path="/health", args=args)
        self._children.append(child)
        return child

    def start_workers(self, settings: Settings) -> list[Child]:
        workers = processes.start_workers(settings, self.log_dir, count=settings.workers)
        self._children.extend(workers)
        return workers

    def wait_consuming(self, settings: Settings, workers: list[Child]) -> None:
        topology = _topology(settings)

        def every_queue_consumed() -> bool:
            for worker in workers:
                if not worker.alive():
                    raise RuntimeError(f"{worker.name} exited early:\n{worker.tail()}")
            with BrokerAdmin(settings.amqp_url) as admin:
                return all(admin.queue_exists(q) and admin.consumer_count(q) > 0 for q in map(topology.partition_queue, range(settings.num_partitions)))

        wait_for(every_queue_consumed, timeout=40, interval=0.2, what="a consumer on every partition queue")

    def stop(self, *children: Child) -> None:
        for child in children:
            code = child.stop()
            if code not in (0, -15):
                log.warning("process exited badly", extra=fields(process=child.name, code=code, log=str(child.log_path)))
            if child in self._children:
                self._children.remove(child)

    # -- exactness

    def drain(self, settings: Settings, timeout: float = 300.0) -> None:
        """Wait until every view accepted so far is in the database (the idea of tests/exactness.py).

        One sentinel view per partition goes through the API; each partition queue is FIFO
        with one active consumer, so once its sentinel is counted, everything before it is.
        The sentinel pages are new on each call, so a scenario can drain more than once.
        """
        self._drains += 1
        pages = _sentinel_pages(f"{SENTINEL_PREFIX}{self.run_id}/{self._drains}/", settings.num_partitions)
        url = f"http://127.0.0.1:{settings.port}/page-views/single"
        for page in pages:
            response = requests.post(url, json={"page": page, "timestamp": hour_ago(0)}, timeout=10)
            if response.status_code != 202:
                raise RuntimeError(f"sentinel {page} was refused: {response.status_code} {response.text}")

        def every_sentinel_counted() -> bool:
            with self.engine.connect() as connection:
                found = connection.execute(text("SELECT count(DISTINCT page) FROM page_views WHERE page = ANY(:pages)"), {"pages": pages}).scalar()
            return found == len(pages)

        wait_for(every_sentinel_counted, timeout=timeout, interval=0.2, what="every partition's sentinel to be counted")

    # -- the end

    def close(self, keep_database: bool = False) -> None:
        """Stop whatever still runs, delete every queue this run declared, drop the database."""
        for child in list(self._children):
            try:
                self.stop(child)
            except Exception as exc:
                log.warning("could not stop a process", extra=fields(process=child.name, error=str(exc)))
        for settings in list(self._topologies):
            self.delete_topology(settings)
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.dispose()
        if not keep_database:
            try:
                db.drop_database(self.base.database_url)
            except Exception as exc:
                log.warning("could not drop the database", extra=fields(database=self.database, error=str(exc)))


def _sentinel_pages(prefix: str, num_partitions: int) -> list[str]:
    """One page per partition, so a sentinel travels through every queue."""
    found: dict[int, str] = {}
    number = 0
    while len(found) < num_partitions:
        page = f"{prefix}{number}"
        found.setdefault(partition_for(page, num_partitions), page)
        number += 1
    return list(found.values())


def _topology(settings: Settings) -> Topology:
    return Topology.from_settings(settings)

"""The connections an API process holds, opened on first use (after gunicorn has forked)."""
from __future__ import annotations

import functools
import threading
import time

from flask import Flask, current_app
from sqlalchemy.engine import Engine

from api.publishing import compose
from api.visitors import DailySalts
from common.broker import Publisher, Topology
from common.config import Settings
from common.db import ReportDatabase, make_engine
from common.salts import SaltStore

REPORT_STATEMENT_TIMEOUT_MS = 5_000
STARTUP_GRACE_S = 3.0


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topology = Topology.from_settings(settings)
        self._lock = threading.Lock()
        self._publisher: Publisher | None = None
        self._started_at = 0.0
        self._engine: Engine | None = None
        self._report_db: ReportDatabase | None = None
        self._salts: DailySalts | None = None

    def publisher(self) -> Publisher:
        with self._lock:
            if self._publisher is None:
                self._publisher = Publisher(
                    self.settings.amqp_url,
                    self.topology,
                    functools.partial(compose, self.topology),
                    on_gevent=self.settings.api_worker_class == "gevent",
                ).start()
                self._started_at = time.monotonic()
            publisher = self._publisher
        # Requests in a fresh process wait for the first connection instead of failing;
        # after that grace they fail fast (503) while the broker is away.
        grace_left = self._started_at + STARTUP_GRACE_S - time.monotonic()
        if grace_left > 0 and not publisher.connected:
            publisher.wait_connected(grace_left)
        return publisher

    def engine(self) -> Engine:
        """The primary (DATABASE_URL)."""
        with self._lock:
            if self._engine is None:
                self._engine = self._make_engine(self.settings.database_url, "pageviews-api")
            return self._engine

    def report_db(self) -> ReportDatabase:
        """Where report endpoints read: `report_db().read(lambda connection: ...)` (the replica if configured, else the primary)."""
        primary = self.engine()
        with self._lock:
            if self._report_db is None:
                url = self.settings.report_database_url
                replica = self._make_engine(url, "pageviews-api-reports") if url else None
                self._report_db = ReportDatabase(primary, replica)
            return self._report_db

    def _make_engine(self, url: str, application_name: str) -> Engine:
        return make_engine(
            url,
            application_name=application_name,
            pool_size=min(self.settings.api_threads, 8),
            statement_timeout_ms=REPORT_STATEMENT_TIMEOUT_MS,
            pre_ping=False,  # a round trip per report; reads retry a dead connection once instead
            # No BEGIN/ROLLBACK round trips around a one-statement report, and no isolation
            # switch per checkout; several statements that must agree use db.in_one_snapshot.
            # (The salts' insert-then-select is correct statement by statement.)
            autocommit=True,
        )

    def salts(self) -> DailySalts:
        """The visitor-id salt of the current day, loaded from PostgreSQL once a day."""
        engine = self.engine()
        with self._lock:
            if self._salts is None:
                self._salts = DailySalts(SaltStore(engine).salt_of)
            return self._salts


def services(app: Flask | None = None) -> Services:
    return (app or current_app).extensions["pageviews"]

"""Session-wide services, a database per test run, a queue prefix per test, and real processes."""
from __future__ import annotations

import os
import re
import uuid
from typing import Callable, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from common import db
from common import logging as structured_logging
from common.broker import BrokerAdmin, Topology
from common.config import Settings
from tests.backends import Backend, choose_backend
from tests.helpers import ApiProcess, Process, free_port
from worker import broker_setup

RUN_ID = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def backend() -> Iterator[Backend]:
    structured_logging.configure("warning")
    chosen = choose_backend(dict(os.environ))
    yield chosen
    chosen.close()


@pytest.fixture(scope="session")
def database_url(backend: Backend) -> Iterator[str]:
    """A database of this test run's own, migrated once with Alembic, dropped at the end."""
    url = make_url(backend.database_server_url).set(database=f"pageviews_test_{RUN_ID}").render_as_string(hide_password=False)
    db.ensure_database(url)
    db.migrate(url)
    yield url
    db.drop_database(url)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    created = db.make_engine(database_url, application_name="pageviews-tests", pool_size=4)
    yield created
    created.dispose()


def _queue_prefix(test_name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", test_name).strip("-")[:40]
    return f"test.{RUN_ID}.{name}.{uuid.uuid4().hex[:4]}"


def _delete_topology(settings: Settings) -> None:
    topology = Topology.from_settings(settings)
    try:
        with BrokerAdmin(settings.amqp_url) as admin:
            admin.delete_topology(topology)
    except Exception:  # the broker may be down after a failed fault test; its queues die with the run
        pass


def _remove_policy(settings: Settings) -> None:
    try:
        broker_setup.remove_policy(settings)
    except Exception:  # the broker may be down after a failed fault test
        pass


@pytest.fixture
def settings(request: pytest.FixtureRequest, backend: Backend, database_url: str, engine: Engine) -> Iterator[Settings]:
    """Settings of one test: its own queue prefix and port, empty tables, fast flushing."""
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE page_views, applied_messages, site_hours, page_days, rollup_days"))
    chosen = Settings.from_mapping(
        {
            "DATABASE_URL": database_url,
            "AMQP_URL": backend.amqp_url,
            "QUEUE_PREFIX": _queue_prefix(request.node.name),
            "PORT": free_port(),
            "NUM_PARTITIONS": 4,
            "BATCH_SIZE": 200,
            "FLUSH_INTERVAL_MS": 100,
            "API_PROCESSES": 1,
            "API_THREADS": 8,
            "LOG_LEVEL": "info",
            "BROKER_MANAGEMENT_URL": backend.management_url,
            "METRICS_PORT": 0,  # off: tests running side by side would all want 9101; metric tests choose a free port
            # API_WORKER_CLASS=gthread in the environment runs the suite's APIs under gthread workers.
            **({"API_WORKER_CLASS": os.environ["API_WORKER_CLASS"]} if "API_WORKER_CLASS" in os.environ else {}),
        }
    )
    # As in a deployment: the partition queues' policy (bounds, delivery limit) is in place
    # before anything declares them; named after this test's prefix, it touches no other queue.
    broker_setup.apply_policy(chosen)
    yield chosen
    _delete_topology(chosen)
    _remove_policy(chosen)


@pytest.fixture
def start_api(settings: Settings) -> Iterator[Callable[..., ApiProcess]]:
    started: list[ApiProcess] = []

    def start(ready_path: str = "/ready", **overrides: object) -> ApiProcess:
        api = ApiProcess(settings.replace(**overrides) if overrides else settings, ready_path)
        started.append(api)
        return api

    yield start
    for api in started:
        api.close()


@pytest.fixture
def start_worker(settings: Settings) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def start(partitions: tuple[int, ...] | None = None, **overrides: object) -> Process:
        chosen = settings.replace(**overrides) if overrides else settings
        if partitions is not None:
            chosen = chosen.replace(worker_partitions=tuple(partitions))
        worker = Process("worker", "worker", chosen)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()


@pytest.fixture
def control(backend: Backend):
    """Stops and starts the real services; fault tests restore them in `finally`."""
    if not backend.control.available:
        pytest.skip(f"services from the {backend.kind} cannot be stopped and started by the tests")
    return backend.control


_FIGURES: list = []


@pytest.fixture
def record_figures() -> Callable[[object], None]:
    """Fault tests report their figures (accepted, counted, lost, duplicated) at the end of the run."""
    return _FIGURES.append


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001 - pytest hook
    if not _FIGURES:
        return
    terminalreporter.section("fault figures")
    for figures in _FIGURES:
        terminalreporter.write_line(figures.line())

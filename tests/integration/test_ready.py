"""GET /ready names the dependency that failed and why, in words an operator can act on.

Real failures against the real services, without stopping them: an app built with a wrong
password in AMQP_URL, a port nothing listens on in DATABASE_URL, and partition queues that
already exist with other arguments.
"""
from __future__ import annotations

from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from flask.testing import FlaskClient

from api import create_app
from api.services import services
from common.broker import BrokerAdmin, Topology
from common.config import Settings
from tests.helpers import free_port


def _with(url: str, *, password: str | None = None, port: int | None = None) -> str:
    parts = urlsplit(url)
    user = parts.username or ""
    secret = password if password is not None else (parts.password or "")
    netloc = f"{user}:{secret}@" if secret else (f"{user}@" if user else "")
    netloc += f"{parts.hostname}:{port or parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def ready() -> Iterator:
    apps = []

    def answer(settings: Settings) -> tuple[int, dict]:
        app = create_app(settings)
        apps.append(app)
        client: FlaskClient = app.test_client()
        response = client.get("/ready")
        return response.status_code, response.get_json()

    yield answer
    for app in apps:
        services(app).publisher().close()
        services(app).engine().dispose()


def test_a_wrong_broker_password_is_named(settings, ready):
    status, body = ready(settings.replace(amqp_url=_with(settings.amqp_url, password="not-the-password")))
    assert status == 503 and body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert "ACCESS_REFUSED" in body["checks"]["broker"] and "wrong user or password in AMQP_URL" in body["checks"]["broker"], body


def test_a_wrong_database_port_is_named(settings, ready):
    port = free_port()  # nothing listens there
    status, body = ready(settings.replace(database_url=_with(settings.database_url, port=port)))
    assert status == 503
    assert body["checks"]["broker"] == "ok"
    database = body["checks"]["database"]
    assert f":{port} (connection refused)" in database and "port in DATABASE_URL" in database, body


def test_queues_declared_with_other_arguments_are_named(settings, ready):
    other = Topology(settings.queue_prefix, settings.num_partitions, settings.delivery_limit + 1)
    with BrokerAdmin(settings.amqp_url) as admin:
        admin.declare(other)  # the same names, another x-delivery-limit (removed by the settings fixture)
    status, body = ready(settings)
    assert status == 503
    broker = body["checks"]["broker"]
    assert "PRECONDITION_FAILED" in broker and "x-delivery-limit" in broker and "QUEUE_PREFIX" in broker, body


def test_all_well_is_ready(settings, ready):
    assert ready(settings) == (200, {"status": "ready", "checks": {"broker": "ok", "database": "ok"}})

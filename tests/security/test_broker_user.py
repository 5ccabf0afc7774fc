"""The application's RabbitMQ user: rights on its own prefix, refused any other; no tags."""
from __future__ import annotations

import uuid
from urllib.parse import quote

import pika
import pika.exceptions
import pytest

from common.broker import BrokerAdmin, Topology
from common.management import ManagementError, management_url_for
from tests.helpers import hour_ago, total_views, wait_for
from worker import broker_setup

ACCESS_REFUSED = 403


@pytest.fixture
def app_url(settings):
    user, password = f"pageviews-test-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    host = settings.amqp_url.split("@", 1)[1]
    url = f"amqp://{user}:{quote(password)}@{host}"
    broker_setup.grant_app_user(settings, url)
    yield url
    broker_setup.management(settings).delete_user(user)


def refused(url: str, action) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
            action(connection.channel())
        return closed.value.reply_code
    finally:
        if connection.is_open:
            connection.close()


def test_the_app_user_runs_the_system_on_its_prefix(settings, app_url, start_api, start_worker, engine):
    api = start_api(amqp_url=app_url)
    start_worker(amqp_url=app_url)
    assert api.post("/page-views/single", {"page": "example.com/a", "timestamp": hour_ago(2)}).status_code == 202
    wait_for(lambda: total_views(engine) == 1, what="the view counted")


def test_the_app_user_is_refused_another_prefix(settings, app_url):
    other = Topology(f"{settings.queue_prefix}-other", 1)
    with BrokerAdmin(settings.amqp_url) as admin:  # the other prefix exists, declared by its own (admin) user
        admin.declare(other)
    try:
        queue = other.partition_queue(0)
        assert refused(app_url, lambda channel: channel.queue_declare(f"{settings.queue_prefix}-other.p1", durable=True)) == ACCESS_REFUSED
        assert refused(app_url, lambda channel: channel.basic_get(queue)) == ACCESS_REFUSED
        assert refused(app_url, lambda channel: channel.queue_purge(queue)) == ACCESS_REFUSED
        for exchange in (other.ingest_exchange, other.dead_exchange, ""):  # "": the default exchange routes to any queue by name
            assert refused(app_url, lambda channel: channel.basic_publish(exchange, queue, b"{}") or channel.basic_qos(prefetch_count=1)) == ACCESS_REFUSED
    finally:
        with BrokerAdmin(settings.amqp_url) as admin:
            admin.delete_topology(other)


def test_the_app_user_has_no_management_rights(settings, app_url):
    as_app = settings.replace(amqp_url=app_url, broker_management_url=management_url_for(app_url))
    with pytest.raises(ManagementError) as denied:
        broker_setup.apply_policy(as_app)  # no tag: the management API does not let it in at all
    assert "HTTP 401" in str(denied.value)

"""How many messages a queue holds and how many consumers it has, as RabbitMQ counts them.

Two sources, the better one first:
1. The management HTTP API (`GET /api/queues/<vhost>/<name>`, plugin rabbitmq_management) gives
   `messages_ready` and `messages_unacknowledged`, for every consumer of the queue, as the
   broker last sampled them (every 5 s by default). It is found at the AMQP URL's host, port
   15672 (15671 for amqps), with the AMQP URL's user and password.
2. Without it, a passive queue.declare over AMQP gives the ready count and the consumer count
   but not the unacknowledged messages: ``unacked`` is then None and the caller adds what it
   knows it holds itself (see worker/metrics.py for why that is still the exact depth).
"""
from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import quote, unquote, urlsplit

from common.broker.admin import BrokerAdmin
from common.config import split_urls
from common.logging import fields

log = logging.getLogger(__name__)

MANAGEMENT_PORTS = {"amqp": 15672, "amqps": 15671}
TIMEOUT_S = 2.0


@dataclass(frozen=True)
class QueueStats:
    ready: int
    unacked: int | None  # None: the source cannot see them (AMQP fallback)
    consumers: int
    source: str  # "management" or "amqp"


class QueueStatsUnavailable(Exception):
    """Neither source answered; the message says why."""


def management_base(amqp_url: str) -> tuple[str, str, dict[str, str]]:
    """(base URL of the management API, vhost as it goes in its paths, auth header) for the AMQP URL of one node."""
    parts = urlsplit(amqp_url)
    scheme = "https" if parts.scheme == "amqps" else "http"
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    credentials = f"{unquote(parts.username or 'guest')}:{unquote(parts.password or 'guest')}"
    auth = {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}
    return f"{scheme}://{parts.hostname}:{MANAGEMENT_PORTS[parts.scheme]}", quote(vhost, safe=""), auth


def from_management(amqp_url: str, queues: Sequence[str], timeout: float = TIMEOUT_S) -> dict[str, QueueStats]:
    base, vhost, auth = management_base(amqp_url)
    stats = {}
    for queue in queues:
        url = f"{base}/api/queues/{vhost}/{quote(queue, safe='')}?columns=messages_ready,messages_unacknowledged,consumers"
        with urllib.request.urlopen(urllib.request.Request(url, headers=auth), timeout=timeout) as response:
            body = json.load(response)
        if not isinstance(body, dict) or not {"messages_ready", "messages_unacknowledged", "consumers"} <= set(body):
            # A queue the broker has not sampled yet has no counts (and `columns` then gives []).
            raise ValueError(f"the management API has no counts for {queue} yet")
        stats[queue] = QueueStats(body["messages_ready"], body["messages_unacknowledged"], body["consumers"], "management")
    return stats


def from_amqp(amqp_url: str, queues: Sequence[str]) -> dict[str, QueueStats]:
    with BrokerAdmin(amqp_url) as admin:
        return {queue: QueueStats(admin.message_count(queue), None, admin.consumer_count(queue), "amqp") for queue in queues}


def queue_stats(amqp_url: str, queues: Sequence[str]) -> dict[str, QueueStats]:
    """Stats of every queue from the management API, or else over AMQP; raises QueueStatsUnavailable."""
    management_error: BaseException | None = None
    for node_url in split_urls(amqp_url):  # a cluster: any node's management API answers for all of it
        try:
            return from_management(node_url, queues)
        except (OSError, ValueError, urllib.error.URLError) as exc:
            management_error = exc
    log.debug("queue stats over AMQP", extra=fields(reason=str(management_error)))
    try:
        return from_amqp(amqp_url, queues)
    except Exception as amqp_error:  # noqa: BLE001 - both sources failed: say why for each
        raise QueueStatsUnavailable(f"management API: {management_error}; AMQP: {amqp_error}") from amqp_error

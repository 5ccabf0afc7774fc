"""Compare what the database counted with what clients were told was accepted."""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

from sqlalchemy.engine import Engine

from common import messages
from common.broker import BrokerAdmin, Topology
from common.config import Settings
from common.partitioning import partition_for
from common.timeutil import hour_start_epoch, parse_timestamp
from tests.helpers import ApiProcess, hour_ago, views_by_page_hour, wait_for
from tests.load import Ledger

SENTINEL_PREFIX = "sentinel/"


@dataclass(frozen=True)
class Figures:
    scenario: str
    requests: int
    accepted_requests: int
    accepted_views: int
    uncertain_views: int  # plain requests answered non-2xx: may or may not be counted
    counted_views: int
    lost: int  # accepted but not counted
    duplicated: int  # counted more than accepted (beyond what was uncertain)
    retries: int
    failures: dict

    def line(self) -> str:
        return " ".join(f"{key}={value}" for key, value in asdict(self).items())


def sentinel_pages(settings: Settings) -> list[str]:
    """One page per partition, so a sentinel travels through every queue."""
    found: dict[int, str] = {}
    for index in itertools.count():
        page = f"{SENTINEL_PREFIX}{index}"
        found.setdefault(partition_for(page, settings.num_partitions), page)
        if len(found) == settings.num_partitions:
            return list(found.values())
    raise AssertionError("unreachable")


def drain(api: ApiProcess, settings: Settings, engine: Engine, timeout: float = 120.0) -> None:
    """Wait until every message published so far has been processed, without sleeping on a guess.

    Each partition queue is FIFO with one active consumer: once a sentinel published now
    is committed, everything queued before it in that partition has been handled.
    """
    pages = sentinel_pages(settings)
    hour = hour_ago(0)
    for page in pages:
        response = api.post("/page-views/single", {"page": page, "timestamp": hour})
        assert response.status_code == 202, response.text

    def all_sentinels_counted() -> bool:
        counted = views_by_page_hour(engine)
        return all(any(key[0] == page for key in counted) for page in pages)

    wait_for(all_sentinels_counted, timeout=timeout, interval=0.2, what="every partition's sentinel to be counted")


def compare(scenario: str, ledger: Ledger, engine: Engine) -> Figures:
    counted = {
        (page, hour.strftime("%Y-%m-%dT%H:%M:%SZ")): views
        for (page, hour), views in views_by_page_hour(engine).items()
        if not page.startswith(SENTINEL_PREFIX)
    }
    lost = duplicated = 0
    for key in set(counted) | set(ledger.accepted) | set(ledger.uncertain):
        got, accepted, uncertain = counted.get(key, 0), ledger.accepted[key], ledger.uncertain[key]
        lost += max(0, accepted - got)
        duplicated += max(0, got - accepted - uncertain)
    return Figures(
        scenario=scenario,
        requests=ledger.requests_sent,
        accepted_requests=ledger.accepted_requests,
        accepted_views=ledger.accepted_views,
        uncertain_views=ledger.uncertain_views,
        counted_views=sum(counted.values()),
        lost=lost,
        duplicated=duplicated,
        retries=ledger.retries,
        failures={str(key): value for key, value in ledger.failures.items()},
    )


def message_body(page: str, views: int, message_id: str, hours_ago: int = 1) -> bytes:
    """A version-1 message carrying `views` views of `page` in the hour `hours_ago` hours back."""
    return messages.encode(message_id, [(page, hour_start_epoch(parse_timestamp(hour_ago(hours_ago))), views)])


def queue_of(settings: Settings, page: str) -> str:
    return Topology.from_settings(settings).partition_queue(partition_for(page, settings.num_partitions))


def publish_direct(settings: Settings, page: str, views: int, *, message_id: str | None = None, hours_ago: int = 1) -> str:
    """Publish one version-1 message straight into the page's partition queue, as another producer would."""
    message_id = message_id or messages.new_message_id()
    with BrokerAdmin(settings.amqp_url) as admin:
        admin.declare(Topology.from_settings(settings))
        admin.publish(queue_of(settings, page), message_body(page, views, message_id, hours_ago), message_id)
    return message_id


def drain_direct(settings: Settings, engine: Engine, timeout: float = 60.0) -> None:
    """drain() for tests without an API: sentinels published straight into each partition queue."""
    pages = sentinel_pages(settings)
    for page in pages:
        publish_direct(settings, page, 1, hours_ago=0)

    def all_sentinels_counted() -> bool:
        counted = views_by_page_hour(engine)
        return all(any(key[0] == page for key in counted) for page in pages)

    wait_for(all_sentinels_counted, timeout=timeout, interval=0.1, what="every partition's sentinel to be counted")

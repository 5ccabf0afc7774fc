"""A three-node RabbitMQ cluster: a node killed under load, then the whole cluster stopped and started.

Each test brings up its own cluster with scripts/rabbitmq-cluster.sh (node names and ports
of its own, nothing shared with the machine's RabbitMQ) and removes it at the end. The API
and workers are given the three nodes' URLs in AMQP_URL, as an operator would.
"""
from __future__ import annotations

import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from common.broker import BrokerAdmin, Topology
from tests.cluster.clusters import NODES, OutageFigures, unavailable_seconds
from tests.exactness import compare, drain
from tests.helpers import hour_ago, total_views, wait_for
from tests.load import LoadGenerator

pytestmark = [pytest.mark.fault, pytest.mark.cluster, pytest.mark.timeout(480)]

NUM_PARTITIONS = 6  # two partition leaders per node when balanced
MOST_UNAVAILABLE_S = 30  # the API answers 503 at most this long after losing a node


@pytest.fixture
def settings(settings, rabbitmq_cluster):
    return settings.replace(amqp_url=rabbitmq_cluster.urls, num_partitions=NUM_PARTITIONS)


def partition_queues(cluster, settings, via: int):
    return cluster.queues(settings.queue_prefix + ".p", via)


def start_system(settings, start_api, start_worker, api_on: str | None = None):
    """The API and two workers (half of the partitions each); the API's publisher on node api_on if given."""
    api = start_api() if api_on is None else start_api_on(start_api, api_on)
    half = NUM_PARTITIONS // 2
    start_worker(partitions=tuple(range(half)))
    start_worker(partitions=tuple(range(half, NUM_PARTITIONS)))
    return api


def start_api_on(start_api, url: str, attempts: int = 25):
    """An API process whose publisher happens to be connected to the node at url.

    Processes pick a node at random, as they should; the test starts API processes until
    one lands on the node it is about to kill, so that the publisher's move to another
    node is part of what is measured (P(no luck in 25) = (2/3)^25, about 4e-5).
    """
    port = urlsplit(url).port
    for _ in range(attempts):
        api = start_api()
        nodes = wait_for(lambda: re.findall(r'msg="publisher connected".* node=[^ ]*:(\d+)', api.output()), what="the publisher's node")
        if int(nodes[-1]) == port:
            return api
        api.close()
    raise AssertionError(f"no API process connected to {url} in {attempts} attempts")


def accepted_more(load, how_many: int, timeout: float = 60) -> None:
    floor = load.ledger.accepted_requests
    wait_for(lambda: load.ledger.accepted_requests >= floor + how_many, timeout=timeout, what=f"{how_many} more requests accepted")


def test_killing_the_node_that_leads_most_partitions_loses_and_doubles_nothing(
    settings, rabbitmq_cluster, start_api, start_worker, engine, record_figures
):
    cluster = rabbitmq_cluster
    with BrokerAdmin(settings.amqp_url) as admin:  # declared as the API and workers would, before they start
        admin.declare(Topology(settings.queue_prefix, settings.num_partitions, settings.delivery_limit))
    queues = partition_queues(cluster, settings, 1)
    assert len(queues) == NUM_PARTITIONS and all(len(queue.members) == 3 for queue in queues), queues  # a replica on every node
    leaders = Counter(queue.leader for queue in queues)
    assert len(leaders) == 3, f"leaders not spread over the nodes: {leaders}"
    victim_node = leaders.most_common(1)[0][0]
    victim = cluster.number_of(victim_node)
    survivor = next(number for number in NODES if number != victim)

    api = start_system(settings, start_api, start_worker, api_on=cluster.amqp_url(victim))
    load = LoadGenerator(api.base_url, threads=6, plain_share=0.3).start()
    wait_for(lambda: total_views(engine) > 3000, timeout=60, what="views flowing before the kill")

    killed_at = time.monotonic()
    cluster.run("kill", str(victim))
    wait_for(
        lambda: all(q.leader != victim_node and q.leader in q.online for q in partition_queues(cluster, settings, survivor)),
        timeout=60, interval=0.5, what="new leaders on the surviving nodes",
    )
    accepted_more(load, 300)
    floor = total_views(engine)
    wait_for(lambda: total_views(engine) > floor + 3000, timeout=60, what="the workers writing again, through the surviving nodes")

    restarted_at = time.monotonic()
    cluster.run("start", str(victim))
    wait_for(lambda: len(cluster.running_nodes(survivor)) == 3, timeout=120, interval=0.5, what="the node back in the cluster")
    wait_for(lambda: all(len(q.online) == 3 for q in partition_queues(cluster, settings, victim)), timeout=60, interval=0.5,
             what="every partition's replica on the node online again")
    accepted_more(load, 300)

    ledger = load.stop()
    drain(api, settings, engine)
    figures = compare("rabbitmq cluster: kill -9 of the node leading most partitions, rejoin", ledger, engine)
    unavailable_s, failed = unavailable_seconds(ledger.failure_times, killed_at, restarted_at)
    _, failed_during_rejoin = unavailable_seconds(ledger.failure_times, restarted_at, time.monotonic())
    record_figures(OutageFigures(figures, unavailable_s=unavailable_s, failed_attempts_after_kill=failed,
                                 failed_attempts_during_rejoin=failed_during_rejoin, leaders=dict(leaders)))
    assert ledger.gave_up == 0, figures.line()
    assert figures.lost == 0 and figures.duplicated == 0, figures.line()
    assert unavailable_s < MOST_UNAVAILABLE_S, figures.line()


def test_the_whole_cluster_stopped_and_started_again_loses_and_doubles_nothing(
    settings, rabbitmq_cluster, start_api, start_worker, engine, record_figures
):
    cluster = rabbitmq_cluster
    api = start_system(settings, start_api, start_worker)
    load = LoadGenerator(api.base_url, threads=6, plain_share=0.3).start()
    wait_for(lambda: total_views(engine) > 3000, timeout=60, what="views flowing before the stop")

    stopped_at = time.monotonic()
    with ThreadPoolExecutor(len(NODES)) as pool:
        list(pool.map(lambda number: cluster.run("stop", str(number)), NODES))
    wait_for(lambda: load.ledger.failures[503] >= 20, timeout=30, what="clients seeing 503 while the cluster is down")
    response = api.post("/page-views/single", {"page": "example.com/while-down", "timestamp": hour_ago(1)})
    assert response.status_code == 503 and response.json()["error"]["code"] == "broker_unavailable", response.text

    started_at = time.monotonic()
    cluster.up()  # existing data: the three nodes start together, each waiting for its peers
    up_s = time.monotonic() - started_at
    probe = {"page": "example.com/after-restart", "timestamp": hour_ago(1)}
    wait_for(lambda: api.post("/page-views/single", probe).status_code == 202, timeout=60, interval=0.5,
             what="the API accepting again without a restart of its own")
    accepting_after_up_s = round(time.monotonic() - started_at - up_s, 2)
    accepted_more(load, 300)

    ledger = load.stop()
    ledger.accepted.update({("example.com/after-restart", hour_ago(1)): 1})
    drain(api, settings, engine)
    figures = compare("rabbitmq cluster: every node stopped, started again", ledger, engine)
    unavailable_s, failed = unavailable_seconds(ledger.failure_times, stopped_at, time.monotonic())
    record_figures(OutageFigures(figures, unavailable_s=unavailable_s, failed_attempts=failed, cluster_up_s=round(up_s, 1),
                                 accepting_after_up_s=accepting_after_up_s))
    assert ledger.gave_up == 0, figures.line()
    assert figures.lost == 0 and figures.duplicated == 0, figures.line()

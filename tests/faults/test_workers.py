"""Worker processes: one writer per partition, clean SIGTERM, memory bounded by prefetch under a backlog."""
from __future__ import annotations

from collections import Counter

import pytest

from common import messages
from common.broker import BrokerAdmin, Topology, publish_in_bulk
from common.timeutil import hour_start_epoch, parse_timestamp
from tests.exactness import compare, drain
from tests.helpers import hour_ago, queue_depths, total_views, wait_for
from tests.load import LoadGenerator

pytestmark = pytest.mark.fault


def our_consumers(control, settings) -> list[tuple[str, bool]]:
    return [(queue, active) for queue, active in control.consumers() if queue.startswith(settings.queue_prefix + ".p")]


def test_second_worker_on_the_same_partitions_is_a_hot_standby(settings, start_api, start_worker, engine, control, record_figures):
    api = start_api()
    first = start_worker()
    wait_for(lambda: len(our_consumers(control, settings)) == settings.num_partitions, what="the first worker consuming")
    start_worker()
    consumers = wait_for(lambda: (c := our_consumers(control, settings)) and len(c) == 2 * settings.num_partitions and c, what="the standby registered")
    active = Counter(queue for queue, is_active in consumers if is_active)
    assert active == Counter({f"{settings.queue_prefix}.p{p}": 1 for p in range(settings.num_partitions)})

    load = LoadGenerator(api.base_url, threads=4, plain_share=0.3).start()
    wait_for(lambda: total_views(engine) > 3000, timeout=60, what="views flowing")
    first.kill()
    consumers = wait_for(lambda: (c := our_consumers(control, settings)) and len(c) == settings.num_partitions and c, what="the standby taking over")
    assert all(is_active for _queue, is_active in consumers)
    floor = total_views(engine)
    wait_for(lambda: total_views(engine) > floor + 3000, timeout=60, what="the standby writing")

    ledger = load.stop()
    drain(api, settings, engine)
    figures = compare("active worker kill -9, standby takes over", ledger, engine)
    record_figures(figures)
    assert figures.lost == 0 and figures.duplicated == 0, figures.line()


def test_two_workers_on_disjoint_partitions_share_the_load_exactly(settings, start_api, start_worker, engine, control):
    api = start_api()
    start_worker(partitions=(0, 1))
    start_worker(partitions=(2, 3))
    consumers = wait_for(lambda: (c := our_consumers(control, settings)) and len(c) == settings.num_partitions and c, what="both workers consuming")
    assert all(is_active for _queue, is_active in consumers)
    load = LoadGenerator(api.base_url, threads=4, plain_share=0.0).start(max_requests=600)
    ledger = load.join()
    drain(api, settings, engine)
    figures = compare("two workers", ledger, engine)
    assert figures.lost == 0 and figures.duplicated == 0, figures.line()


def test_sigterm_flushes_acknowledges_and_exits_0(settings, start_api, start_worker, engine):
    api = start_api()
    worker = start_worker(batch_size=60_000, flush_interval_ms=600_000)  # nothing flushes on its own
    for index in range(40):
        assert api.post("/page-views/single", {"page": f"example.com/term/{index % 7}", "timestamp": hour_ago(1)}).status_code == 202
    assert api.post("/page-views/multi", {"example.com/term/multi": {hour_ago(2): 60}}).status_code == 202
    # Delivered to the worker and buffered (nothing ready in the queues), not yet written.
    wait_for(lambda: sum(queue_depths(settings).values()) == 0, what="every message delivered to the worker")
    assert total_views(engine) == 0

    assert worker.terminate() == 0, worker.output()[-2000:]
    assert total_views(engine) == 100
    # Acknowledged: nothing went back to the queues when the connection closed.
    assert sum(queue_depths(settings).values()) == 0


def test_memory_is_bounded_by_prefetch_under_a_backlog(settings, start_worker, engine, record_figures):
    backlog, prefetch = 100_000, 250
    topology = Topology.from_settings(settings)
    hour = hour_start_epoch(parse_timestamp(hour_ago(1)))
    with BrokerAdmin(settings.amqp_url) as admin:
        admin.declare(topology)
    for partition in range(settings.num_partitions):
        views = ([(f"example.com/backlog/{partition}/{i % 50}", hour, 1)] for i in range(backlog // settings.num_partitions))
        publish_in_bulk(settings.amqp_url, topology.partition_queue(partition), (messages.encode(messages.new_message_id(), v) for v in views))

    worker = start_worker(prefetch=prefetch)
    limit = settings.num_partitions * prefetch
    held_seen, rss_seen = [], []
    queues = [topology.partition_queue(p) for p in range(settings.num_partitions)]

    with BrokerAdmin(settings.amqp_url) as admin:

        def sample_until_drained() -> bool:
            # Delivered but not yet committed: what the worker holds in memory. Ready is read
            # first; counted can only grow after it, so this never overstates what was held.
            ready = sum(admin.message_count(queue) for queue in queues)
            counted = total_views(engine)
            held_seen.append(backlog - ready - counted)
            rss_seen.append(_rss_mb(worker.pid))
            return counted == backlog

        wait_for(sample_until_drained, timeout=300, interval=0.02, what="the backlog drained")
    record_figures(MemoryFigures(backlog, limit, len(held_seen), max(held_seen), rss_seen))
    assert max(held_seen) <= limit, (max(held_seen), limit)
    assert max(rss_seen) < 150, rss_seen


class MemoryFigures:
    def __init__(self, backlog: int, limit: int, samples: int, held: int, rss: list[float]) -> None:
        quarter = max(1, len(rss) // 4)
        self.text = (
            f"scenario=backlog-drain backlog={backlog} samples={samples} held_limit={limit} max_held_seen={held} "
            f"worker_rss_mb_first_quarter_max={max(rss[:quarter]):.1f} worker_rss_mb_max={max(rss):.1f}"
        )

    def line(self) -> str:
        return self.text


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0

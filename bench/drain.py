"""The drain scenario: a backlog published with the workers stopped, then timed to the last view."""
from __future__ import annotations

import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.context import Run
from bench.processes import CpuMeter, peak_rss_mb, rss_mb
from bench.workload import backlog_bodies, backlog_by_partition
from common.broker import BrokerAdmin, publish_in_bulk
from common.logging import fields

log = logging.getLogger("bench")

SAMPLE_EVERY_S = 0.25  # queue depth; RSS every other sample (0.5 s)
PUBLISHERS = 2  # partitions published concurrently (each its own connection, one call per partition)
STALL_TIMEOUT_S = 120  # fail if nothing moves for this long
STEADY_FROM, STEADY_TO = 0.1, 0.9  # share of the backlog consumed: the steady part of the drain


def drain(run: Run, exactly_once: bool = True, messages: int | None = None) -> dict[str, Any]:
    count = messages or run.durations.drain_messages
    settings = run.settings_for("drain" if exactly_once else "drain-eo-off", exactly_once=exactly_once)
    run.reset_tables()
    try:
        published_s = _publish_backlog(run, settings, count)
        figures = _consume(run, settings, count)
        figures["dead_lettered"] = run.dead_lettered(settings)
    finally:
        run.delete_topology(settings)
    figures.update(messages=count, publish_s=round(published_s, 1), publish_msgs_per_s=round(count / published_s))
    return figures


def _publish_backlog(run: Run, settings: Any, count: int) -> float:
    topology = run.declare(settings)
    by_partition = backlog_by_partition(count, settings.num_partitions, random.Random(3))
    started = time.monotonic()

    def publish(partition: int) -> int:
        return publish_in_bulk(settings.amqp_url, topology.partition_queue(partition), backlog_bodies(by_partition[partition]))

    with ThreadPoolExecutor(PUBLISHERS) as pool:
        sent = sum(pool.map(publish, sorted(by_partition)))
    seconds = time.monotonic() - started
    with BrokerAdmin(settings.amqp_url) as admin:
        ready = run.queue_depth(settings, admin)
    if sent != count or ready != count:
        raise RuntimeError(f"backlog: published {sent} and {ready} are ready, expected {count}")
    log.info("backlog published", extra=fields(messages=count, seconds=round(seconds, 1)))
    return seconds


def _consume(run: Run, settings: Any, count: int) -> dict[str, Any]:
    """Start the workers and wait for the database total to reach `count`, sampling depth and memory."""
    started = time.monotonic()
    workers = run.start_workers(settings)
    meter = CpuMeter({"workers": [w.pid for w in workers]}).start()
    depths: list[tuple[float, int]] = []  # (seconds since the workers started, messages ready)
    memory: list[list[float | None]] = []  # RSS in MB of each worker, every 0.5 s
    try:
        with BrokerAdmin(settings.amqp_url) as admin:
            last_progress, last_ready = started, count
            while True:
                ready = run.queue_depth(settings, admin)
                now = time.monotonic()
                depths.append((now - started, ready))
                if len(depths) % 2 == 1:
                    memory.append([rss_mb(w.pid) for w in workers])
                if ready < last_ready:
                    last_progress, last_ready = now, ready
                _check(workers, now - last_progress)
                if ready == 0:
                    break
                time.sleep(SAMPLE_EVERY_S)
        # Nothing ready: the rest is in the workers' buffers; the last flush ends the drain.
        # If the total stops short (views lost), give up after STALL_TIMEOUT_S and report it.
        last_total = -1
        while (total := run.total_views(include_sentinels=True)) < count:
            now = time.monotonic()
            if total > last_total:
                last_progress, last_total = now, total
            _check(workers, 0)
            if now - last_progress > STALL_TIMEOUT_S:
                log.error("the database total stopped short of the backlog", extra=fields(total=total, expected=count))
                break
            time.sleep(0.05)
        done = time.monotonic() - started
        cpu = meter.stop()
        peaks = [peak_rss_mb([w.pid]).get(str(w.pid)) for w in workers]
    finally:
        run.stop(*workers)
    total = run.total_views(include_sentinels=True)
    return {
        "drain_s": round(done, 2),
        "msgs_per_s": round(count / done),
        "views_per_s": round(total / done),
        **_steady_rate(depths, count),
        "counted": total,
        "exact": total == count,
        "worker_peak_rss_mb": peaks,
        **_rss_flatness(memory),
        "cpu": cpu,
    }


def _check(workers: list, stalled_s: float) -> None:
    for worker in workers:
        if not worker.alive():
            raise RuntimeError(f"{worker.name} exited during the drain:\n{worker.tail()}")
    if stalled_s > STALL_TIMEOUT_S:
        raise RuntimeError(f"the drain made no progress for {stalled_s:.0f}s")


def _steady_rate(depths: list[tuple[float, int]], count: int) -> dict[str, Any]:
    """Messages per second while the backlog went from STEADY_FROM to STEADY_TO consumed.

    Read from the ready counts, with the crossing moments interpolated between samples, so
    start-up and the last flush do not weigh in. The workers' unacknowledged prefetch makes
    it approximate by up to a few thousand messages.
    """
    def crossing(share: float) -> float | None:
        target = count * (1 - share)  # ready messages left at that share consumed
        previous = None
        for at, ready in depths:
            if ready <= target:
                if previous is None or previous[1] == ready:
                    return at
                (at0, ready0) = previous
                return at0 + (at - at0) * (ready0 - target) / (ready0 - ready)
            previous = (at, ready)
        return None

    begin, end = crossing(STEADY_FROM), crossing(STEADY_TO)
    if begin is None or end is None or end <= begin:
        return {"steady_msgs_per_s": None}
    return {"steady_msgs_per_s": round((STEADY_TO - STEADY_FROM) * count / (end - begin))}


def _rss_flatness(memory: list[list[float | None]]) -> dict[str, Any]:
    """Whether memory stays flat: the highest RSS of the second half of the samples against the first half."""
    per_worker = list(zip(*memory, strict=True))  # each sample has one figure per worker
    half = len(memory) // 2
    first = [max((v for v in values[:half] if v is not None), default=0.0) for values in per_worker]
    second = [max((v for v in values[half:] if v is not None), default=0.0) for values in per_worker]
    # Flat: the second half grew by at most 10% (or 5 MB, for small processes) over the first.
    flat = all(b <= max(a * 1.10, a + 5) for a, b in zip(first, second, strict=True)) if half else None
    return {"rss_first_half_max_mb": [round(v, 1) for v in first], "rss_second_half_max_mb": [round(v, 1) for v in second], "rss_flat": flat, "rss_samples": len(memory)}

"""What the load is made of: Zipf-like pages, hours, multi bodies and backlog messages."""
from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path

import orjson

from common import messages
from common.partitioning import partition_for
from common.timeutil import HOUR, format_utc, from_epoch, hour_start_epoch, utc_now

PAGES = 10_000
PAGE_PREFIX = "bench/p"  # the wrk scripts use the same names: bench/p0 (most viewed) ... bench/p9999
ZIPF_S = 1.0
MULTI_PAGES = 100
MULTI_HOURS = 24
MULTI_MAX_COUNT = 10
MULTI_BODIES = 300


def page(rank: int) -> str:
    return f"{PAGE_PREFIX}{rank}"


def zipf_cum_weights(n: int = PAGES, s: float = ZIPF_S) -> list[float]:
    """Cumulative weights of ranks 0..n-1 with probability proportional to 1/(rank+1)^s."""
    return list(itertools.accumulate(1 / (k**s) for k in range(1, n + 1)))


def write_multi_bodies(path: Path, rng: random.Random, bodies: int = MULTI_BODIES) -> dict[str, float]:
    """Bodies for POST /page-views/multi, one JSON object per line, and what they hold.

    Each body: MULTI_PAGES distinct Zipf-like pages x the MULTI_HOURS hours ending with the
    current one (inside retention, never in the future), each count uniform in 1..MULTI_MAX_COUNT.
    """
    now_hour = hour_start_epoch(utc_now())
    stamps = [_iso(now_hour - h * HOUR) for h in range(MULTI_HOURS)]
    cum = zipf_cum_weights()
    ranks = range(PAGES)
    views = entries = 0
    with open(path, "wb") as handle:
        for _ in range(bodies):
            chosen: set[int] = set()
            while len(chosen) < MULTI_PAGES:
                chosen.update(rng.choices(ranks, cum_weights=cum, k=MULTI_PAGES - len(chosen)))
            body = {}
            for rank in chosen:
                counts = {stamp: rng.randint(1, MULTI_MAX_COUNT) for stamp in stamps}
                views += sum(counts.values())
                entries += len(counts)
                body[page(rank)] = counts
            handle.write(orjson.dumps(body) + b"\n")
    return {"bodies": bodies, "entries_per_body": MULTI_PAGES * MULTI_HOURS, "views_per_entry": views / entries, "bytes": path.stat().st_size}


def _iso(epoch: int) -> str:
    return format_utc(from_epoch(epoch))


def backlog_by_partition(count: int, num_partitions: int, rng: random.Random, hours: int = 20) -> dict[int, list[tuple[int, int]]]:
    """`count` single views as (page rank, hour epoch), grouped by the partition of their page."""
    now_hour = hour_start_epoch(utc_now())
    partition_of = [partition_for(page(rank), num_partitions) for rank in range(PAGES)]
    ranks = rng.choices(range(PAGES), cum_weights=zipf_cum_weights(), k=count)
    by_partition: dict[int, list[tuple[int, int]]] = {p: [] for p in range(num_partitions)}
    for rank in ranks:
        by_partition[partition_of[rank]].append((rank, now_hour - rng.randrange(hours) * HOUR))
    return by_partition


def backlog_bodies(views: list[tuple[int, int]]) -> Iterator[bytes]:
    """Version-1 messages of one view each, with fresh ids, encoded as they are published."""
    for rank, hour in views:
        yield messages.encode(messages.new_message_id(), [(page(rank), hour, 1)])

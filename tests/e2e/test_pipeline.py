"""Through HTTP, queues, workers, database and report: exact counts."""
from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from common.partitioning import partition_for
from tests.helpers import hour_ago, queue_depths, total_views, views_by_page_hour, wait_for


def test_single_and_multi_are_counted_exactly_and_reported(settings, start_api, start_worker, engine):
    api = start_api()
    start_worker()
    hour = hour_ago(3)
    for _ in range(3):
        assert api.post("/page-views/single", {"page": "example.com/a", "timestamp": hour}).status_code == 202
    response = api.post("/page-views/multi", {"example.com/a": {hour: 5}, "example.com/b": {hour: 7, hour_ago(2): 1}})
    assert response.status_code == 202
    assert response.json() == {"accepted": 13}

    wait_for(lambda: total_views(engine) == 16, what="16 views in the database")
    report = api.get("/report", params={"page": "example.com/a"}).json()["data"]
    assert [row["v"] for row in report if row["v"]] == [8]
    assert next(row for row in report if row["v"])["t"] == hour


def test_concurrent_mix_of_single_and_multi_is_exact(settings, start_api, start_worker, engine):
    api = start_api()
    start_worker()
    rng = random.Random(7)
    pages = [f"example.com/page{i}" for i in range(40)]
    hours = [hour_ago(h) for h in range(1, 6)]
    expected: Counter = Counter()
    requests_to_send = []
    for _ in range(300):
        if rng.random() < 0.5:
            page, hour = rng.choice(pages), rng.choice(hours)
            requests_to_send.append(("/page-views/single", {"page": page, "timestamp": hour}))
            expected[(page, hour)] += 1
        else:
            body: dict = {}
            for page in rng.sample(pages, 5):
                body[page] = {hour: rng.randint(1, 50) for hour in rng.sample(hours, 2)}
                for hour, count in body[page].items():
                    expected[(page, hour)] += count
            requests_to_send.append(("/page-views/multi", body))

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda r: api.post(*r).status_code, requests_to_send))
    assert statuses.count(202) == len(requests_to_send)

    total = sum(expected.values())
    wait_for(lambda: total_views(engine) == total, timeout=30, what=f"{total} views")
    stored = {(page, hour.strftime("%Y-%m-%dT%H:%M:%SZ")): views for (page, hour), views in views_by_page_hour(engine).items()}
    assert stored == dict(expected)
    assert all(depth == 0 for depth in queue_depths(settings).values())


def test_a_page_always_lands_in_the_same_queue(settings, start_api):
    api = start_api()  # no worker: messages stay in their queues where we can count them
    pages = ["example.com/x", "example.com/y", "例え.jp/ページ"]
    for _ in range(3):
        for page in pages:
            assert api.post("/page-views/single", {"page": page}).status_code == 202
    expected = Counter(settings.queue_prefix + f".p{partition_for(page, settings.num_partitions)}" for page in pages for _ in range(3))
    depths = wait_for(lambda: (d := queue_depths(settings)) and {k: v for k, v in d.items() if v} == dict(expected) and d, what="messages in their partitions")
    assert sum(depths.values()) == 9

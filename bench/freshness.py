"""The freshness scenario: how long after its 202 a view can be read from the database."""
from __future__ import annotations

import hashlib
import statistics
import threading
import time
import uuid
from typing import Any

import requests
from sqlalchemy import text

from bench.context import Run

RATE_PER_S = 20
POLL_EVERY_S = 0.005
GIVE_UP_S = 10.0
WARM_UP_VIEWS = 5

# The check the brief asks for (page_key = md5(:p)::uuid AND page = :p), for every pending
# probe at once: one statement per poll however many probes wait.
VISIBLE = text(
    """
    SELECT p.page FROM unnest(CAST(:keys AS uuid[]), CAST(:pages AS text[])) AS p(key, page)
    WHERE EXISTS (SELECT 1 FROM page_views v WHERE v.page_key = p.key AND v.page = p.page)
    """
)


class Poller:
    """One thread polls every POLL_EVERY_S for the rows of all pending probes."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._lock = threading.Lock()
        self._pending: dict[str, float] = {}  # page -> monotonic time its 202 arrived
        self.latencies_ms: dict[str, float] = {}
        self.polls = 0
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="bench-freshness", daemon=True)

    def start(self) -> "Poller":
        self._thread.start()
        return self

    def add(self, page: str, answered_at: float) -> None:
        with self._lock:
            self._pending[page] = answered_at

    def waiting(self) -> int:
        with self._lock:
            return len(self._pending)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        try:
            with self._run.engine.connect() as connection:
                while not self._stop.is_set():
                    with self._lock:
                        pending = dict(self._pending)
                    if pending:
                        # The statement's snapshot is taken as it starts: a row it sees was
                        # visible then, and the poll before (POLL_EVERY_S earlier) did not see it.
                        asked_at = time.monotonic()
                        pages = list(pending)
                        found = connection.execute(VISIBLE, {"keys": [_page_key(p) for p in pages], "pages": pages}).scalars().all()
                        connection.commit()
                        self.polls += 1
                        with self._lock:
                            for page in found:
                                self.latencies_ms[page] = (asked_at - self._pending.pop(page)) * 1000
                    self._stop.wait(POLL_EVERY_S)
        except BaseException as exc:
            self.error = exc


def _page_key(page: str) -> str:
    return str(uuid.UUID(hashlib.md5(page.encode("utf-8")).hexdigest()))


def freshness(run: Run) -> dict[str, Any]:
    settings = run.settings_for("freshness")
    run.reset_tables()
    api = run.start_api(settings)
    workers = run.start_workers(settings)
    poller = Poller(run)
    session = requests.Session()
    url = f"http://127.0.0.1:{settings.port}/page-views/single"
    prefix = f"fresh/{run.run_id}/"
    try:
        run.wait_consuming(settings, workers)
        poller.start()
        # Warm-up (not measured): the first views open connections and create today's partition.
        _probe(session, url, f"{prefix}warm-up/", range(WARM_UP_VIEWS), poller, interval=1 / RATE_PER_S)
        _wait_settled(poller)
        poller.latencies_ms.clear()
        probes = run.durations.freshness_s * RATE_PER_S
        _probe(session, url, prefix, range(probes), poller, interval=1 / RATE_PER_S)
        _wait_settled(poller)
    finally:
        poller.stop()
        run.stop(api, *workers)
        run.delete_topology(settings)
    if poller.error is not None:
        raise RuntimeError(f"polling failed: {poller.error}") from poller.error
    latencies = sorted(poller.latencies_ms.values())
    limit = settings.flush_interval_ms + 200
    return {
        "probes": probes,
        "rate_per_s": RATE_PER_S,
        "seen": len(latencies),
        "never_seen": probes - len(latencies),
        "median_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p90_ms": round(_percentile(latencies, 90), 1) if latencies else None,
        "p99_ms": round(_percentile(latencies, 99), 1) if latencies else None,
        "max_ms": round(latencies[-1], 1) if latencies else None,
        "flush_interval_ms": settings.flush_interval_ms,
        "target_median_ms": limit,
        "polls": poller.polls,
    }


def _probe(session: requests.Session, url: str, prefix: str, numbers: range, poller: Poller, interval: float) -> None:
    """One view at a time to a fresh page, every `interval` seconds."""
    next_at = time.monotonic()
    for number in numbers:
        page = f"{prefix}{number}"
        response = session.post(url, json={"page": page}, timeout=10)
        answered_at = time.monotonic()
        if response.status_code != 202:
            raise RuntimeError(f"freshness probe refused: {response.status_code} {response.text}")
        poller.add(page, answered_at)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))


def _wait_settled(poller: Poller) -> None:
    deadline = time.monotonic() + GIVE_UP_S
    while poller.waiting() and time.monotonic() < deadline:
        time.sleep(0.05)


def _percentile(sorted_values: list[float], percent: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, -(-len(sorted_values) * percent // 100))
    return sorted_values[int(rank) - 1]

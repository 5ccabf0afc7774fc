"""A database that accepts connections and never answers does not delay ingestion (issue 15).

Under gevent workers one process serves every request on one hub. psycopg2 is C, so
monkey-patching does not reach its sockets: without the wait callback installed in each
worker (common.db.make_psycopg_cooperative), a report connecting to a silent server
would block the hub, and every ingest request of the process would wait with it.
The silent server here is a real TCP listener that accepts and then says nothing.

Under API_WORKER_CLASS=gthread the same test fails: reports hanging on the database hold
every one of the API_THREADS threads, and ingest requests queue behind them. That is one
of the two reasons gevent is the default (the other: it measured faster; BENCHMARKS.md).
"""
from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.helpers import hour_ago, total_views, wait_for

REPORTS = 12
VIEWS = 60
# Generous for a shared, busy machine; a blocked hub would cost connect_timeout (3 s) per report.
FAST_S = 1.0


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never reads or writes: a database that hangs."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self._listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self._listener.close()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()


def test_reports_hanging_on_a_silent_database_do_not_delay_ingestion(settings, start_api, start_worker, engine, silent_server):
    silent_url = f"postgresql://postgres@127.0.0.1:{silent_server.port}/pageviews"
    api = start_api(ready_path="/health", database_url=silent_url, api_worker_class="gevent")
    start_worker()  # the workers write to the real database
    hour = hour_ago(1)

    with ThreadPoolExecutor(max_workers=REPORTS) as pool:
        report_url = f"{api.base_url}/report?page=example.com/slow"
        reports = [pool.submit(requests.get, report_url, timeout=30) for _ in range(REPORTS)]
        wait_for(lambda: len(silent_server.accepted) >= REPORTS // 2, what="reports connecting to the silent database")

        slowest = 0.0
        for number in range(VIEWS):
            started = time.monotonic()
            response = api.post("/page-views/single", {"page": f"example.com/fast{number % 7}", "timestamp": hour})
            slowest = max(slowest, time.monotonic() - started)
            assert response.status_code == 202, response.text
        still_hanging = sum(not report.done() for report in reports)
        answers = [report.result() for report in reports]

    assert still_hanging > 0, "the reports were answered before ingestion ended: the test proved nothing"
    assert slowest < FAST_S, f"a single view took {slowest:.2f} s while reports hung on the database"
    # The connect is still bounded (connect_timeout), so the reports end as 503 database_unavailable.
    assert {answer.status_code for answer in answers} == {503}
    assert {answer.json()["error"]["code"] for answer in answers} == {"database_unavailable"}
    wait_for(lambda: total_views(engine) == VIEWS, what=f"{VIEWS} views counted")

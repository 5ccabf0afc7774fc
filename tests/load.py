"""A load of real HTTP requests for fault tests, with an exact ledger of what was accepted.

Two kinds of client run side by side:
- keyed: every request carries a unique Idempotency-Key and is retried on 503 or a
  connection error until it is accepted (what a careful client does). Each such request
  must end up counted exactly once, whatever failed in between.
- plain: no key, no retry. Its 2xx views must be counted exactly once; its failed
  requests may or may not have been counted (the client was told to retry).
"""
from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import requests

from tests.helpers import hour_ago


@dataclass
class Ledger:
    accepted: Counter = field(default_factory=Counter)  # (page, hour) -> views answered 2xx
    uncertain: Counter = field(default_factory=Counter)  # views of plain requests that failed
    requests_sent: int = 0
    accepted_requests: int = 0
    retries: int = 0
    failures: Counter = field(default_factory=Counter)  # status or error name -> how many
    failure_times: list = field(default_factory=list)  # time.monotonic() of each failed attempt
    gave_up: int = 0  # keyed requests never accepted before the deadline
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def accepted_views(self) -> int:
        return sum(self.accepted.values())

    @property
    def uncertain_views(self) -> int:
        return sum(self.uncertain.values())


class LoadGenerator:
    def __init__(self, base_url: str, *, threads: int = 6, plain_share: float = 0.3, multi_share: float = 0.4, seed: int = 1, pages: int = 200) -> None:
        self.base_url = base_url
        self.ledger = Ledger()
        self._threads = threads
        self._plain_share = plain_share
        self._multi_share = multi_share
        self._pages = [f"example.com/load/{index}" for index in range(pages)]
        self._hours = [hour_ago(h) for h in range(1, 7)]
        self._seed = seed
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._budget: int | None = None
        self._budget_lock = threading.Lock()

    def start(self, max_requests: int | None = None) -> "LoadGenerator":
        self._budget = max_requests
        for index in range(self._threads):
            thread = threading.Thread(target=self._run, args=(random.Random(self._seed * 1000 + index),), daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def stop(self, timeout: float = 120.0) -> Ledger:
        self._stop.set()
        return self.join(timeout)

    def join(self, timeout: float = 120.0) -> Ledger:
        deadline = time.monotonic() + timeout
        for thread in self._workers:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._workers):
            raise AssertionError("load generator threads did not finish")
        return self.ledger

    def _take_budget(self) -> bool:
        with self._budget_lock:
            if self._budget is None:
                return True
            if self._budget <= 0:
                return False
            self._budget -= 1
            return True

    def _run(self, rng: random.Random) -> None:
        session = requests.Session()
        while not self._stop.is_set() and self._take_budget():
            path, body, views = self._request(rng)
            if rng.random() < self._plain_share:
                self._send_plain(session, path, body, views)
            else:
                self._send_keyed(session, path, body, views)

    def _request(self, rng: random.Random) -> tuple[str, dict, Counter]:
        if rng.random() >= self._multi_share:
            page, hour = rng.choice(self._pages), rng.choice(self._hours)
            return "/page-views/single", {"page": page, "timestamp": hour}, Counter({(page, hour): 1})
        body: dict = {}
        views: Counter = Counter()
        for page in rng.sample(self._pages, 10):
            body[page] = {hour: rng.randint(1, 9) for hour in rng.sample(self._hours, 2)}
            views.update({(page, hour): count for hour, count in body[page].items()})
        return "/page-views/multi", body, views

    def _post(self, session: requests.Session, path: str, body: dict, headers: dict | None = None) -> int | str:
        try:
            return session.post(self.base_url + path, json=body, headers=headers, timeout=10).status_code
        except requests.RequestException as exc:
            return type(exc).__name__

    def _send_plain(self, session: requests.Session, path: str, body: dict, views: Counter) -> None:
        outcome = self._post(session, path, body)
        with self.ledger.lock:
            self.ledger.requests_sent += 1
            if outcome == 202:
                self.ledger.accepted.update(views)
                self.ledger.accepted_requests += 1
            else:
                self.ledger.uncertain.update(views)
                self.ledger.failures[outcome] += 1
                self.ledger.failure_times.append(time.monotonic())

    def _send_keyed(self, session: requests.Session, path: str, body: dict, views: Counter) -> None:
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        deadline = time.monotonic() + 90
        with self.ledger.lock:
            self.ledger.requests_sent += 1
        while True:
            outcome = self._post(session, path, body, headers)
            if outcome == 202:
                with self.ledger.lock:
                    self.ledger.accepted.update(views)
                    self.ledger.accepted_requests += 1
                return
            with self.ledger.lock:
                self.ledger.failures[outcome] += 1
                self.ledger.failure_times.append(time.monotonic())
                self.ledger.retries += 1
            if outcome not in (503, "ConnectionError", "ReadTimeout") or time.monotonic() > deadline:
                with self.ledger.lock:
                    self.ledger.gave_up += 1
                    self.ledger.uncertain.update(views)
                return
            time.sleep(0.2)  # a client's back-off before retrying, not a wait for correctness

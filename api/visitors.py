"""Visitor ids: who is the same visitor today, without cookies and without keeping who they are.

visitor id = BLAKE2b-64 keyed with the salt of the current UTC day, over
``site + "\\n" + client_ip + "\\n" + user_agent``, read as a signed big-endian int64
(DESIGN.md). So one person is one visitor per site and day, a new one the next day and on
another site, and once a day's salt is deleted (after two days) no id can be linked back to
an address: the hash is keyed, so trying every IPv4 address needs the salt.

Salts are random, created by whichever API process needs one first, shared through
PostgreSQL (common/salts.py) and cached here per day. The day is the UTC day of the moment
the view is received, the same moment that gives its hour.
"""
from __future__ import annotations

import hashlib
import threading
from datetime import date, datetime
from typing import Callable

from common.salts import SALT_BYTES

DIGEST_BYTES = 8


def visitor_id(salt: bytes, site: str, client_ip: str, user_agent: str) -> int:
    digest = hashlib.blake2b(f"{site}\n{client_ip}\n{user_agent}".encode("utf-8", "surrogatepass"), digest_size=DIGEST_BYTES, key=salt).digest()
    return int.from_bytes(digest, "big", signed=True)


class DailySalts:
    """The salt of a moment's UTC day, loaded once per day and process, thread-safe.

    `load(day)` returns the salt of that day, creating it if needed (the salt store).
    Holding only the current day's salt means a process forgets yesterday's at midnight.
    """

    def __init__(self, load: Callable[[date], bytes]) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._day: date | None = None
        self._salt = b""

    def salt_at(self, moment: datetime) -> bytes:
        day = moment.date()  # moments are UTC (common.timeutil.utc_now)
        with self._lock:
            if day != self._day:
                salt = self._load(day)
                if len(salt) != SALT_BYTES:
                    raise ValueError(f"the salt of {day} has {len(salt)} bytes, expected {SALT_BYTES}")
                self._day, self._salt = day, salt
            return self._salt

"""Visitor ids (a keyed hash per day and site) and the daily salt cache with an injected loader."""
from __future__ import annotations

import hashlib
import threading
from datetime import date, datetime, timezone

import pytest

from api.visitors import DailySalts, visitor_id

UTC = timezone.utc
SALT_A = bytes(range(32))
SALT_B = bytes(range(1, 33))
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"


def test_visitor_id_is_blake2b_64_of_site_ip_and_agent_as_signed_big_endian() -> None:
    expected = hashlib.blake2b(f"example.com\n203.0.113.7\n{UA}".encode(), digest_size=8, key=SALT_A).digest()
    assert visitor_id(SALT_A, "example.com", "203.0.113.7", UA) == int.from_bytes(expected, "big", signed=True)


def test_visitor_id_is_stable_within_a_day() -> None:
    assert visitor_id(SALT_A, "example.com", "203.0.113.7", UA) == visitor_id(SALT_A, "example.com", "203.0.113.7", UA)


def test_visitor_id_changes_across_days_sites_addresses_and_agents() -> None:
    base = visitor_id(SALT_A, "example.com", "203.0.113.7", UA)
    assert visitor_id(SALT_B, "example.com", "203.0.113.7", UA) != base
    assert visitor_id(SALT_A, "example.org", "203.0.113.7", UA) != base
    assert visitor_id(SALT_A, "example.com", "203.0.113.8", UA) != base
    assert visitor_id(SALT_A, "example.com", "203.0.113.7", UA + " Edg/120") != base


def test_fields_cannot_run_into_each_other() -> None:
    # Hosts and addresses contain no newline, so only the agent (last) is free text.
    assert visitor_id(SALT_A, "example.com", "1.2.3.4", "x") != visitor_id(SALT_A, "example.com", "1.2.3.4x", "")


def test_visitor_ids_are_signed_64_bit() -> None:
    ids = [visitor_id(SALT_A, "example.com", f"10.0.{i // 256}.{i % 256}", UA) for i in range(2000)]
    assert all(-(2**63) <= v < 2**63 for v in ids)
    assert any(v < 0 for v in ids) and any(v > 0 for v in ids)
    assert len(set(ids)) == len(ids)


def test_visitor_id_accepts_any_user_agent_text() -> None:
    assert isinstance(visitor_id(SALT_A, "example.com", "::1", "agent \udcff é"), int)


class Loader:
    """Stands in for the salt store: a fresh salt per day, counting loads."""

    def __init__(self) -> None:
        self.loads: list[date] = []

    def __call__(self, day: date) -> bytes:
        self.loads.append(day)
        return bytes([day.day]) * 32


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, second, micro, tzinfo=UTC)


def test_salt_is_loaded_once_per_day() -> None:
    load = Loader()
    salts = DailySalts(load)
    assert salts.salt_at(at(1, 0)) == salts.salt_at(at(1, 12)) == salts.salt_at(at(1, 23, 59, 59, 999_999))
    assert load.loads == [date(2026, 12, 1)]


def test_salt_rotates_at_midnight_utc() -> None:
    load = Loader()
    salts = DailySalts(load)
    before = salts.salt_at(at(1, 23, 59, 59, 999_999))
    after = salts.salt_at(at(2, 0))
    assert before != after
    assert load.loads == [date(2026, 12, 1), date(2026, 12, 2)]


def test_same_visitor_is_new_the_next_day() -> None:
    salts = DailySalts(Loader())
    today = visitor_id(salts.salt_at(at(1)), "example.com", "203.0.113.7", UA)
    assert visitor_id(salts.salt_at(at(1, 23)), "example.com", "203.0.113.7", UA) == today
    assert visitor_id(salts.salt_at(at(2, 0)), "example.com", "203.0.113.7", UA) != today


def test_a_salt_of_the_wrong_size_is_refused() -> None:
    salts = DailySalts(lambda day: b"short")
    with pytest.raises(ValueError, match="32"):
        salts.salt_at(at(1))


def test_threads_on_a_new_day_load_once() -> None:
    load = Loader()
    salts = DailySalts(load)
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(salts.salt_at(at(3)))) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and load.loads == [date(2026, 12, 3)]

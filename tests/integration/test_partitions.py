"""page_views_ensure_partition under concurrency: many writers asking for the same new day at once."""
from __future__ import annotations

import threading
from datetime import date, timedelta

from sqlalchemy import text


def test_concurrent_callers_create_a_day_once_without_errors(engine):
    for round_ in range(5):
        day = date(2031, 1, 1) + timedelta(days=round_)
        ready = threading.Barrier(6)
        results, errors = [], []

        def ensure() -> None:
            try:
                with engine.begin() as connection:
                    connection.execute(text("SELECT to_regclass(:name)"), {"name": f"page_views_{day:%Y%m%d}"})  # warm the cache
                    ready.wait()
                    results.append(connection.execute(text("SELECT page_views_ensure_partition(:day)"), {"day": day}).scalar())
            except Exception as exc:  # collected for the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=ensure) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(results) == [False] * 5 + [True]

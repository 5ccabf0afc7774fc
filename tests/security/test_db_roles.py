"""Each PostgreSQL role can do its job, and is refused (a real `permission denied`) everything else."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from common import db
from common.db import driver_url
from common.db_roles import API, CLEANER, WORKER, role_url
from common.timeutil import utc_now
from tests.helpers import hour_ago, total_views, wait_for
from worker.cleaner import Cleaner

INSUFFICIENT_PRIVILEGE = "42501"


def run_as(database_url: str, role: str, sql: str) -> None:
    engine = create_engine(driver_url(role_url(database_url, role)))
    try:
        with engine.begin() as connection:
            connection.execute(text(sql))
    finally:
        engine.dispose()


REFUSED = [
    (API, "INSERT INTO page_views (page, view_hour, shard, views) VALUES ('a', now(), 0, 1)"),
    (API, "UPDATE page_views SET views = views + 1"),
    (API, "DELETE FROM page_views"),
    (API, "SELECT * FROM applied_messages"),
    (API, "DELETE FROM visitor_salts"),
    (API, "SELECT page_views_ensure_partition(current_date + 400)"),
    (WORKER, "DELETE FROM page_views"),
    (WORKER, "DELETE FROM applied_messages"),
    (WORKER, "SELECT * FROM visitor_salts"),
    (WORKER, "DROP TABLE page_views"),
    (WORKER, "TRUNCATE page_views"),
    (WORKER, "CREATE TABLE intruder (x int)"),
    (CLEANER, "INSERT INTO applied_messages (id) VALUES (gen_random_uuid())"),
    (CLEANER, "UPDATE applied_messages SET applied_at = now()"),
    (CLEANER, "INSERT INTO visitor_salts (day, salt) VALUES (current_date, decode(repeat('00', 32), 'hex'))"),
    (CLEANER, "DROP TABLE applied_messages"),
    (CLEANER, "DROP TABLE visitor_salts"),
]


@pytest.mark.parametrize("role, sql", REFUSED, ids=[f"{role}: {sql[:40]}" for role, sql in REFUSED])
def test_each_role_is_refused_what_it_must_not_do(database_url, role, sql):
    with pytest.raises(ProgrammingError) as refused:
        run_as(database_url, role, sql)
    assert refused.value.orig.pgcode == INSUFFICIENT_PRIVILEGE, refused.value


def test_roles_and_grants_apply_again_harmlessly(database_url):
    db.migrate(database_url)  # each upgrade re-applies them; nothing to upgrade, nothing fails
    run_as(database_url, API, "SELECT count(*) FROM page_views")


def test_the_whole_system_runs_as_its_roles(settings, start_api, start_worker, engine, database_url):
    """API, worker and cleaner each connect as their own role and still do all of their job."""
    api = start_api(database_url=role_url(database_url, API))
    start_worker(database_url=role_url(database_url, WORKER))
    # A day without a partition yet: the worker creates it through the SECURITY DEFINER function.
    view_hour = hour_ago(29 * 24)
    drop_partition_if_present(engine, date.fromisoformat(view_hour[:10]))
    body = {"example.com/a": {view_hour: 4}}
    assert api.post("/page-views/multi", body).status_code == 202
    wait_for(lambda: total_views(engine) == 4, what="4 views written by pageviews_worker")
    report = api.get("/report", params={"page": "example.com/a", "from": view_hour, "to": hour_ago(29 * 24 - 1)}).json()["data"]
    assert [row["v"] for row in report] == [4]

    cleaner_engine = db.make_engine(role_url(database_url, CLEANER), application_name="pageviews-test-cleaner", pool_size=2)
    try:
        expired_day = utc_now().date() - timedelta(days=settings.retention_days + 3)
        run_as(database_url, WORKER, f"SELECT page_views_ensure_partition(DATE '{expired_day}')")
        report = Cleaner(settings, cleaner_engine).run()
    finally:
        cleaner_engine.dispose()
    assert report is not None and report.partitions_dropped >= 1
    assert not partition_exists(engine, expired_day)
    assert total_views(engine) == 4


def partition_exists(engine, day: date) -> bool:
    with engine.connect() as connection:
        return bool(connection.execute(text("SELECT page_views_has_partition(:name)"), {"name": f"page_views_{day:%Y%m%d}"}).scalar())


def drop_partition_if_present(engine, day: date) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS page_views_{day:%Y%m%d}")

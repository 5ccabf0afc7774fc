"""Reports read from a PostgreSQL streaming replica (REPORT_DATABASE_URL), and from the primary while it is down.

Each test makes its own replica of the local PostgreSQL with scripts/pg-replica.sh
(pg_createcluster + pg_basebackup, on a port of its own) and drops it at the end.
"""
from __future__ import annotations

import pytest
import sqlalchemy
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from common.db import REPLICA_RECHECK_S
from tests.exactness import drain
from tests.helpers import hour_ago, total_views, wait_for

pytestmark = [pytest.mark.fault, pytest.mark.cluster, pytest.mark.timeout(480)]

PAGE = "example.com/replicated"
# The replica replays the WAL of the whole server, other people's tests included; on a busy
# machine it can trail the primary by many seconds.
REPLAY_TIMEOUT_S = 90


@pytest.fixture
def replica_url(pg_replica, database_url) -> str:
    """This test run's database, on the replica."""
    return make_url(database_url).set(host="127.0.0.1", port=pg_replica.port).render_as_string(hide_password=False)


@pytest.fixture
def replica_engine(replica_url):
    # No pool: the replica is stopped and started under it.
    created = sqlalchemy.create_engine(make_url(replica_url).set(drivername="postgresql+psycopg2"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    yield created
    created.dispose()


def reported(api) -> int:
    response = api.get("/report", params={"page": PAGE})
    assert response.status_code == 200, response.text
    return sum(hour["v"] for hour in response.json()["data"])


def send(api, views: int) -> None:
    response = api.post("/page-views/multi", {PAGE: {hour_ago(1): views}})
    assert response.status_code == 202, response.text


def replica_total(replica_engine) -> int:
    with replica_engine.connect() as connection:
        return int(connection.execute(text("SELECT coalesce(sum(views), 0) FROM page_views WHERE page = :p"), {"p": PAGE}).scalar())


def api_connections_on(replica_engine) -> int:
    with replica_engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pageviews-api-reports'")).scalar())


def test_reports_are_read_from_the_replica(settings, replica_url, replica_engine, start_api, start_worker, engine):
    api = start_api(report_database_url=replica_url)
    start_worker()
    send(api, 5)
    drain(api, settings, engine)
    wait_for(lambda: replica_total(replica_engine) == 5, timeout=REPLAY_TIMEOUT_S, interval=0.2, what="the replica replaying the counts")
    assert reported(api) == 5
    assert api_connections_on(replica_engine) >= 1  # the API's report connection is on the replica

    # Proof by staleness: with replay paused, the primary moves on and the report does not.
    with replica_engine.connect() as connection:
        connection.execute(text("SELECT pg_wal_replay_pause()"))
    try:
        send(api, 7)
        wait_for(lambda: total_views(engine, PAGE) == 12, what="the counts on the primary")
        assert reported(api) == 5
    finally:
        with replica_engine.connect() as connection:
            connection.execute(text("SELECT pg_wal_replay_resume()"))
    wait_for(lambda: reported(api) == 12, timeout=REPLAY_TIMEOUT_S, interval=0.2, what="the report catching up once replay resumes")


def test_reports_fall_back_to_the_primary_while_the_replica_is_down(settings, pg_replica, replica_url, replica_engine, start_api, start_worker, engine):
    api = start_api(report_database_url=replica_url)
    start_worker()
    send(api, 3)
    drain(api, settings, engine)
    wait_for(lambda: reported(api) == 3, timeout=REPLAY_TIMEOUT_S, interval=0.2, what="the report from the replica")

    pg_replica.run("stop")
    send(api, 4)
    wait_for(lambda: total_views(engine, PAGE) == 7, what="the counts on the primary")
    assert reported(api) == 7  # from the primary: the replica is down
    assert "report replica unavailable; reading reports from the primary" in api.output()

    pg_replica.run("start")
    # Tried again after REPLICA_RECHECK_S; the API's connection shows up on the replica.
    wait_for(lambda: reported(api) == 7 and api_connections_on(replica_engine) >= 1, timeout=REPLICA_RECHECK_S + REPLAY_TIMEOUT_S, interval=0.5,
             what="reports read from the replica again")
    assert "report replica answers again" in api.output()

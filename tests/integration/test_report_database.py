"""ReportDatabase: reads from the replica while it answers, from the primary (logged) while it does not."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from common import db
from tests.helpers import free_port

CURRENT_PORT = text("SELECT current_setting('port')::int")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def nowhere(database_url):
    """An engine for a server that is not there (nothing listens on its port)."""
    url = make_url(database_url).set(host="127.0.0.1", port=free_port()).render_as_string(hide_password=False)
    created = db.make_engine(url, application_name="pageviews-tests-replica", pool_size=1, pre_ping=False)
    yield created
    created.dispose()


def port_of(connection) -> int:
    return connection.execute(CURRENT_PORT).scalar()


def test_without_a_replica_reads_go_to_the_primary(engine):
    database = db.ReportDatabase(engine)
    assert database.reading_from == "primary"
    assert database.read(lambda c: c.execute(text("SELECT 1")).scalar()) == 1


def test_a_replica_that_answers_serves_the_reads(engine):
    replica_side: list[str] = []
    database = db.ReportDatabase(engine, engine)  # the same server twice: only which engine is used matters
    database.read(lambda c: replica_side.append(c.engine is engine) or 1)
    assert replica_side == [True] and database.reading_from == "replica"


def test_a_replica_that_is_down_falls_back_to_the_primary_then_is_tried_again(engine, nowhere, caplog):
    clock = Clock()
    database = db.ReportDatabase(engine, nowhere, clock=clock)
    primary_port = engine.connect().execute(CURRENT_PORT).scalar()
    with caplog.at_level(logging.INFO, logger="common.db"):
        assert database.read(port_of) == primary_port
        assert database.read(port_of) == primary_port  # set aside: straight to the primary, no second log line
        assert database.reading_from == "primary"
        clock.now += db.REPLICA_RECHECK_S
        assert database.reading_from == "replica"
        assert database.read(port_of) == primary_port  # tried again, still down
    warnings = [r for r in caplog.records if "report replica unavailable" in r.getMessage()]
    assert len(warnings) == 1, caplog.text


def test_errors_a_reconnect_cannot_cure_are_not_hidden_by_the_fallback(engine):
    database = db.ReportDatabase(engine, engine)
    with pytest.raises(Exception, match="no_such_table"):
        database.read(lambda c: c.execute(text("SELECT * FROM no_such_table")).all())
    assert database.reading_from == "replica"

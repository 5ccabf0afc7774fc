"""Least privilege in PostgreSQL: one role per kind of process, and exactly what each may do.

- ``pageviews_api`` reads (and creates the day's visitor salt);
- ``pageviews_worker`` adds counts and records message ids, and may create a day's
  partition through ``page_views_ensure_partition`` (which runs as its owner);
- ``pageviews_cleaner`` deletes what expires, merges shard rows and creates and drops day
  partitions. PostgreSQL lets only the owner of a partitioned table detach a partition,
  and the cleaner detaches CONCURRENTLY (so workers never wait on it): it therefore owns
  ``page_views``, its partitions and the partition function, and may create tables in
  the schema (a partition is a table), but owns nothing else.

Migrations run as the schema's owner; ``apply`` runs after every ``alembic upgrade``
(migrations/env.py), so it is idempotent: a table a later migration adds gets its grants
from ``GRANTS`` the next time, and a ``CREATE OR REPLACE`` of the partition function gets
back its SECURITY DEFINER. Roles are cluster-wide and created LOGIN without a password:
under password authentication nobody can log in as them until an operator sets one
(docker compose does; README, Security). ``statements()`` is the SQL the README shows.
"""
from __future__ import annotations

import logging

import sqlalchemy
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from common.logging import fields

log = logging.getLogger(__name__)

API, WORKER, CLEANER = "pageviews_api", "pageviews_worker", "pageviews_cleaner"
ROLES = (API, WORKER, CLEANER)
OWNED_BY_CLEANER = "page_views"
PARTITION_FUNCTION = "page_views_ensure_partition(date)"

# (role, privileges, table). INSERT ... ON CONFLICT DO UPDATE needs SELECT as well.
GRANTS: tuple[tuple[str, str, str], ...] = (
    (API, "SELECT", "page_views"),
    (API, "SELECT, INSERT", "visitor_salts"),
    (WORKER, "SELECT, INSERT, UPDATE", "page_views"),
    (WORKER, "SELECT, INSERT", "applied_messages"),
    (CLEANER, "SELECT, DELETE", "applied_messages"),
    (CLEANER, "SELECT, DELETE", "visitor_salts"),
    # Rollups (migration 0004): workers add late views to them, the cleaner builds and expires them.
    (API, "SELECT", "site_hours"),
    (API, "SELECT", "page_days"),
    (API, "SELECT", "rollup_days"),
    (WORKER, "SELECT, INSERT, UPDATE", "site_hours"),
    (WORKER, "SELECT, INSERT, UPDATE", "page_days"),
    (WORKER, "SELECT", "rollup_days"),
    (CLEANER, "SELECT, INSERT, UPDATE, DELETE", "site_hours"),
    (CLEANER, "SELECT, INSERT, UPDATE, DELETE", "page_days"),
    (CLEANER, "SELECT, INSERT, DELETE", "rollup_days"),
)


def statements(database: str, schema: str = "public") -> list[str]:
    """The SQL that gives each role its rights in one database (roles must exist)."""
    sql = [f'GRANT CONNECT ON DATABASE "{database}" TO {", ".join(ROLES)}']
    sql.append(f"GRANT USAGE ON SCHEMA {schema} TO {', '.join(ROLES)}")
    # CREATE TABLE ... PARTITION OF needs CREATE on the schema as well as owning the parent.
    sql.append(f"GRANT CREATE ON SCHEMA {schema} TO {CLEANER}")
    sql += [f"GRANT {privileges} ON {table} TO {role}" for role, privileges, table in GRANTS]
    sql += [
        f"ALTER TABLE {OWNED_BY_CLEANER} OWNER TO {CLEANER}",
        # ALTER TABLE ... OWNER does not recurse to partitions; partitions made later are
        # made by the function below, which runs as the cleaner, so the cleaner owns them.
        "DO $$\nDECLARE part regclass;\nBEGIN\n"
        f"    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = '{OWNED_BY_CLEANER}'::regclass LOOP\n"
        f"        EXECUTE 'ALTER TABLE ' || part::text || ' OWNER TO {CLEANER}';\n"
        "    END LOOP;\nEND $$",
        f"ALTER FUNCTION {PARTITION_FUNCTION} OWNER TO {CLEANER}",
        # SECURITY DEFINER with a fixed search_path: the worker may create a partition
        # without owning page_views, and cannot redirect the names the function uses.
        f"ALTER FUNCTION {PARTITION_FUNCTION} SECURITY DEFINER SET search_path = {schema}, pg_temp",
        f"REVOKE EXECUTE ON FUNCTION {PARTITION_FUNCTION} FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {PARTITION_FUNCTION} TO {WORKER}, {CLEANER}",
    ]
    return sql


def create_role_statement(role: str) -> str:
    return f"CREATE ROLE {role} LOGIN"


def apply(connection: Connection) -> None:
    """Create missing roles and (re)apply every grant, on the migration's connection."""
    for role in ROLES:
        _ensure_role(connection, role)
    database = connection.execute(sqlalchemy.text("SELECT current_database()")).scalar()
    schema = connection.execute(sqlalchemy.text("SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = 'page_views'::regclass")).scalar()
    for statement in statements(str(database), str(schema)):
        connection.exec_driver_sql(statement)


def _ensure_role(connection: Connection, role: str) -> None:
    exists = sqlalchemy.text("SELECT 1 FROM pg_roles WHERE rolname = :role")
    if connection.execute(exists, {"role": role}).scalar():
        return
    # Roles are shared by every database of the server: another migration (another test
    # run, another deployment) may create the same role between the check and here.
    savepoint = connection.begin_nested()
    try:
        connection.exec_driver_sql(create_role_statement(role))
        savepoint.commit()
        log.info("created database role", extra=fields(role=role))
    except sa_exc.DBAPIError as exc:
        savepoint.rollback()
        if getattr(exc.orig, "pgcode", None) not in ("42710", "23505"):  # duplicate_object, unique_violation
            raise


def role_url(url: str, role: str) -> str:
    """The same server and database as `url`, as `role` (no password: trust or ~/.pgpass).

    The convention `make run` and the tests use; deployments give each process its own
    DATABASE_URL with a password instead (docker-compose.yml).
    """
    from sqlalchemy.engine import make_url

    return make_url(url).set(username=role, password=None).render_as_string(hide_password=False)

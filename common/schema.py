"""The tables, as SQLAlchemy Core objects; Alembic migrations in migrations/ create them.

page_views holds hourly counts. ``page_key`` (md5 of the page, as a uuid) is what the
primary key indexes: a btree entry is limited to about 2.7 kB, and a 2048-character
page of CJK text is 6 kB, so the literal page cannot be the key. Operators still query
by ``page``; md5 collisions are negligible (2^-64 at four billion pages).

The table is range-partitioned by day on ``view_hour``, so that expiring a day is a
DROP TABLE instead of millions of row deletes.
"""
from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Computed,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import TIMESTAMP, UUID

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

PAGE_KEY_EXPRESSION = "md5(page)::uuid"

page_views = Table(
    "page_views",
    metadata,
    Column("page", Text, nullable=False),
    Column("page_key", UUID(as_uuid=False), Computed(PAGE_KEY_EXPRESSION, persisted=True), nullable=False),
    Column("view_hour", TIMESTAMP(timezone=True), nullable=False),
    Column("shard", SmallInteger, nullable=False),
    Column("views", BigInteger, nullable=False),
    PrimaryKeyConstraint("page_key", "view_hour", "shard"),
    postgresql_partition_by="RANGE (view_hour)",
)

applied_messages = Table(
    "applied_messages",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("applied_at", TIMESTAMP(timezone=True), nullable=False, server_default=text("now()")),
)

"""Visitors: the hll extension, a sketch per hourly row, and the daily salts of visitor ids

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Unique visitors are HyperLogLog sketches (Citus's ``hll`` extension) on each hourly row,
so visitors over any window are the union of its rows' sketches, never a sum. A union is
idempotent, which keeps a redelivered message from inflating visitors. ``visitors`` is NULL
on rows that only ever received views without visitors (``single`` and ``multi``).

Visitor ids are keyed hashes; their keys (one random salt per UTC day) live in
``visitor_salts`` and are deleted after two days, after which no id can be traced back.
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS hll")
    op.execute("ALTER TABLE page_views ADD COLUMN visitors hll")
    op.execute("COMMENT ON COLUMN page_views.visitors IS 'HLL sketch of the visitor ids counted in this row; NULL when none'")
    op.execute(
        """
        CREATE TABLE visitor_salts (
            day        date        NOT NULL,
            salt       bytea       NOT NULL CHECK (length(salt) = 32),
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_visitor_salts PRIMARY KEY (day)
        )
        """
    )
    op.execute("COMMENT ON TABLE visitor_salts IS 'Random key of the visitor-id hash for each UTC day; deleted after two days'")


def downgrade() -> None:
    op.execute("DROP TABLE visitor_salts")
    op.execute("ALTER TABLE page_views DROP COLUMN visitors")
    op.execute("DROP EXTENSION IF EXISTS hll")

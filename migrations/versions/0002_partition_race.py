"""page_views_ensure_partition: correct when several sessions create the same day at once

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

0001 checked for the partition with to_regclass(), which answers from a per-session
catalog cache. Taking an advisory lock does not refresh that cache, so a session that
waited for another creator still saw "missing" and failed with DuplicateTable. A query on
pg_inherits takes a fresh snapshot per statement and sees the committed partition. It
also only counts a table attached as a partition of page_views.
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The function of 0001 with its existence check as the only variable part.
ENSURE_PARTITION = """
CREATE OR REPLACE FUNCTION page_views_ensure_partition(day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    name text := 'page_views_' || to_char(day, 'YYYYMMDD');
BEGIN
    IF {exists} THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('page_views_partitions'));
    IF {exists} THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF page_views FOR VALUES FROM (%L) TO (%L)',
        name, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
    RETURN true;
END
$$
"""

HAS_PARTITION = """
CREATE FUNCTION page_views_has_partition(name text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'page_views'::regclass AND c.relname = name AND NOT i.inhdetachpending)
$$
"""


def upgrade() -> None:
    op.execute(HAS_PARTITION)
    op.execute(ENSURE_PARTITION.format(exists="page_views_has_partition(name)"))


def downgrade() -> None:
    op.execute(ENSURE_PARTITION.format(exists="to_regclass(name) IS NOT NULL"))
    op.execute("DROP FUNCTION page_views_has_partition(text)")

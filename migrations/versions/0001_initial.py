"""page_views partitioned by day, applied_messages for exactly-once, partition helper

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE page_views (
            page      text        NOT NULL,
            page_key  uuid        GENERATED ALWAYS AS (md5(page)::uuid) STORED,
            view_hour timestamptz NOT NULL,
            shard     smallint    NOT NULL,
            views     bigint      NOT NULL,
            CONSTRAINT pk_page_views PRIMARY KEY (page_key, view_hour, shard)
        ) PARTITION BY RANGE (view_hour)
        """
    )
    op.execute("COMMENT ON TABLE page_views IS 'Views per page and UTC hour; several rows (shards) per hour are summed by readers'")
    op.execute("COMMENT ON COLUMN page_views.page_key IS 'md5(page) as uuid: the indexed form of page (long pages exceed btree limits)'")
    # Creating a partition takes a strong lock on page_views, so it happens in its own
    # short transaction, serialised by an advisory lock so racing creators do not collide.
    op.execute(
        """
        CREATE FUNCTION page_views_ensure_partition(day date) RETURNS boolean
        LANGUAGE plpgsql AS $$
        DECLARE
            name text := 'page_views_' || to_char(day, 'YYYYMMDD');
        BEGIN
            IF to_regclass(name) IS NOT NULL THEN
                RETURN false;
            END IF;
            PERFORM pg_advisory_xact_lock(hashtext('page_views_partitions'));
            IF to_regclass(name) IS NOT NULL THEN
                RETURN false;
            END IF;
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF page_views FOR VALUES FROM (%L) TO (%L)',
                name, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
            RETURN true;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TABLE applied_messages (
            id         uuid        NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_applied_messages PRIMARY KEY (id)
        )
        """
    )
    op.execute("COMMENT ON TABLE applied_messages IS 'Ids of queue messages already counted; pruned by the cleaner after DEDUP_RETENTION_HOURS'")
    # BRIN: rows arrive in applied_at order, so a tiny index serves the cleaner's range deletes.
    op.execute("CREATE INDEX ix_applied_messages_applied_at ON applied_messages USING brin (applied_at)")


def downgrade() -> None:
    op.execute("DROP TABLE applied_messages")
    op.execute("DROP FUNCTION page_views_ensure_partition(date)")
    op.execute("DROP TABLE page_views")

"""Rollups for reports: views and visitors per site and hour, per page and closed UTC day

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Site-wide and top-N answers must not scan the hourly page rows (ten million of them for
30 days of a busy set of sites). Two rollups answer them instead (README "Reports"):

``site_hours`` (site, UTC hour, shard): written by the worker in the same statement,
and so the same transaction, as page_views, from the same rows: only the views of
messages not applied before, so it is exactly once with the same guarantees. Sharded
like page_views because the pages of one site are spread over all partitions, so every
worker writes a site's current hour. ``site_key`` is md5(site) as for page_key: a site
is up to 2048 characters. Pages without a site are stored under the site ``''``.

``page_days`` (UTC day, page): built by the cleaner for a closed day (ended more than
COMPACT_AFTER hours ago) from its hourly rows, in one transaction that also records the
day in ``rollup_days``. Readers use page_days only for days listed in rollup_days and
hourly rows for every other hour. Late views (timestamps up to RETENTION_DAYS old are
accepted) for a day already built are added to the rollup by the flush that adds them to
page_days, in the same transaction; see common/sql/rollup_locks.py LOCK_DAYS for why a build and such
a flush cannot miss each other.

``cum`` makes the top pages of a month cost two days, not thirty: it is the page's views
from the first day of its chain of consecutive built days through this day, so the views
of [a, b] are ``cum(b) - cum(a) + views(a)``. A page has a row on every built day after
its first (views 0 where none), so both rows exist. Building day D carries D-1's rows
forward; a late view for day d adds to ``views`` of d and to ``cum`` of every built day
from d on.

The rollups are not partitioned: a site-hour is one row per shard and a page-day one
row, so the cleaner expires them with batched deletes on an index.

Upgrading: stop the workers while this runs (views wait in their queues). The migration
fills site_hours from the page_views rows present; a worker of the old version flushing
meanwhile would add views that site_hours never sees.
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # common/sites.py site_of, in SQL; IMMUTABLE so generated columns may use it.
    op.execute(
        """
        CREATE FUNCTION page_site(page text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
            SELECT CASE WHEN strpos(page, '/') > 1 THEN split_part(page, '/', 1) ELSE '' END
        $$
        """
    )
    op.execute(
        """
        CREATE TABLE site_hours (
            site      text        NOT NULL,
            site_key  uuid        GENERATED ALWAYS AS (md5(site)::uuid) STORED,
            view_hour timestamptz NOT NULL,
            shard     smallint    NOT NULL,
            views     bigint      NOT NULL,
            visitors  hll,
            CONSTRAINT pk_site_hours PRIMARY KEY (site_key, view_hour, shard)
        )
        """
    )
    op.execute("CREATE INDEX ix_site_hours_view_hour ON site_hours (view_hour)")
    op.execute("COMMENT ON TABLE site_hours IS 'Views and visitors per site and UTC hour, written with page_views in the same flush; shards are summed'")
    op.execute(
        """
        CREATE TABLE page_days (
            day      date   NOT NULL,
            page     text   NOT NULL,
            page_key uuid   GENERATED ALWAYS AS (md5(page)::uuid) STORED,
            site_key uuid   GENERATED ALWAYS AS (md5(page_site(page))::uuid) STORED,
            views    bigint NOT NULL,
            cum      bigint NOT NULL,
            visitors hll,
            CONSTRAINT pk_page_days PRIMARY KEY (day, page_key)
        )
        """
    )
    # Top pages (of one site): a day's rows by index, the counts in it for index-only scans.
    op.execute("CREATE INDEX ix_page_days_site_key_day ON page_days (site_key, day) INCLUDE (page_key, views, cum)")
    op.execute("CREATE INDEX ix_page_days_day ON page_days (day) INCLUDE (page_key, views, cum)")
    op.execute("COMMENT ON TABLE page_days IS 'Views (and running views, cum) and visitors per page and closed UTC day; only days in rollup_days are complete'")
    op.execute(
        """
        CREATE TABLE rollup_days (
            day      date        NOT NULL,
            built_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_rollup_days PRIMARY KEY (day)
        )
        """
    )
    op.execute("COMMENT ON TABLE rollup_days IS 'UTC days whose page_days rows are complete; readers use page_days for these days only'")
    op.execute(
        """
        INSERT INTO site_hours (site, view_hour, shard, views, visitors)
        SELECT page_site(page), view_hour, 0, sum(views), hll_union_agg(visitors)
        FROM page_views GROUP BY 1, 2
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE rollup_days")
    op.execute("DROP TABLE page_days")
    op.execute("DROP TABLE site_hours")
    op.execute("DROP FUNCTION page_site(text)")

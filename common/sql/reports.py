"""What the report, pages and sites endpoints read."""
from __future__ import annotations

import functools

from sqlalchemy import TextClause, text

from common.sql.shared import PAGE_KEY, UNION_AGG

VISITORS = f"coalesce(round(hll_cardinality({UNION_AGG}))::bigint, 0)"


BUCKET_ROWS = {
    # page_key leads the primary key, so this is one index range scan per day partition
    # touched; `page = :page` keeps the answer exact even under an md5 collision.
    "page": f"page_views WHERE page_key = {PAGE_KEY} AND page = :page",
    "site": "site_hours WHERE site_key = CAST(md5(:site) AS uuid) AND site = :site",
    "all": "site_hours WHERE true",
}


@functools.lru_cache(maxsize=8)
def bucket_counts(rows: str, hourly: bool) -> TextClause:
    """Views and visitors per bucket and, in the row whose bucket is NULL, for the whole
    window (a union of sketches, not a sum). An hourly bucket is its UTC hour; otherwise
    it is the 1-based index of the bucket among :bounds, a PostgreSQL array literal of
    the sorted bucket starts (one text parameter: hundreds of bound timestamps cost
    more to send one by one than the query costs to run)."""
    bucket = "view_hour" if hourly else "width_bucket(view_hour, CAST(:bounds AS timestamptz[]))"
    return text(
        f"""
        SELECT bucket, sum(views)::bigint AS views, {VISITORS.format(column="visitors")} AS visitors
        FROM (SELECT {bucket} AS bucket, views, visitors
              FROM {BUCKET_ROWS[rows]} AND view_hour >= :start AND view_hour < :end) AS r
        GROUP BY ROLLUP (bucket)
        """
    )


# Ranked without sketches (an hll aggregate state per site made the planner sort and
# spill), then visitors for the sites listed only.
TOP_SITES = text(
    f"""
    WITH ranked AS (
        SELECT site_key, site, sum(views)::bigint AS views
        FROM site_hours WHERE view_hour >= :start AND view_hour < :end
        GROUP BY site_key, site
        ORDER BY views DESC, site COLLATE "C" LIMIT :limit
    )
    SELECT r.site, r.views,
           (SELECT {VISITORS.format(column="s.visitors")} FROM site_hours s
            WHERE s.site_key = r.site_key AND s.site = r.site AND s.view_hour >= :start AND s.view_hour < :end) AS visitors
    FROM ranked r ORDER BY r.views DESC, r.site COLLATE "C"
    """
)

COMPLETE_DAYS = text("SELECT day FROM rollup_days WHERE day >= :first AND day < :last ORDER BY day")


@functools.lru_cache(maxsize=64)
def top_pages(hour_ranges: int, of_site: bool) -> TextClause:
    """The :limit pages with the most views in the window. Its runs of consecutive complete
    days come from page_days, two rows per page and run: cum on the last day (:run_ends)
    plus views - cum on the first (:run_starts); its other hours from hourly rows
    (:from0/:to0, ... as literal ranges so that the planner prunes partitions). Ranked by
    page_key first (cheap, WITH TIES so that no tie at the edge is lost), then named,
    ordered by name, and only then given their visitors (:days, every complete day)."""
    ranges = " OR ".join(f"(view_hour >= :from{n} AND view_hour < :to{n})" for n in range(hour_ranges)) or "false"
    site_days = "AND site_key = CAST(md5(:site) AS uuid)" if of_site else ""
    site_hours = "AND starts_with(page, :site || '/')" if of_site else ""  # page_site(page) = :site, for a site without '/'
    days = "FROM page_days d WHERE d.day = ANY(CAST(:days AS date[])) AND d.page_key = n.page_key"
    hours = f"FROM page_views p WHERE p.page_key = n.page_key AND ({ranges})"
    return text(
        f"""
        WITH ranked AS (
            SELECT page_key, sum(views)::bigint AS views FROM (
                SELECT page_key, cum AS views FROM page_days WHERE day = ANY(CAST(:run_ends AS date[])) {site_days}
                UNION ALL
                SELECT page_key, views - cum FROM page_days WHERE day = ANY(CAST(:run_starts AS date[])) {site_days}
                UNION ALL
                SELECT page_key, views FROM page_views WHERE ({ranges}) {site_hours}
            ) AS parts
            GROUP BY page_key HAVING sum(views) > 0 ORDER BY views DESC FETCH FIRST :limit ROWS WITH TIES
        ), named AS (
            SELECT n.page_key, n.views, coalesce((SELECT d.page {days} LIMIT 1), (SELECT p.page {hours} LIMIT 1)) AS page
            FROM ranked n
        )
        SELECT n.page, n.views,
               (SELECT {VISITORS.format(column="v.visitors")} FROM (SELECT d.visitors {days} UNION ALL SELECT p.visitors {hours}) AS v) AS visitors
        FROM (SELECT * FROM named ORDER BY views DESC, page COLLATE "C" LIMIT :limit) AS n
        ORDER BY n.views DESC, n.page COLLATE "C"
        """
    )


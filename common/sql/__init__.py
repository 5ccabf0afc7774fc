"""Every SQL statement the application runs on its tables, one module per concern.

The migrations create the schema (migrations/versions/, the only description of it);
this package is what the running code says to it. page_views holds hourly counts keyed
by ``page_key`` (``shared`` says why), range-partitioned by day on ``view_hour`` so that
expiring a day is a DROP TABLE instead of millions of row deletes.

- ``shared``: the page key expression and the visitors sketch pieces the others spell.
- ``flush``: the worker's flush (applied ids, page_views, site_hours, late page_days rows)
  and the creation of the day partitions it writes to.
- ``rollup_locks``: the advisory locks on days, and the proof that a flush and a rollup
  build cannot miss each other.
- ``reports``: what the report, pages and sites endpoints read.
- ``cleaner``: the cleaner's lock, partitions, expiry, shard compaction and rollups.
- ``salts``: the daily visitor salts.

Every name is re-exported here, so callers write ``from common.sql import X``.
"""
from common.sql.cleaner import (
    BATCH,
    BUILD_DAY,
    CHOOSE_GROUPS,
    CLEAR_DAY,
    COUNT_GROUP_ROWS,
    DELETE_APPLIED_IDS,
    DELETE_EXPIRED_PAGE_DAYS,
    DELETE_EXPIRED_ROWS,
    DELETE_EXPIRED_SITE_HOURS,
    IS_BUILT,
    LIST_LEFTOVER_TABLES,
    LIST_PARTITIONS,
    MARK_BUILT,
    MERGE_SHARDS,
    SET_LOCK_TIMEOUT,
    TRY_LOCK,
    UNBUILT_DAYS,
    UNLOCK,
    UNMARK_EXPIRED_DAYS,
)
from common.sql.flush import (
    ADD_COUNTS,
    ADD_COUNTS_AND_VISITORS,
    BATCH_WITH_VISITORS,
    BATCH_WITHOUT_VISITORS,
    ENSURE_PARTITION,
    PARTITION_LOCK_TIMEOUT,
    RECORD_IDS_AFTER_LOCKING_DAYS,
)
from common.sql.reports import BUCKET_ROWS, COMPLETE_DAYS, TOP_SITES, VISITORS, bucket_counts, top_pages
from common.sql.rollup_locks import LOCK_DAY, LOCK_DAYS, ROLLUP_LOCK_CLASS
from common.sql.salts import DELETE_OLD_SALTS, INSERT_SALT, SELECT_SALT
from common.sql.shared import HLL_PARAMETERS, MERGE_VISITORS, PAGE_KEY, UNION_AGG, UNION_VISITORS

__all__ = [
    "ADD_COUNTS", "ADD_COUNTS_AND_VISITORS", "BATCH", "BATCH_WITHOUT_VISITORS", "BATCH_WITH_VISITORS", "BUCKET_ROWS",
    "BUILD_DAY", "CHOOSE_GROUPS", "CLEAR_DAY", "COMPLETE_DAYS", "COUNT_GROUP_ROWS", "DELETE_APPLIED_IDS",
    "DELETE_EXPIRED_PAGE_DAYS", "DELETE_EXPIRED_ROWS", "DELETE_EXPIRED_SITE_HOURS", "DELETE_OLD_SALTS",
    "ENSURE_PARTITION", "HLL_PARAMETERS", "INSERT_SALT", "IS_BUILT", "LIST_LEFTOVER_TABLES", "LIST_PARTITIONS",
    "LOCK_DAY", "LOCK_DAYS", "MARK_BUILT", "MERGE_SHARDS", "MERGE_VISITORS", "PAGE_KEY", "PARTITION_LOCK_TIMEOUT",
    "RECORD_IDS_AFTER_LOCKING_DAYS", "ROLLUP_LOCK_CLASS", "SELECT_SALT", "SET_LOCK_TIMEOUT", "TOP_SITES", "TRY_LOCK", "UNBUILT_DAYS",
    "UNION_AGG", "UNION_VISITORS", "UNLOCK", "UNMARK_EXPIRED_DAYS", "VISITORS", "bucket_counts", "top_pages",
]

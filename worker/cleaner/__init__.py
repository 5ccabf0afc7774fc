"""`python -m worker.cleaner`: keeps page_views small and the exactly-once bookkeeping bounded.

One run, in order, each step in short transactions so that workers writing at the same
time never wait long on the cleaner, and a stop request can end the run between two of
them:

1. take the cleaner's advisory lock: one cleaner at a time; a second one skips its run;
2. create the day partitions of today and the next PARTITIONS_AHEAD_DAYS days, so that
   workers rarely have to (creating a partition locks the whole table);
3. expire hours older than RETENTION_DAYS: whole days by detaching and dropping their
   partition, the day that contains the cutoff by deleting rows in batches;
   and the rollup rows (site_hours, page_days) of hours and days no longer whole inside it;
4. compact hours older than COMPACT_AFTER: merge each hour's shard rows (views and
   visitors sketches) into shard 0;
5. roll up each closed UTC day (ended more than COMPACT_AFTER hours ago) into page_days;
6. prune applied message ids older than DEDUP_RETENTION_HOURS;
7. delete visitor salts older than two days.

`--once` runs once (for cron). Without it the cleaner runs every CLEAN_INTERVAL seconds
until SIGTERM or SIGINT.
"""
from worker.cleaner.base import CLEANER_LOCK_KEY, RunReport
from worker.cleaner.cleaner import Cleaner
from worker.cleaner.cli import main

__all__ = ["CLEANER_LOCK_KEY", "Cleaner", "RunReport", "main"]

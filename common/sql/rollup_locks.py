"""The advisory locks on days that keep a flush and a rollup build from missing each other."""
from __future__ import annotations

from sqlalchemy import text

# Late views for a UTC day whose page_days rollup the cleaner has built must reach that
# rollup too (its views, and the running sum `cum` of every built day from it on), and a
# build must not miss a flush that committed views for its day or cum for the day before.
# Both take advisory locks on days: a flush shares those of every day from the first of
# its batch through today (one for a batch of today's views), from before it looks at
# rollup_days until it commits; the build of day D holds D-1 and D exclusively
# (LOCK_DAY, twice). Locks go in ascending day order, so none waits in a cycle. Under
# READ COMMITTED each statement sees what committed before it began, so:
# - a flush that locked first commits before the build's locks are granted; the build's
#   INSERT ... SELECT, a later statement, then reads its page_views rows and its cum at D-1;
# - a flush that asks while the build holds them waits for the build's commit; its
#   ADD_COUNTS, a later statement, then sees D in rollup_days and adds to D's row as well.
# A flush of views up to day D-2 only still touches cum at D-1, which is why it locks
# through today: this assumes the worker's and the cleaner's clocks agree within
# COMPACT_AFTER (days are built that long after they end).
ROLLUP_LOCK_CLASS = 7_244_186
LOCKED_DAYS = f"""
    SELECT count(*) AS days FROM (
        SELECT pg_advisory_xact_lock_shared({ROLLUP_LOCK_CLASS}, CAST(d AS date) - DATE '2000-01-01')
        FROM generate_series(CAST(:first_day AS date), CAST(:last_day AS date), interval '1 day') AS d ORDER BY d
    ) AS locks"""
LOCK_DAYS = text(LOCKED_DAYS)
LOCK_DAY = text(f"SELECT pg_advisory_xact_lock({ROLLUP_LOCK_CLASS}, CAST(:day AS date) - DATE '2000-01-01')")

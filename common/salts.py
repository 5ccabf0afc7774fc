"""The daily salts of visitor ids, in PostgreSQL's visitor_salts (migration 0003).

Each UTC day has one random 32-byte salt. The first API process that needs it inserts a
fresh one; a process that loses that race reads the winner's (INSERT ... ON CONFLICT DO
NOTHING, then SELECT), so all processes hash with the same salt. The cleaner deletes salts
older than two days: afterwards the ids of those days cannot be linked to anyone.
"""
from __future__ import annotations

import os
from datetime import date, timedelta

from sqlalchemy.engine import Engine

from common.sql import INSERT_SALT, SELECT_SALT

SALT_BYTES = 32
KEEP_DAYS = 2  # today's salt, and yesterday's for a process whose clock is a little behind


class SaltStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def salt_of(self, day: date) -> bytes:
        """The salt of a UTC day, created at random if it has none yet."""
        with self._engine.begin() as connection:
            connection.execute(INSERT_SALT, {"day": day, "salt": os.urandom(SALT_BYTES)})
            return bytes(connection.execute(SELECT_SALT, {"day": day}).scalar_one())



def oldest_salt_kept(today: date) -> date:
    """Salts of days before this one are deleted (by the cleaner, common.sql.DELETE_OLD_SALTS)."""
    return today - timedelta(days=KEEP_DAYS - 1)

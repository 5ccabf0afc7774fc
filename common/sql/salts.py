"""Visitor salts: one random salt per UTC day (common/salts.py), deleted by the cleaner."""
from __future__ import annotations

from sqlalchemy import text

INSERT_SALT = text("INSERT INTO visitor_salts (day, salt) VALUES (:day, :salt) ON CONFLICT (day) DO NOTHING")
SELECT_SALT = text("SELECT salt FROM visitor_salts WHERE day = :day")
DELETE_OLD_SALTS = text("DELETE FROM visitor_salts WHERE day < :oldest_kept")

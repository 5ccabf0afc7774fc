"""Statements PostgreSQL plans once per connection instead of on every execution.

psycopg2 sends every statement as text, so the server parses and plans it each time. For
the flush's one big statement that planning cost more than a millisecond per batch, as
much as the old, smaller flush took in all (bench drain, 2026-12-06). A `Prepared`
statement is PREPAREd the first time a connection runs it and EXECUTEd by name after that;
PostgreSQL switches to a cached generic plan after a few executions.

Which connections have prepared what is kept in the DBAPI connection's own `info`, so a
connection that is replaced (PostgreSQL restarted) prepares again. PREPARE is not undone
by a ROLLBACK: a statement prepared in a transaction that failed stays prepared.
"""
from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.engine import Connection, CursorResult

_PREPARED = "pageviews_prepared"  # key in Connection.info: the names prepared on that connection


class Prepared:
    def __init__(self, name: str, sql: str, parameters: dict[str, str]) -> None:
        """`sql` uses :name placeholders; `parameters` maps each name to its PostgreSQL type, in order."""
        body = sql
        for position, parameter in enumerate(parameters, 1):
            body, found = re.subn(rf":{parameter}\b", f"${position}", body)
            if not found:
                raise ValueError(f"{name}: parameter :{parameter} is not in the statement")
        if leftover := re.search(r"(?<!:):[A-Za-z_]\w*", body):
            raise ValueError(f"{name}: placeholder {leftover.group()} has no type")
        self.name = name
        self._prepare = text(f"PREPARE {name}({', '.join(parameters.values())}) AS {body}")
        self._execute = text(f"EXECUTE {name}({', '.join(':' + parameter for parameter in parameters)})")

    def execute(self, connection: Connection, values: dict) -> CursorResult:
        prepared: set[str] = connection.info.setdefault(_PREPARED, set())
        if self.name not in prepared:
            connection.execute(self._prepare)
            prepared.add(self.name)
        return connection.execute(self._execute, values)

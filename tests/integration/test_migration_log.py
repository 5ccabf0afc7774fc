"""`alembic upgrade head` (the compose service `migrate`) says what it does, in our log format."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from common.config import mask_url
from tests.helpers import ROOT


def test_the_migration_command_logs_the_revision_it_found_and_left(database_url):
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG")}
    env.update({"DATABASE_URL": database_url, "LOG_FORMAT": "json", "PYTHONPATH": str(ROOT)})
    result = subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    messages = [event["msg"] for event in events if event["logger"] == "migrations"]
    assert messages == ["migrating to the newest revision; waiting for the migration lock", "database found", "database migrated"], result.stderr
    found, migrated = (event for event in events if event["msg"] in ("database found", "database migrated"))
    assert found["revision"] == migrated["revision"] != "none (empty database)"  # the session's database is already at head
    assert events[0]["database"] == mask_url(database_url)  # never the password

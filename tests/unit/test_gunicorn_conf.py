"""api/gunicorn_conf.py: what gunicorn's master loads before it forks.

Under gevent workers the standard library is monkey-patched in each worker after the
fork, so the master must not have imported the libraries that make sockets, locks or
threads of their own (Flask, SQLAlchemy, psycopg2, pika): it loads only this module.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("flask", "werkzeug", "sqlalchemy", "psycopg2", "pika", "gevent")


def _load_in_a_fresh_interpreter(**env: str) -> dict:
    probe = (
        "import json, sys\n"
        "import api.gunicorn_conf as conf\n"
        f"print(json.dumps({{'loaded': sorted(m for m in {HEAVY!r} if m in sys.modules),"
        " 'worker_class': conf.worker_class, 'workers': conf.workers, 'bind': conf.bind}))\n"
    )
    environment = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG")}
    environment.update(env, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_master_imports_no_library_that_gevent_must_patch_first() -> None:
    assert _load_in_a_fresh_interpreter(API_WORKER_CLASS="gevent")["loaded"] == []


def test_settings_come_from_common_config() -> None:
    loaded = _load_in_a_fresh_interpreter(API_WORKER_CLASS="gevent", API_PROCESSES="3", PORT="3123")
    assert loaded["worker_class"] == "gevent"
    assert loaded["workers"] == 3
    assert loaded["bind"] == "0.0.0.0:3123"


def test_gevent_is_the_default() -> None:
    assert _load_in_a_fresh_interpreter()["worker_class"] == "gevent"

"""The directory where the API's gunicorn processes keep their Prometheus figures (multiprocess mode).

Used by gunicorn's master through the hooks in api/gunicorn_conf.py, so it imports neither
Flask nor, until a worker has died, prometheus_client (see api/__init__.py on why the master
stays lean; api/metrics.py is the workers' side).
"""
from __future__ import annotations

import shutil
import tempfile

from common.config import share_metrics_directory


def create() -> str:
    """A fresh, empty directory (no stale files from a previous run), told to the processes forked from now on."""
    path = tempfile.mkdtemp(prefix="pageviews-api-metrics-")
    share_metrics_directory(path)
    return path


def remove(path: str) -> None:
    share_metrics_directory(None)
    shutil.rmtree(path, ignore_errors=True)


def retire_process(pid: int) -> None:
    """Retire a dead worker's live gauges (prometheus_client's recipe); its counters stay in the sum."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)

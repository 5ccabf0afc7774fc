"""gunicorn's settings for the API: the one place for every way it is started.

    python -m api                                               (make run, the image)
    gunicorn -c python:api.gunicorn_conf 'api:create_app()'     (the same, by hand)

Values come from common.config (PORT, API_PROCESSES, API_WORKER_CLASS, API_THREADS,
LOG_LEVEL). gunicorn imports this module in its master, before it forks: it imports
nothing of Flask, SQLAlchemy or pika (see api/__init__.py).

Worker classes (API_WORKER_CLASS; issue 15, BENCHMARKS.md): gevent is the default. It runs
one event loop per process, with the request greenlets and the publisher's connection on
the same hub, so no thread hands off to another before a confirm. On a quiet machine it
answered 23-31% more single views per second than gthread, at 0.52-0.63 ms of API CPU per
request against 0.70-0.75 ms (15 s A/B runs, 2026-12-06; BENCHMARKS.md). A report waiting on a slow
database never holds up ingestion under it; under gthread such reports can take every
thread. gthread stays selectable. On a machine crowded with other work it measured faster
(2026-12-01), because the kernel gives CPU per thread.
"""
from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from api import exposure, metrics_files
from common import process
from common.logging import FORMATTERS

settings = process.start("api")

bind = f"0.0.0.0:{settings.port}"
exposure.warn_if_open(settings, bind.rsplit(":", 1)[0])
workers = settings.api_processes
worker_class = settings.api_worker_class
threads = settings.api_threads  # gthread only
# gevent only: connections one process serves at once; more wait in the listen backlog.
worker_connections = 1000
backlog = 2048
keepalive = 5
timeout = 30
graceful_timeout = 20
accesslog = None
errorlog = "-"
loglevel = settings.log_level
# gunicorn 27's control socket (for gunicornc) is unused here and wants a writable $HOME.
control_socket_disable = True
# A 2048-character page is up to 24 kB percent-encoded in GET /report, beyond any fixed
# limit gunicorn offers (8190 at most); 0 means its own ceiling of 1 MiB. The app checks
# the lengths itself.
limit_request_line = 0

# gunicorn's own log lines in the same shape as ours (LOG_FORMAT). gunicorn merges this
# shallowly into its defaults, so root and both of its loggers are spelled out.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"ours": {"()": f"common.logging.{FORMATTERS[settings.log_format].__name__}"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "ours", "stream": "ext://sys.stderr"}},
    "root": {"handlers": ["stderr"], "level": loglevel.upper()},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": loglevel.upper(), "propagate": False},
        "gunicorn.access": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
    },
}


class _Logger(Logger):
    """gunicorn's logger without an access log.

    gunicorn builds the access line of every request (atoms, a dict of some 20 fields)
    whenever any logging configuration is given, as logconfig_dict above is, even with
    no access log to write it to: 5% of a gevent worker's CPU under load (issue 15).
    """

    def _compute_access_log_enabled(self) -> bool:
        return bool(self.cfg.accesslog)


logger_class = _Logger


def on_starting(server: Any) -> None:
    """In the master, before the first fork: where every process writes its metrics."""
    server.pageviews_metrics_directory = metrics_files.create()


def on_exit(server: Any) -> None:
    metrics_files.remove(server.pageviews_metrics_directory)


def child_exit(_server: Any, worker: Any) -> None:
    metrics_files.retire_process(worker.pid)


def post_worker_init(worker: Any) -> None:
    """In each worker, after gevent has patched the standard library and the app is loaded."""
    if worker.cfg.worker_class_str == "gevent":  # the class running, even if chosen on the command line
        # psycopg2 is C: the patch does not reach its sockets. Without a wait callback a
        # report's query would block the whole process, every ingest request with it.
        from common.db import make_psycopg_cooperative

        make_psycopg_cooperative()

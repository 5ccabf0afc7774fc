"""`python -m api`: the API under gunicorn, bound to 0.0.0.0:$PORT."""
from __future__ import annotations

from typing import Any, Callable

from gunicorn.app.base import BaseApplication

from api import create_app, metrics
from common import process
from common.config import Settings
from common.logging import FORMATTERS


class GunicornApp(BaseApplication):
    """gunicorn with our options; `factory(settings)` builds the WSGI app (the benchmark passes its own)."""

    def __init__(self, settings: Settings, factory: Callable[[Settings], Any] = create_app) -> None:
        self.settings = settings
        self.factory = factory
        super().__init__()

    def load_config(self) -> None:
        for name, value in {**gunicorn_options(self.settings), **metrics.gunicorn_hooks()}.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        # Runs in each worker process after the fork, so connections are per process.
        return self.factory(self.settings)


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """Shared by the API and the benchmark's bare-Flask ceiling, so both run alike."""
    return {
        "bind": f"0.0.0.0:{settings.port}",
        "workers": settings.api_processes,
        "threads": settings.api_threads,
        "worker_class": "gthread",
        "backlog": 2048,
        "keepalive": 5,
        "timeout": 30,
        "graceful_timeout": 20,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": settings.log_level,
        "logconfig_dict": _gunicorn_logging(settings.log_level, settings.log_format),
        # gunicorn 27's control socket (for gunicornc) is unused here and wants a writable $HOME.
        "control_socket_disable": True,
        # A 2048-character page is up to 24 kB percent-encoded in GET /report, beyond any
        # fixed limit gunicorn offers (8190 at most); 0 means its own ceiling of 1 MiB.
        # The app checks the lengths itself.
        "limit_request_line": 0,
    }


def _gunicorn_logging(level: str, log_format: str) -> dict[str, Any]:
    """gunicorn's own log lines in the same shape as ours (LOG_FORMAT)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"kv": {"()": f"common.logging.{FORMATTERS[log_format].__name__}"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "kv", "stream": "ext://sys.stderr"}},
        # gunicorn merges this shallowly into its defaults, so root and both of its loggers are spelled out.
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "gunicorn.error": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "gunicorn.access": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        },
    }


def main() -> None:
    settings = process.start("api")
    with metrics.multiprocess_directory():
        GunicornApp(settings).run()


if __name__ == "__main__":
    main()

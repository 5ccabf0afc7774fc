"""Start-up shared by every entry point: settings (or a clean exit naming the bad one), logging, one start line; a stop flag."""
from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from common import logging as structured_logging
from common.config import ConfigError, Settings
from common.logging import fields


def start(process: str, **details: Any) -> Settings:
    """Settings from the environment; exits with a message naming the setting when one is invalid."""
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise SystemExit(f"{process}: invalid configuration: {exc}") from None
    structured_logging.configure(settings.log_level, settings.log_format)
    logging.getLogger(process).info(f"starting {process}", extra=fields(**details, **settings.describe()))
    return settings


def stop_on_signals(log: logging.Logger) -> threading.Event:
    """A flag that SIGTERM and SIGINT set.

    Only a flag, no exit: the loop that watches it finishes its turn and drains in order
    (a worker flushes, commits and acknowledges; the cleaner ends its run between batches).
    """
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("stop requested", extra=fields(signal=signal.Signals(signum).name))
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop

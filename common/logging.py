"""Structured logs: one line per event on stderr, key=value (LOG_FORMAT=kv) or JSON (LOG_FORMAT=json).

Use:  log.info("flush committed", extra=fields(rows=12, messages=1000))
Both formats carry the same fields under the same names: ts, level, logger, msg, the
event's own fields, and exc when an exception is attached.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def fields(**values: Any) -> dict[str, Any]:
    """The `extra` argument that attaches key=value fields to a log record."""
    return {"fields": values}


def error_summary(error: BaseException) -> str:
    """`Type: first line of the message`, for a log field or a health check (the database's own words for a DBAPIError)."""
    lines = str(getattr(error, "orig", None) or error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
def _event(formatter: logging.Formatter, record: logging.LogRecord) -> dict[str, Any]:
    """The fields of one log line, in order, whatever the format."""
    event: dict[str, Any] = {
        "ts": f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(record.created))}.{int(record.msecs):03d}Z",
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    event.update(getattr(record, "fields", None) or {})
    event.update((key, value) for key, value in record.__dict__.items() if key not in _RESERVED and key != "fields")
    if record.exc_info:
        event["exc"] = formatter.formatException(record.exc_info)
    return event


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{key}={_quote(value)}" for key, value in _event(self, record).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line; values JSON cannot hold (datetimes, exceptions) become their text."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_event(self, record), ensure_ascii=False, default=str)


FORMATTERS: dict[str, type[logging.Formatter]] = {"kv": KeyValueFormatter, "json": JsonFormatter}


def _quote(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if text and not any(ch in text for ch in ' "=\n\t\\'):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def configure(level: str = "info", log_format: str = "kv") -> None:
    """Send every log record to stderr as key=value or JSON lines; safe to call more than once."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_pageviews", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FORMATTERS[log_format]())
    handler._pageviews = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # pika narrates every frame at INFO; its warnings and errors are what operators need.
    logging.getLogger("pika").setLevel(max(logging.WARNING, root.level))
    # pika logs each failed connection attempt as an error with a traceback; the broker
    # module says which nodes failed and the retry helper logs one line per attempt (with
    # a cluster, a node that is down is expected while the others serve).
    for name in ("blocking_connection", "utils.connection_workflow", "utils.io_services_utils", "utils.selector_ioloop_adapter"):
        logging.getLogger(f"pika.adapters.{name}").setLevel(logging.CRITICAL)

"""Structured logs: one key=value line per event, on stderr.

Use:  log.info("flush committed", extra=fields(rows=12, messages=1000))
"""
from __future__ import annotations

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


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f"ts={time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(record.created))}.{int(record.msecs):03d}Z",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={_quote(record.getMessage())}",
        ]
        extra = getattr(record, "fields", None) or {}
        parts.extend(f"{key}={_quote(value)}" for key, value in extra.items())
        parts.extend(
            f"{key}={_quote(value)}" for key, value in record.__dict__.items() if key not in _RESERVED and key != "fields"
        )
        if record.exc_info:
            parts.append(f"exc={_quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


def _quote(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if text and not any(ch in text for ch in ' "=\n\t\\'):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def configure(level: str = "info") -> None:
    """Send every log record to stderr as key=value; safe to call more than once."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_pageviews", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    handler._pageviews = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # pika narrates every frame at INFO; its warnings and errors are what operators need.
    logging.getLogger("pika").setLevel(max(logging.WARNING, root.level))

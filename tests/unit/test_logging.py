"""Log lines: key=value by default, one JSON object per line with LOG_FORMAT=json, the same fields in both."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from common.logging import FORMATTERS, JsonFormatter, KeyValueFormatter, fields


def _record(message: str = "flush committed", exc: bool = False, **values: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad value")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    record = logging.LogRecord("worker.flusher", logging.WARNING, __file__, 1, message, None, exc_info)
    record.__dict__.update(fields(**values))
    return record


def test_key_value_is_the_default_shape():
    line = KeyValueFormatter().format(_record(rows=12, reason="a b"))
    assert line.startswith("ts=") and line.endswith(' rows=12 reason="a b"')
    assert " level=warning logger=worker.flusher msg=\"flush committed\" " in line


def test_json_carries_the_same_fields_one_object_per_line():
    record = _record(rows=12, reason='quote " and\nnewline', when=datetime(2025, 7, 16, tzinfo=timezone.utc))
    line = JsonFormatter().format(record)
    assert "\n" not in line
    event = json.loads(line)
    assert list(event) == ["ts", "level", "logger", "msg", "rows", "reason", "when"]
    assert event["level"] == "warning" and event["logger"] == "worker.flusher" and event["msg"] == "flush committed"
    assert event["rows"] == 12 and event["reason"] == 'quote " and\nnewline'
    assert event["when"] == "2025-07-16 00:00:00+00:00"  # not JSON-native: its text
    assert event["ts"].endswith("Z")


def test_json_includes_the_exception():
    event = json.loads(JsonFormatter().format(_record(exc=True)))
    assert "ValueError: bad value" in event["exc"]


def test_both_formats_are_selectable_by_name():
    assert set(FORMATTERS) == {"kv", "json"}

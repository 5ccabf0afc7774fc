"""Configuration: the one module that reads the environment.

Every setting is declared once in ``SETTINGS`` with its default and its parser;
``config.env`` documents the same names (a test keeps the two in step). The result
is a frozen ``Settings`` built at start-up: a bad value stops the process with a
message that names the setting, instead of failing later somewhere else.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from common import setting_values as values
from common.partitioning import format_partition_spec, parse_partition_spec
from common.setting_values import Network, mask_url, split_urls


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    parse: Callable[[str], Any]
    render: Callable[[Any], str] = str  # back to the environment's spelling (Settings.as_env)

    @property
    def field(self) -> str:
        return self.name.lower()


_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg2")

SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/pageviews", values.url(*_POSTGRES_SCHEMES)),
    # Empty: reports read from DATABASE_URL. Set: from this (a streaming replica), falling back to DATABASE_URL.
    Setting("REPORT_DATABASE_URL", "", values.optional(values.url(*_POSTGRES_SCHEMES))),
    # Several comma-separated URLs for the nodes of a cluster: clients connect to any that answers.
    Setting("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F", values.url_list("amqp", "amqps")),
    Setting("PORT", "3000", values.int_between(1, 65535)),
    Setting("API_PROCESSES", "2", values.int_between(1, 64)),
    Setting("API_WORKER_CLASS", "gevent", values.choice("gevent", "gthread")),
    Setting("API_THREADS", "16", values.int_between(1, 256)),
    Setting("PUBLISH_TIMEOUT_MS", "2000", values.int_between(100, 60_000)),
    Setting("NUM_PARTITIONS", "10", values.int_between(1, 1000)),
    Setting("NUM_SHARDS", "10", values.int_between(1, 1000)),
    Setting("QUEUE_PREFIX", "pageviews", values.queue_prefix),
    Setting("DELIVERY_LIMIT", "10", values.int_between(1, 1000)),
    Setting("QUEUE_MAX_LENGTH", "500000", values.int_between(1, 1_000_000_000)),
    Setting("QUEUE_MAX_BYTES", "268435456", values.int_between(1, 1 << 40)),
    Setting("BROKER_MANAGEMENT_URL", "", values.optional(values.url("http", "https"))),
    Setting("BATCH_SIZE", "1000", values.int_between(1, 100_000)),
    Setting("PREFETCH", "200", values.int_between(1, 65_535)),  # a 16-bit AMQP field
    Setting("FLUSH_INTERVAL_MS", "500", values.int_between(1, 600_000)),
    Setting("WORKER_PARTITIONS", "all", str),  # resolved against NUM_PARTITIONS below
    Setting("WORKERS", "2", values.int_between(1, 64)),
    Setting("EXACTLY_ONCE", "true", values.boolean),
    Setting("DEDUP_RETENTION_HOURS", "48", values.int_between(24, 24 * 365)),  # Idempotency-Key promise: 24 h
    Setting("RETENTION_DAYS", "30", values.int_between(1, 3650)),
    Setting("COMPACT_AFTER", "2", values.int_between(1, 24 * 3650)),
    Setting("CLEAN_INTERVAL", "300", values.int_between(1, 86_400)),
    Setting("LOG_LEVEL", "info", values.choice("debug", "info", "warning", "error")),
    Setting("LOG_FORMAT", "kv", values.choice("kv", "json")),
    Setting("METRICS_PORT", "", values.optional_port),
    Setting("ALLOWED_ORIGINS", "*", values.origins, values.joined),
    Setting("TRUSTED_PROXIES", "", values.networks, values.joined),
    Setting("REPORT_TOKENS", "", values.tokens),  # empty: the read endpoints are open
    Setting("INGEST_TOKENS", "", values.tokens),  # empty: single and multi are open
    Setting("BEACON_RATE_LIMIT", "", values.rate_limit),  # empty: no limit
)


@dataclass(frozen=True)
class Settings:
    database_url: str
    report_database_url: str
    amqp_url: str
    port: int
    api_processes: int
    api_worker_class: str
    api_threads: int
    publish_timeout_ms: int
    num_partitions: int
    num_shards: int
    queue_prefix: str
    delivery_limit: int
    queue_max_length: int
    queue_max_bytes: int
    broker_management_url: str
    batch_size: int
    prefetch: int
    flush_interval_ms: int
    worker_partitions: tuple[int, ...]
    workers: int
    exactly_once: bool
    dedup_retention_hours: int
    retention_days: int
    compact_after: int
    clean_interval: int
    log_level: str
    log_format: str
    metrics_port: int | None
    allowed_origins: tuple[str, ...]
    trusted_proxies: tuple[Network, ...]
    report_tokens: tuple[str, ...]
    ingest_tokens: tuple[str, ...]
    beacon_rate_limit: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Build from the process environment (or a given mapping); unset names take their default."""
        source = os.environ if environ is None else environ
        return cls.from_mapping({s.name: source[s.name] for s in SETTINGS if s.name in source})

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "Settings":
        """Build from a mapping of setting names to values; tests use this instead of patching."""
        unknown = set(values) - {s.name for s in SETTINGS}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        parsed: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = str(values.get(setting.name, setting.default))
            try:
                parsed[setting.field] = setting.parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{setting.name}: {exc}") from None
        try:
            parsed["worker_partitions"] = parse_partition_spec(parsed["worker_partitions"], parsed["num_partitions"])
        except ValueError as exc:
            raise ConfigError(f"WORKER_PARTITIONS: {exc}") from None
        return cls(**parsed)

    @property
    def amqp_urls(self) -> tuple[str, ...]:
        """Every node AMQP_URL names (one for a single broker)."""
        return split_urls(self.amqp_url)

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)

    def as_env(self) -> dict[str, str]:
        """The settings as environment variables, to start a child process with exactly this configuration."""
        env = {}
        for setting in SETTINGS:
            value = getattr(self, setting.field)
            if setting.name == "WORKER_PARTITIONS":
                value = format_partition_spec(value)
            elif setting.name in _TOKEN_SETTINGS:
                value = ",".join(value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            elif value is None:
                value = ""
            env[setting.name] = setting.render(value)
        return env

    def describe(self) -> dict[str, str]:
        """The settings for the start-up log line, with passwords masked."""
        env = self.as_env()
        env["DATABASE_URL"] = mask_url(self.database_url)
        env["REPORT_DATABASE_URL"] = mask_url(self.report_database_url)
        env["AMQP_URL"] = ",".join(mask_url(url) for url in self.amqp_urls)
        env["BROKER_MANAGEMENT_URL"] = mask_url(self.broker_management_url)
        for name in _TOKEN_SETTINGS:
            count = len(getattr(self, name.lower()))
            env[name] = f"<{count} tokens>" if count else "<none: open>"
        return env


_TOKEN_SETTINGS = ("REPORT_TOKENS", "INGEST_TOKENS")


def read_env_file(path: str) -> dict[str, str]:
    """Parse a KEY=VALUE file such as config.env (comments and blank lines ignored, no shell expansion)."""
    values: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", key.strip()):
                raise ConfigError(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
            values[key.strip()] = value.strip().strip('"').strip("'")
    return values


# prometheus_client chooses multiprocess mode on import, from this variable, in every
# process that imports it: the API's launcher sets it before gunicorn forks its workers.
METRICS_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def share_metrics_directory(path: str | None) -> None:
    """Tell this process and its future children where multiprocess metrics live (None: forget it)."""
    if path is None:
        os.environ.pop(METRICS_DIRECTORY_VARIABLE, None)
    else:
        os.environ[METRICS_DIRECTORY_VARIABLE] = path


def environment() -> dict[str, str]:
    """A copy of the process environment, for launchers that start child processes."""
    return dict(os.environ)

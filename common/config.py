"""Configuration: the one module that reads the environment.

Every setting is declared once in ``SETTINGS`` with its default and its parser;
``config.env`` documents the same names (a test keeps the two in step). The result
is a frozen ``Settings`` built at start-up: a bad value stops the process with a
message that names the setting, instead of failing later somewhere else.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

from common.partitioning import format_partition_spec, parse_partition_spec


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it."""


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return value

    return parse


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        raw = raw.strip()
        parts = urlsplit(raw)
        if parts.scheme not in schemes or not parts.hostname:
            raise ValueError(f"expected a {'/'.join(schemes)}:// URL with a host, got {mask_url(raw)!r}")
        try:
            parts.port  # noqa: B018 - urlsplit validates the port lazily
        except ValueError:
            raise ValueError(f"bad port in {mask_url(raw)!r}") from None
        return raw

    return parse


def split_urls(raw: str) -> tuple[str, ...]:
    """The URLs of a comma-separated list (AMQP_URL may name every node of a cluster)."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _url_list(*schemes: str) -> Callable[[str], str]:
    """One URL or several, comma-separated: each must parse; the list is kept as text, normalised."""
    one = _url(*schemes)

    def parse(raw: str) -> str:
        urls = split_urls(raw)
        if not urls:
            raise ValueError(f"expected one or more {'/'.join(schemes)}:// URLs, comma-separated")
        for position, url in enumerate(urls, 1):
            try:
                one(url)
            except ValueError as exc:
                raise ValueError(f"URL {position} of {len(urls)}: {exc}" if len(urls) > 1 else str(exc)) from None
        if len(set(urls)) != len(urls):
            raise ValueError("the same URL is listed twice")
        return ",".join(urls)

    return parse


def _optional(parse_value: Callable[[str], str]) -> Callable[[str], str]:
    """Empty means "not set" (the feature is off); anything else must parse."""

    def parse(raw: str) -> str:
        return parse_value(raw) if raw.strip() else ""

    return parse


def _queue_prefix(raw: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", raw):
        raise ValueError("must be 1-100 characters of letters, digits, '.', '_' or '-'")
    return raw


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, got {raw!r}")
        return value

    return parse


def _optional_port(raw: str) -> int | None:
    """Empty means "the process's own default" (workers 9101, the cleaner 9100); 0 means off."""
    if not raw.strip():
        return None
    return _int_between(0, 65535)(raw)


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _origins(raw: str) -> tuple[str, ...]:
    """`*`, or comma-separated origins, each spelled as browsers send them in the Origin header."""
    names = [name.strip() for name in raw.split(",") if name.strip()]
    if names == ["*"]:
        return ("*",)
    if not names:
        raise ValueError("expected * or a comma-separated list of origins such as https://example.com")
    return tuple(_origin(name) for name in names)


def _origin(raw: str) -> str:
    parts = urlsplit(raw)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in origin {raw!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"expected an origin such as https://example.com (scheme, host, optional port; no path), got {raw!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default_port = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default_port else "")


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(raw: str) -> tuple[Network, ...]:
    networks = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"expected comma-separated IP addresses or CIDRs such as 10.0.0.0/8, got {item!r}") from None
    return tuple(networks)


def _joined(values: tuple) -> str:
    return ",".join(str(value) for value in values)


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
    Setting("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/pageviews", _url(*_POSTGRES_SCHEMES)),
    # Empty: reports read from DATABASE_URL. Set: from this (a streaming replica), falling back to DATABASE_URL.
    Setting("REPORT_DATABASE_URL", "", _optional(_url(*_POSTGRES_SCHEMES))),
    # Several comma-separated URLs for the nodes of a cluster: clients connect to any that answers.
    Setting("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F", _url_list("amqp", "amqps")),
    Setting("PORT", "3000", _int_between(1, 65535)),
    Setting("API_PROCESSES", "2", _int_between(1, 64)),
    Setting("API_WORKER_CLASS", "gthread", _choice("gthread", "gevent")),
    Setting("API_THREADS", "16", _int_between(1, 256)),
    Setting("PUBLISH_TIMEOUT_MS", "2000", _int_between(100, 60_000)),
    Setting("NUM_PARTITIONS", "10", _int_between(1, 1000)),
    Setting("NUM_SHARDS", "10", _int_between(1, 1000)),
    Setting("QUEUE_PREFIX", "pageviews", _queue_prefix),
    Setting("DELIVERY_LIMIT", "10", _int_between(1, 1000)),
    Setting("BATCH_SIZE", "1000", _int_between(1, 100_000)),
    Setting("PREFETCH", "200", _int_between(1, 65_535)),  # a 16-bit AMQP field
    Setting("FLUSH_INTERVAL_MS", "500", _int_between(1, 600_000)),
    Setting("WORKER_PARTITIONS", "all", str),  # resolved against NUM_PARTITIONS below
    Setting("WORKERS", "2", _int_between(1, 64)),
    Setting("EXACTLY_ONCE", "true", _bool),
    Setting("DEDUP_RETENTION_HOURS", "48", _int_between(24, 24 * 365)),  # Idempotency-Key promise: 24 h
    Setting("RETENTION_DAYS", "30", _int_between(1, 3650)),
    Setting("COMPACT_AFTER", "2", _int_between(1, 24 * 3650)),
    Setting("CLEAN_INTERVAL", "300", _int_between(1, 86_400)),
    Setting("LOG_LEVEL", "info", _choice("debug", "info", "warning", "error")),
    Setting("LOG_FORMAT", "kv", _choice("kv", "json")),
    Setting("METRICS_PORT", "", _optional_port),
    Setting("ALLOWED_ORIGINS", "*", _origins, _joined),
    Setting("TRUSTED_PROXIES", "", _networks, _joined),
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
        return env


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, safe to log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0] + ":***"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc[1]}"))


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

"""Why a dependency cannot be used, in words an operator can act on (for /ready and logs).

Pure: it reads the error's type and text (pika, psycopg2 and socket errors all name the
cause in their text) and the URL it was trying, and says which setting to look at.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from common.config import split_urls


@dataclass(frozen=True)
class Dependency:
    service: str  # RabbitMQ, PostgreSQL
    setting: str  # the setting that holds its URL
    default_port: int
    known: tuple[tuple[tuple[str, ...], str], ...]  # (any of these texts, explanation) specific to it


_NETWORK: tuple[tuple[tuple[str, ...], str], ...] = (
    (("connection refused",), "nothing accepts connections at {where} (connection refused): check the host and port in {setting}, and that {service} is running"),
    (("no route to host", "network is unreachable", "host is unreachable"), "no route to {where} ({detail}): check the host in {setting}, the network and firewalls"),
    (
        ("name or service not known", "could not translate host name", "temporary failure in name resolution", "nodename nor servname"),
        "the host name {host!r} in {setting} does not resolve: check it",
    ),
    (("timed out", "timeout expired"), "no answer from {where} within the connect timeout: check the host and port in {setting}, and firewalls"),
)

RABBITMQ = Dependency(
    "RabbitMQ",
    "AMQP_URL",
    5672,
    (
        (("access_refused",), "RabbitMQ refused the login (ACCESS_REFUSED): wrong user or password in AMQP_URL"),
        (("not_allowed",), "RabbitMQ refused the virtual host (NOT_ALLOWED): it does not exist or the user may not use it; check the vhost in AMQP_URL"),
        (
            ("precondition_failed",),
            "a queue or exchange already exists with other arguments than this configuration declares (PRECONDITION_FAILED: {detail}). "
            "It was created with another DELIVERY_LIMIT or queue type, or by another system under the same QUEUE_PREFIX: "
            "use another QUEUE_PREFIX, or delete it once it is empty",
        ),
        (("transport indicated eof", "incompatibleprotocolerror"), "the server at {where} closed the connection before speaking AMQP: is that RabbitMQ's AMQP port (5672)? Check AMQP_URL"),
    ),
)

POSTGRESQL = Dependency(
    "PostgreSQL",
    "DATABASE_URL",
    5432,
    (
        (("password authentication failed",), "PostgreSQL refused the login (password authentication failed): wrong user or password in DATABASE_URL"),
        (("no pg_hba.conf entry",), "PostgreSQL does not accept this client (no pg_hba.conf entry): allow it in pg_hba.conf or connect as another user"),
        (("does not exist",), "{detail}: check DATABASE_URL, or create the database and run the migrations (make migrate)"),
        (("too many connections", "remaining connection slots"), "PostgreSQL has no connection slot left ({detail}): raise max_connections or lower API_PROCESSES x API_THREADS"),
    ),
)


def explain(error: BaseException | None, dependency: Dependency, url: str) -> str:
    """One sentence: what failed, and what to check."""
    if error is None:
        return f"not connected to {dependency.service} yet (connecting)"
    text = f"{type(error).__name__}: {error}"
    nodes = [urlsplit(one) for one in split_urls(url)] or [urlsplit(url)]  # AMQP_URL may list a cluster's nodes
    host = nodes[0].hostname or "?"
    values = {
        "service": dependency.service,
        "setting": dependency.setting,
        "host": host,
        "where": " or ".join(f"{parts.hostname or '?'}:{parts.port or dependency.default_port}" for parts in nodes),
        "detail": _first_line(text),
    }
    lowered = text.lower()
    for needles, explanation in dependency.known + _NETWORK:
        if any(needle in lowered for needle in needles):
            return explanation.format(**values)
    return f"{dependency.service} at {values['where']} cannot be used: {values['detail']}"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[0] if lines else text
    # psycopg2 puts the server's words after "FATAL:"; pika wraps them in quotes and parentheses.
    if "FATAL:" in line:
        line = line.split("FATAL:", 1)[1].strip()
    return line[:300]

"""RabbitMQ's management HTTP API: policies, users and permissions (standard library only).

Used by the one-off set-up step (``python -m worker.broker_setup``) and by tests; the
running API and workers never need it, so their broker user needs no management tag.
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib import error, request
from urllib.parse import quote, unquote, urlsplit

from common.config import mask_url

TIMEOUT_S = 10
MANAGEMENT_PORT = 15672


class ManagementError(RuntimeError):
    """The management API refused a call or could not be reached; the message says which call."""


def management_url_for(amqp_url: str) -> str:
    """The management API beside an AMQP URL: same host and credentials, port 15672, http."""
    parts = urlsplit(amqp_url)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    return f"http://{userinfo}{host}:{MANAGEMENT_PORT}"


def vhost_of(amqp_url: str) -> str:
    path = urlsplit(amqp_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def partition_pattern(prefix: str) -> str:
    """A regex matching exactly the partition queues of one prefix (and no other prefix's)."""
    return rf"^{re.escape(prefix)}\.p[0-9]+$"


def resources_pattern(prefix: str) -> str:
    """Every queue and exchange name a prefix owns: partitions, .dead, .dlx, .in."""
    return rf"^{re.escape(prefix)}\.(p[0-9]+|dead|dlx|in)$"


@dataclass(frozen=True)
class Management:
    base_url: str  # http://user:password@host:15672

    def put_policy(self, vhost: str, name: str, pattern: str, definition: dict[str, Any], *, priority: int = 10) -> None:
        body = {"pattern": pattern, "definition": definition, "apply-to": "queues", "priority": priority}
        self._call("PUT", f"/api/policies/{_q(vhost)}/{_q(name)}", body)

    def delete_policy(self, vhost: str, name: str) -> None:
        self._call("DELETE", f"/api/policies/{_q(vhost)}/{_q(name)}", missing_ok=True)

    def queue(self, vhost: str, name: str) -> dict[str, Any]:
        return self._call("GET", f"/api/queues/{_q(vhost)}/{_q(name)}")

    def put_user(self, name: str, password: str, *, tags: str = "") -> None:
        self._call("PUT", f"/api/users/{_q(name)}", {"password": password, "tags": tags})

    def delete_user(self, name: str) -> None:
        self._call("DELETE", f"/api/users/{_q(name)}", missing_ok=True)

    def put_permissions(self, vhost: str, user: str, *, configure: str, write: str, read: str) -> None:
        body = {"configure": configure, "write": write, "read": read}
        self._call("PUT", f"/api/permissions/{_q(vhost)}/{_q(user)}", body)

    def _call(self, method: str, path: str, body: Any = None, *, missing_ok: bool = False) -> Any:
        parts = urlsplit(self.base_url)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        url = f"{parts.scheme}://{netloc}{path}"
        data = None if body is None else json.dumps(body).encode()
        call = request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        if parts.username is not None:
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            call.add_header("Authorization", "Basic " + base64.b64encode(credentials).decode())
        try:
            with request.urlopen(call, timeout=TIMEOUT_S) as response:
                raw = response.read()
        except error.HTTPError as exc:
            if missing_ok and exc.code == 404:
                return None
            detail = exc.read().decode(errors="replace")[:300]
            raise ManagementError(f"{method} {path} on {mask_url(self.base_url)}: HTTP {exc.code}: {detail}") from None
        except OSError as exc:
            raise ManagementError(f"{method} {path} on {mask_url(self.base_url)}: {exc}") from None
        return json.loads(raw) if raw else None


def _q(segment: str) -> str:
    return quote(segment, safe="")

"""A warning at start for each group of endpoints left open on an address beyond this machine.

Imported by gunicorn's config in its master process, before the fork: no Flask here.
"""
from __future__ import annotations

import ipaddress
import logging

from common.config import Settings
from common.logging import fields

log = logging.getLogger("api.auth")


def warn_if_open(settings: Settings, host: str) -> None:
    """One warning per open group when the API listens beyond this machine."""
    if _is_loopback(host):
        return
    for group, tokens in (("report", settings.report_tokens), ("ingest", settings.ingest_tokens)):
        if not tokens:
            log.warning(
                "endpoints open to anyone who can reach this address; set the tokens before exposing it",
                extra=fields(group=group, setting=f"{group.upper()}_TOKENS", bind=host),
            )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

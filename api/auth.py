"""Bearer tokens: who may read reports (REPORT_TOKENS) and who may post views (INGEST_TOKENS).

Two ways to protect endpoints, so every group of endpoints is protected by naming it:
- ``protect(app, REPORT, "report")`` in ``create_app``: every endpoint of the named
  blueprints (``/report``; ``/pages`` and ``/sites`` by adding their blueprint's name);
- ``@requires(INGEST)`` on one view function, for a blueprint whose other endpoints stay
  public (the browser collector ``/page-views/beacon`` never needs a token).

An empty token list means the group is open, as before tokens existed.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
from typing import Any, Callable, TypeVar

from flask import Flask, current_app, request

from api.errors import ApiError
from common.config import Settings

REPORT = "report"
INGEST = "ingest"
_EXTENSION = "pageviews.tokens"
F = TypeVar("F", bound=Callable[..., Any])


class TokenSet:
    """The tokens of one group; checks a presented token against all of them in constant time."""

    def __init__(self, tokens: tuple[str, ...]) -> None:
        # Digests have one length, so compare_digest's time does not depend on the
        # token's length either; only digests are kept, never the tokens themselves.
        self._digests = tuple(_digest(token) for token in tokens)

    @property
    def open(self) -> bool:
        return not self._digests

    def admits(self, presented: str | None) -> bool:
        if self.open:
            return True
        if presented is None:
            return False
        candidate = _digest(presented)
        # Every digest is compared, whichever matches: no early exit to time.
        matches = [hmac.compare_digest(candidate, digest) for digest in self._digests]
        return any(matches)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def install(app: Flask, settings: Settings) -> None:
    app.extensions[_EXTENSION] = {REPORT: TokenSet(settings.report_tokens), INGEST: TokenSet(settings.ingest_tokens)}


def check(group: str) -> None:
    """Raise 401 unless the request carries a token of `group` (or the group is open)."""
    if not current_app.extensions[_EXTENSION][group].admits(_bearer_token()):
        # The header's value is never logged or echoed: it may be a real token of another group.
        raise ApiError(
            401,
            "unauthorized",
            f"this endpoint needs an Authorization: Bearer header with one of the {group} tokens",
            headers={"WWW-Authenticate": f'Bearer realm="pageviews {group}"'},
        )


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def protect(app: Flask, group: str, *blueprints: str) -> None:
    """Every endpoint of the named blueprints needs a token of `group`.

    Registered on the app, not on the blueprints: blueprints are module-level objects
    that each create_app() registers again, and Flask refuses changes to them after that.
    """
    names = frozenset(blueprints)

    def guard() -> None:
        if request.blueprint in names:
            check(group)

    app.before_request(guard)


def requires(group: str) -> Callable[[F], F]:
    """Decorator: this one view needs a token of `group`."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            check(group)
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate

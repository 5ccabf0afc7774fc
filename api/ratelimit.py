"""BEACON_RATE_LIMIT: how many views one client may send to the browser collector.

``@rate_limited(key=...)`` on a view function: beyond the limit the request is answered
429 ``rate_limited`` with Retry-After, before anything else is done with it. ``key`` says
who the client is (the beacon passes its client-IP function, which honours
TRUSTED_PROXIES); by default the TCP peer.

Counting uses the ``limits`` library (the engine of Flask-Limiter) with a moving window in
memory: each API process counts on its own, so a client may get up to API_PROCESSES
times the limit. Good enough to stop one browser or script from flooding the collector;
a strict global limit would need shared storage (``limits`` supports Redis), which this
system does not run.
"""
from __future__ import annotations

import functools
import math
import time
from typing import Any, Callable, TypeVar

from flask import Flask, current_app, request
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from api.errors import ApiError
from common.config import Settings

_EXTENSION = "pageviews.rate_limit"
F = TypeVar("F", bound=Callable[..., Any])


class RateLimit:
    def __init__(self, spec: str) -> None:
        self.item: RateLimitItem = parse(spec)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, client: str) -> None:
        """Count one request of `client`; raise 429 when it is over the limit."""
        if self._limiter.hit(self.item, client):
            return
        reset_at = self._limiter.get_window_stats(self.item, client).reset_time
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise ApiError(
            429,
            "rate_limited",
            f"more than {self.item} from this client; nothing of this request was counted",
            headers={"Retry-After": str(retry_after)},
        )


def install(app: Flask, settings: Settings) -> None:
    # Created in create_app, i.e. in each gunicorn process after the fork (MemoryStorage
    # starts a timer thread, which must not be forked).
    app.extensions[_EXTENSION] = RateLimit(settings.beacon_rate_limit) if settings.beacon_rate_limit else None


def peer_address() -> str:
    return request.remote_addr or "unknown"


def rate_limited(key: Callable[[], str] = peer_address) -> Callable[[F], F]:
    """Decorator: the view counts against BEACON_RATE_LIMIT per `key()` (off when the setting is empty)."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            limit: RateLimit | None = current_app.extensions.get(_EXTENSION)
            if limit is not None:
                limit.check(key())
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate

"""The one retry helper: named transient errors only, bounded, with backoff and one log line per attempt."""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, TypeVar

import tenacity

from common.logging import error_summary, fields

T = TypeVar("T")

log = logging.getLogger(__name__)


def call_with_retry(
    func: Callable[[], T],
    *,
    what: str,
    is_transient: Callable[[BaseException], bool],
    max_attempts: int | None = 5,
    initial_wait: float = 0.1,
    max_wait: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    give_up: Callable[[], bool] = lambda: False,
) -> T:
    """Call func until it succeeds, retrying only errors is_transient() accepts.

    max_attempts=None retries until give_up() says so (used where dropping the work
    is worse than waiting, e.g. a worker holding unacknowledged messages). `sleep`
    lets callers keep a connection serviced while they wait.
    """
    stop = tenacity.stop_any(
        tenacity.stop_never if max_attempts is None else tenacity.stop_after_attempt(max_attempts),
        _stop_when(give_up),
    )
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        stop=stop,
        wait=tenacity.wait_exponential_jitter(multiplier=initial_wait, max=max_wait, jitter=initial_wait),
        sleep=sleep,
        before_sleep=_log_attempt(what),
        reraise=True,
    )
    return retrying(func)


def until_stopped(
    func: Callable[[], T],
    *,
    what: str,
    is_transient: Callable[[BaseException], bool],
    stop: threading.Event,
    give_up: Callable[[], bool] | None = None,
    max_wait: float = 5.0,
) -> T:
    """Call func until it succeeds, however long the transient errors last, or until stopped.

    For work that is worse dropped than late: a connection to (re)open, a batch holding
    unacknowledged messages. Each wait ends at once when `stop` is set; retrying ends once
    give_up() is true (by default: once `stop` is set), and the last error is raised.
    """
    return call_with_retry(
        func,
        what=what,
        is_transient=is_transient,
        max_attempts=None,
        initial_wait=0.2,
        max_wait=max_wait,
        sleep=stop.wait,
        give_up=give_up or stop.is_set,
    )


def _stop_when(give_up: Callable[[], bool]) -> Callable[[tenacity.RetryCallState], bool]:
    def stop(_state: tenacity.RetryCallState) -> bool:
        return give_up()

    return stop


def _log_attempt(what: str) -> Callable[[tenacity.RetryCallState], None]:
    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "retrying after transient error",
            extra=fields(what=what, attempt=state.attempt_number, wait_s=round(wait, 2), error=error_summary(error) if error else ""),
        )

    return before_sleep


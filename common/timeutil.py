"""Time in one convention: aware UTC datetimes, hours as their start, Unix seconds on the wire."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

HOUR = 3600


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def parse_timestamp(text: str) -> datetime:
    """ISO 8601 with 'Z' or an offset; without one the time is taken as UTC. Raises ValueError."""
    try:
        moment = datetime.fromisoformat(text)
    except (ValueError, TypeError):
        raise ValueError("not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("outside the supported range of years") from None


def floor_hour(moment: datetime) -> datetime:
    """The start of the UTC hour containing `moment` (naive means UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.replace(minute=0, second=0, microsecond=0)


def hour_start_epoch(moment: datetime) -> int:
    """Unix seconds of the start of the UTC hour that contains `moment`."""
    seconds = int(moment.timestamp())
    return seconds - seconds % HOUR


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


def is_hour_aligned(moment: datetime) -> bool:
    return moment == floor_hour(moment)


def retention_cutoff(now: datetime, retention_days: int) -> datetime:
    """Hours starting before this instant are expired: rejected by the API, removed by the cleaner."""
    return floor_hour(now) - timedelta(days=retention_days)


def format_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

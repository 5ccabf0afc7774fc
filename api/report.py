"""GET /report: hourly views of one page, summed across shards, and its visitors (`u`), zero-filled."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.exc import DBAPIError

from api.errors import ApiError
from api.services import services
from api.validation import ReportQuery, validate_report_query
from common import db
from common.db import ReportDatabase
from common.sql import HOURLY_TOTALS
from common.timeutil import format_utc, utc_now

bp = Blueprint("report", __name__)


@bp.get("/report")
def report() -> Response:
    svc = services()
    query = validate_report_query(request.args.to_dict(flat=False), utc_now())
    totals = _hourly_totals(svc.report_db(), query)  # hour -> (views, visitors)
    hours = [query.start + timedelta(hours=offset) for offset in range(query.hours)]
    if query.descending:
        hours.reverse()
    if query.take is not None:
        hours = hours[: query.take]
    return jsonify(data=[_item(hour, *totals.get(hour, (0, 0))) for hour in hours])


def _item(hour: datetime, views: int, visitors: int) -> dict:
    return {"h": hour.hour, "v": views, "u": visitors, "t": format_utc(hour)}


def _hourly_totals(database: ReportDatabase, query: ReportQuery) -> dict[datetime, tuple[int, int]]:
    params = {"page": query.page, "start": query.start, "end": query.start + timedelta(hours=query.hours)}
    try:
        return database.read(lambda connection: {hour: (int(views), int(visitors)) for hour, views, visitors in connection.execute(HOURLY_TOTALS, params)})
    except DBAPIError as exc:
        if db.is_transient(exc):
            raise ApiError.unavailable("database", "PostgreSQL is not answering; retry shortly") from None
        raise

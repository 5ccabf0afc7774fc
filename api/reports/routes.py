"""GET /report, /pages and /sites: validate, read, answer."""
from __future__ import annotations

from flask import Blueprint, Response, request

from api.reports import answers, reading, zones
from api.reports.params import validate_pages_query, validate_report_query, validate_sites_query
from api.services import services
from common.timeutil import utc_now

bp = Blueprint("reports", __name__)


@bp.get("/report")
def report() -> Response:
    query = validate_report_query(request.args.to_dict(flat=False), utc_now())
    buckets = zones.buckets(query.start, query.end, zones.zone(query.tz), query.granularity)
    counts, totals = reading.bucket_counts(services().report_db(), query, [bucket.start for bucket in buckets])
    return answers.report(query, buckets, counts, totals)


@bp.get("/pages")
def pages() -> Response:
    query = validate_pages_query(request.args.to_dict(flat=False), utc_now())
    found, totals = reading.top_pages(services().report_db(), query)
    return answers.ranked("page", found, totals, query.format)


@bp.get("/sites")
def sites() -> Response:
    query = validate_sites_query(request.args.to_dict(flat=False), utc_now())
    found, totals = reading.top_sites(services().report_db(), query)
    return answers.ranked("site", found, totals, query.format)

"""GET /health (the process answers) and GET /ready (its dependencies answer, and which do not)."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from api.services import services
from common.diagnosis import POSTGRESQL, RABBITMQ, explain

bp = Blueprint("health", __name__)


@bp.get("/health")
def health() -> Response:
    return jsonify(status="ok")


@bp.get("/ready")
def ready() -> tuple[Response, int]:
    checks = {"broker": _check_broker(), "database": _check_database()}
    healthy = all(result == "ok" for result in checks.values())
    return jsonify(status="ready" if healthy else "unavailable", checks=checks), 200 if healthy else 503


def _check_broker() -> str:
    svc = services()
    publisher = svc.publisher()
    if publisher.connected:
        return "ok"
    return f"unavailable: {explain(publisher.last_error, RABBITMQ, svc.settings.amqp_url)}"


def _check_database() -> str:
    svc = services()
    try:
        with svc.engine().connect() as connection:
            connection.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # any failure means not ready; say which and why
        return f"unavailable: {explain(exc, POSTGRESQL, svc.settings.database_url)}"

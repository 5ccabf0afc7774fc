"""The Flask app: blueprints, error handlers and the per-process services (see api/__init__.py)."""
from __future__ import annotations

from flask import Flask

from api import beacon, bots, dashboard, errors, health, ingest, metrics, tracker
from api.ingest import MAX_BODY_BYTES
from api.reports import routes as reports
from api.services import Services
from common import logging as structured_logging
from common.config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    structured_logging.configure(settings.log_level, settings.log_format)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["pageviews"] = Services(settings)
    errors.register(app)
    metrics.register(app)
    app.register_blueprint(ingest.bp)
    app.register_blueprint(beacon.bp)
    bots.load()
    app.register_blueprint(tracker.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(dashboard.bp)
    return app

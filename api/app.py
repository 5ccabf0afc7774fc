"""The Flask app: blueprints, error handlers and the per-process services (see api/__init__.py)."""
from __future__ import annotations

from flask import Flask

from api import auth, beacon, bots, dashboard, errors, health, ingest, metrics, openapi, ratelimit, tracker
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
    auth.install(app, settings)
    ratelimit.install(app, settings)  # BEACON_RATE_LIMIT, applied by @rate_limited on /page-views/beacon
    auth.protect(app, auth.REPORT, reports.bp.name)  # /report, /pages, /sites (and any read endpoint added there)
    app.register_blueprint(ingest.bp)
    app.register_blueprint(beacon.bp)
    bots.load()
    app.register_blueprint(tracker.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(dashboard.bp)
    return app

"""GET /openapi.yaml: the API's description (api/openapi.yaml), public like /health."""
from __future__ import annotations

import functools
from pathlib import Path

from flask import Blueprint, Response

bp = Blueprint("openapi", __name__)

DESCRIPTION = Path(__file__).with_name("openapi.yaml")


@functools.cache
def _description() -> bytes:
    return DESCRIPTION.read_bytes()


@bp.get("/openapi.yaml")
def openapi() -> Response:
    return Response(_description(), mimetype="application/yaml")
